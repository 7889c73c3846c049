"""The XLA CPU settings this project's runs need, applied by one explicit call.

1. **One CPU device per usable core** (`--xla_force_host_platform_device_count`). XLA runs
   one program per device at a time, and on CPU one trainer program keeps about one core
   busy (its ops are small), so `inner_loop.parallel` splits vmapped seeds and members over
   the devices and every core trains its own share. Plain `jit` code is not
   affected: it runs on device 0 as before. On a GPU host the CPU devices are unused.
2. **The concurrency-optimised CPU scheduler off**: a second line of defence against the
   thread-pool deadlock of batched CPU LAPACK calls (see `inner_loop.networks.orthogonal`).

The measurements behind both: docs/design.md, Measured decisions. Importing the packages
changes nothing; the `discover` command calls `configure_cpu()` before jax starts, and so
may a library user who runs this project's vmapped trainers.
"""

from __future__ import annotations

import os
import sys
import warnings

SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
SAFE_SETTING = f"{SCHEDULER_FLAG}=false"
DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"

_warned_too_late = False  # the too-late warning is said once per process


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def configure_cpu(environ: dict | None = None, cores: int | None = None) -> list[str]:
    """Add two XLA CPU flags to `XLA_FLAGS`; returns the flags added.

    `--xla_force_host_platform_device_count=<usable cores>` (one CPU device per core, over
    which the project's vmapped trainers split their runs) and
    `--xla_cpu_enable_concurrency_optimized_scheduler=false` (a guard against a thread-pool
    deadlock of batched CPU LAPACK calls); why, in this module's docstring.

    Call it before jax starts its backend, i.e. before the first jax computation. Importing
    jax, flax, optax, `inner_loop` or `discover` does not start it; importing gymnax or
    evosax's algorithms (`outer_loop`) does, as they build arrays at import. Each flag is
    added only where you did not set it yourself: your value always wins, and
    `JAX_NUM_CPU_DEVICES` counts as setting the device count. Called once jax has started, it
    changes nothing, returns `[]` and warns once (`RuntimeWarning`): XLA reads the flags only
    at start-up, so vmapped trainers would then run on one CPU device. Calling it again is
    harmless.

    `environ` and `cores` are for tests: another mapping than `os.environ`, another core count.
    """
    global _warned_too_late
    env = os.environ if environ is None else environ
    flags = env.get("XLA_FLAGS", "")
    wanted = []
    if SCHEDULER_FLAG not in flags:
        wanted.append(SAFE_SETTING)
    cores = usable_cores() if cores is None else cores
    if DEVICE_COUNT_FLAG not in flags and "JAX_NUM_CPU_DEVICES" not in env and cores > 1:
        wanted.append(f"{DEVICE_COUNT_FLAG}={cores}")
    if not wanted:
        return []  # the user's choices, or an earlier call's, stand
    if environ is None and backend_started():
        if not _warned_too_late:
            _warned_too_late = True
            warnings.warn(f"configure_cpu() came after jax started, so {' '.join(wanted)} could not be "
                          "applied; vmapped trainers will use one CPU device. Call it before the first jax "
                          "computation, or set XLA_FLAGS yourself.", RuntimeWarning, stacklevel=2)
        return []
    env["XLA_FLAGS"] = " ".join([flags, *wanted]).strip()
    return wanted


def backend_started() -> bool:
    """True once jax has created its XLA backend (it reads XLA_FLAGS then)."""
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(getattr(xla_bridge, "_backends", {}))
    except Exception:  # pragma: no cover - private API moved; assume the worst
        return True
