import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))

import inner_loop  # noqa: E402,F401  (XLA flag before jax)
import jax  # noqa: E402

# One persistent compilation cache for the session (and the subprocesses the tests start):
# the sweep tests compile the same tiny programs in several runs and processes.
# One per xdist worker (which inherits the controller's environment): workers never write
# the same cache entry at once.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if WORKER or "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix=f"jax-cache-{WORKER or 'main'}-")
COMPILATION_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"]
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
