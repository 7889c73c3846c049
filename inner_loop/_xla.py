"""XLA CPU flags the project needs, applied before jax is imported.

On a 2-core CPU with jax 0.10, XLA's concurrency-optimised CPU scheduler was seen to
hang forever inside `block_until_ready` when a trainer was vmapped over 3+ seeds.
Turning that scheduler off avoids the hang. The root cause (found later with gdb) is
jaxlib's batched CPU QR in the orthogonal initialiser blocking every thread of XLA's pool
when two run at once; `inner_loop.networks.orthogonal` now does one matrix at a time, so
the flag is a second line of defence for other batched LAPACK calls. We add the flag to `XLA_FLAGS` only when
the user has not set that flag themselves (their value always wins), and only when jax
has not been imported yet (XLA reads the variable once, at backend start-up).
"""

from __future__ import annotations

import os
import sys
import warnings

SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
SAFE_SETTING = f"{SCHEDULER_FLAG}=false"


def configure_xla_cpu(environ: dict | None = None) -> bool:
    """Add the scheduler flag to XLA_FLAGS unless the user set it. Returns True if added."""
    env = os.environ if environ is None else environ
    flags = env.get("XLA_FLAGS", "")
    if SCHEDULER_FLAG in flags:
        return False  # the user's choice, whatever it is, stands
    if environ is None and "jax" in sys.modules and _backend_started():
        warnings.warn(
            "jax was initialised before inner_loop was imported, so "
            f"{SAFE_SETTING} could not be applied; vmapped trainers may hang on CPU. "
            "Import inner_loop (or discover) before jax, or set XLA_FLAGS yourself.",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    env["XLA_FLAGS"] = f"{flags} {SAFE_SETTING}".strip()
    return True


def _backend_started() -> bool:
    """True once XLA's backend has been created (XLA_FLAGS is read then)."""
    try:
        from jax._src import xla_bridge

        return bool(getattr(xla_bridge, "_backends", {}))
    except Exception:  # pragma: no cover - private API moved; assume the worst
        return True
