"""XLA CPU flags the project needs, applied before jax is imported.

1. **One CPU device per usable core** (`--xla_force_host_platform_device_count`). XLA runs
   one program per device at a time, and on CPU one trainer program keeps about one core
   busy (its ops are small), so `inner_loop.parallel` splits vmapped seeds and members over
   the devices and every core trains its own share. Plain `jit` code is not
   affected: it runs on device 0 as before. On a GPU host the CPU devices are unused.
2. **The concurrency-optimised CPU scheduler off**: a second line of defence against the
   thread-pool deadlock of batched CPU LAPACK calls (see `inner_loop.networks.orthogonal`).

The measurements behind both: docs/design.md, Measured decisions.

Each flag is added to `XLA_FLAGS` only when the user has not set it themselves (their value
always wins; `JAX_NUM_CPU_DEVICES` counts as setting the device count), and only when jax
has not started its backend yet (XLA reads the variable once, at backend start-up).
"""

from __future__ import annotations

import os
import sys
import warnings

SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
SAFE_SETTING = f"{SCHEDULER_FLAG}=false"
DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def configure_xla_cpu(environ: dict | None = None, cores: int | None = None) -> list[str]:
    """Add the flags above to XLA_FLAGS where the user did not set them; returns those added."""
    env = os.environ if environ is None else environ
    flags = env.get("XLA_FLAGS", "")
    wanted = []
    if SCHEDULER_FLAG not in flags:
        wanted.append(SAFE_SETTING)
    cores = usable_cores() if cores is None else cores
    if DEVICE_COUNT_FLAG not in flags and "JAX_NUM_CPU_DEVICES" not in env and cores > 1:
        wanted.append(f"{DEVICE_COUNT_FLAG}={cores}")
    if not wanted:
        return []  # the user's choices, whatever they are, stand
    if environ is None and "jax" in sys.modules and _backend_started():
        warnings.warn(
            "jax was initialised before inner_loop was imported, so "
            f"{' '.join(wanted)} could not be applied; vmapped trainers may hang on CPU and "
            "use one core. Import inner_loop (or discover) before jax, or set XLA_FLAGS yourself.",
            RuntimeWarning,
            stacklevel=2,
        )
        return []
    env["XLA_FLAGS"] = " ".join([flags, *wanted]).strip()
    return wanted


def _backend_started() -> bool:
    """True once XLA's backend has been created (XLA_FLAGS is read then)."""
    try:
        from jax._src import xla_bridge

        return bool(getattr(xla_bridge, "_backends", {}))
    except Exception:  # pragma: no cover - private API moved; assume the worst
        return True
