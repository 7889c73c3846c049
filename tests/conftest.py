import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))

# The tests run tiny programs, whose time is mostly XLA compiling, which backend optimisation
# slows (docs/design.md, Measured decisions). Inherited by the xdist workers and subprocesses.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402

from inner_loop.cpu import configure_cpu  # noqa: E402

configure_cpu()  # as the discover command does: a CPU device per core, before jax starts

# One persistent compilation cache for the session: its xdist workers (which inherit the
# controller's environment) and the subprocesses the tests start compile the same tiny
# programs. A read that races a write is a cache miss (jax warns and compiles).
COMPILATION_CACHE = os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="jax-cache-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
jax.config.update("jax_compilation_cache_dir", COMPILATION_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
    """A tiny 6-generation sweep (wandb offline), shared by the sweep tests as the reference."""
    from discover.cli.main import main
    from sweep_helpers import sweep_args

    runs = tmp_path_factory.mktemp("runs")
    assert main(sweep_args(runs, "full", 6, wandb="offline")) == 0
    return runs / "full"
