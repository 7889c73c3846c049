"""Discovered drift functions for mirror learning: load one and use it in your own PPO.

    import discover
    drift = discover.load_drift("transfer-v1")        # or "dpo", "ppo", eps=0.1, "my.drift.npz"
    loss = -jnp.mean(ratio * advantages - drift(ratio, advantages, progress))

Importing `discover` has no side effect on the process (no XLA flag, no output). The
`discover` command, the sweeps and the project's vmapped trainers are documented in the README;
`configure_cpu()` gives a library user the CPU settings those trainers need.
"""

from discover.files.drift_file import LoadedDrift
from discover.training.resolver import load_drift
from inner_loop.cpu import configure_cpu
from inner_loop.drifts import ADVANTAGE_MAX, LOG_RATIO_CLIP
from inner_loop.errors import ConfigError

__all__ = ["load_drift", "LoadedDrift", "ConfigError", "configure_cpu", "LOG_RATIO_CLIP", "ADVANTAGE_MAX"]
