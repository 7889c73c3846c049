"""PPO reference returns: the denominators of the sweep's fitness (DESIGN.md section 3).

A member's fitness on an env is its final return divided by PPO's final return on the
same inner-loop config. The references are measured by the project
(`scripts/ppo_references.py` runs PPO over many seeds and writes
`discover/data/ppo_references.json`), never typed in by hand; an entry matches a config
only if every inner-loop field the run reads is equal (`TrainConfig.fields_read`: a
TRPO-only setting such as `kl_delta` does not separate two PPO configs). A sweep whose
config has no stored entry measures it at start-up the same way and keeps it in its run
folder.
"""

from __future__ import annotations

import json
import time
from importlib import resources
import jax
import numpy as np

from discover.outputs import package_versions
from inner_loop import TrainConfig, drifts
from inner_loop.config import fields_read
from inner_loop.errors import ConfigError

DATA_FILE = "ppo_references.json"
FORMAT_VERSION = 1


def stored_references() -> list[dict]:
    """Every entry of the packaged reference file."""
    text = resources.files("discover.data").joinpath(DATA_FILE).read_text()
    return json.loads(text)["references"]


def find_reference(config: TrainConfig, entries: list[dict] | None = None) -> dict | None:
    """The stored entry measured on a config that trains exactly as `config` does, or None."""
    wanted = config.fields_read()
    for entry in stored_references() if entries is None else entries:
        if fields_read(entry["config"]) == wanted:
            return entry
    return None


def measure_reference(config: TrainConfig, num_seeds: int, key: jax.Array, on_progress=None) -> dict:
    """Train PPO on `config` over `num_seeds` vmapped seeds; an entry for the data file."""
    from discover.training import train_seeds

    ppo = drifts.get("ppo")
    result = train_seeds(config, ppo, ppo.init(key), num_seeds, key, on_progress=on_progress)
    returns = np.asarray(result.final_return, np.float64)
    if not np.all(np.isfinite(returns)):
        failed = int(np.sum(~np.isfinite(returns)))
        raise ConfigError(
            f"PPO reference run on {config.env_id}: {failed} of {num_seeds} seeds have no final return (no "
            f"episode finished in the last final_window={config.final_window} of {config.env_steps} steps, or "
            "the run diverged); use a larger total_timesteps or final_window")
    return {
        "env_id": config.env_id, "drift": "ppo", "drift_options": ppo.options(), "seeds": num_seeds,
        "ppo_reference_return": float(returns.mean()),
        "std": float(returns.std(ddof=1)) if num_seeds > 1 else 0.0,
        "final_returns": returns.tolist(), "config": config.to_dict(),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": package_versions(),
    }
