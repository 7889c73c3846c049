"""PPO and untrained-policy reference returns: the normalisers of the sweep's fitness.

A member's fitness on an env is `(R - R_0) / (R_ppo - R_0)` (`outer_loop.fitness`): R_ppo
PPO's final return and R_0 the untrained policy's (the same trainer at a learning rate of
1e-12, as `discover compare` measures it) on the same inner-loop config. The references
are measured by the project
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

from discover.files.atomic import package_versions
from discover.training.seeds import train_seeds
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


UNTRAINED_LR = 1e-12  # the untrained policy: the same trainer with a learning rate of ~0


def untrained_returns(config: TrainConfig, num_seeds: int, key: jax.Array) -> np.ndarray:
    """The untrained policy's final returns on `config`, one per seed that finished an
    episode in the final window (the others are NaN and left out)."""
    returns = train_seeds(config.replace(lr=UNTRAINED_LR), drifts.get("ppo"), {}, num_seeds, key).final_return
    return returns[np.isfinite(returns)]


def measure_untrained(config: TrainConfig, num_seeds: int, key: jax.Array) -> dict:
    """`untrained_returns` as reference-entry fields; ConfigError if no seed has one."""
    finite = np.asarray(untrained_returns(config, num_seeds, key), np.float64)
    if not finite.size:
        raise ConfigError(f"untrained policy on {config.env_id}: no seed finished an episode in the last "
                          f"final_window={config.final_window} of {config.env_steps} steps; use a larger "
                          "total_timesteps or final_window")
    return {"untrained_return": float(finite.mean()), "untrained_seeds": int(finite.size),
            "untrained_returns": finite.tolist()}


MARGIN_SES = 3.0  # PPO must beat the untrained policy by 3 standard errors of the difference of the means
LEARNABLE_REMEDY = "give that env a larger total_timesteps or another lr"


def standard_error(values) -> float | None:
    """The standard error of the mean of per-seed returns; None with fewer than 2 seeds."""
    values = np.asarray(values if values is not None else [], np.float64)
    return float(values.std(ddof=1) / np.sqrt(values.size)) if values.size >= 2 else None


def reference_margin(entry: dict) -> float:
    """How far PPO's reference return must exceed the untrained policy's: MARGIN_SES standard
    errors of the difference of the two means, from the entry's per-seed returns."""
    ppo = standard_error(entry.get("final_returns"))
    if ppo is None:
        raise ConfigError(f"the PPO reference of {entry.get('env_id')} has no per-seed final_returns of 2 or more "
                          "seeds, so its noise is unknown; measure it again (scripts/ppo_references.py)")
    if "untrained_return" not in entry:
        untrained = 0.0  # a run folder of format 1: the zero point is 0 by definition, not a measurement
    else:
        # Without 2 per-seed untrained returns (run folders from before they were kept, or one
        # seed that finished an episode) take PPO's standard error for the untrained policy's:
        # on the stored envs the untrained seeds spread at most about as much (sd ratio CartPole
        # 0.02, Acrobot 0.06, Breakout 0.09, Pendulum 1.04; ppo_references.json, 16 seeds each).
        untrained = standard_error(entry.get("untrained_returns"))
        untrained = ppo if untrained is None else untrained
    return MARGIN_SES * float(np.hypot(ppo, untrained))


def check_learnable(entry: dict, remedy: str = LEARNABLE_REMEDY) -> None:
    """ConfigError (one line) unless PPO beats the untrained policy on the entry's env by
    `reference_margin`: a span within the noise would make that env's normalised fitness noise
    (or let it dominate the mean over envs), and a span of 0 leaves the ES without signal."""
    ppo, untrained = entry["ppo_reference_return"], entry.get("untrained_return", 0.0)
    margin = reference_margin(entry)
    if not ppo - untrained > margin:
        raise ConfigError(f"PPO's reference return on {entry['env_id']} ({ppo:.4g}) does not beat the untrained "
                          f"policy's ({untrained:.4g}) by the margin of {margin:.3g} ({MARGIN_SES:g} standard errors "
                          f"of the difference of the two means over their seeds), so its PPO-normalised fitness "
                          f"would be noise; {remedy}")


def measure_reference(config: TrainConfig, num_seeds: int, key: jax.Array, on_progress=None) -> dict:
    """Train PPO (and the untrained policy) on `config` over `num_seeds` vmapped seeds; an
    entry for the data file."""
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
        "final_returns": returns.tolist(), **measure_untrained(config, num_seeds, key), "config": config.to_dict(),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": package_versions(),
    }
