"""What the theorem check runs on: `VerifyConfig`, every field `--set`-able, and its seeds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import jax
import numpy as np

from inner_loop.config import NEIGHBOURHOODS, check_seed  # the trainer's names
from inner_loop.errors import ConfigError

DriftFn = Callable[..., jax.Array]  # drift_fn(ratio, advantage, progress) -> per-sample drift

ADVANTAGE_SCALINGS = ("std", "raw")
DRIFT_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class VerifyConfig:
    """What `verify_drift` checks and on how many MDPs; every field can be `--set`."""

    num_mdps: int = 256  # random MDPs checked at once (vmapped)
    num_states: int = 20  # states per MDP
    num_actions: int = 5  # actions per state
    gamma_min: float = 0.8  # discounts are drawn uniformly from [gamma_min, gamma_max]
    gamma_max: float = 0.99  # upper end of the discount range
    concentration: float = 1.0  # Dirichlet concentration of each transition row (small: near-deterministic)
    iterations: int = 50  # mirror-learning updates per MDP (progress = n / iterations)
    inner_steps: int = 50  # exponentiated-gradient steps of the per-state inner maximisation
    inner_lr: float = 1.0  # initial inner step size (per state: x1.5 after a better candidate, x0.5 after a worse)
    inner_restarts: int = 1  # extra inner ascents from random logits (closer to the global argmax)
    neighbourhood: str = "none"  # "none" (all policies) or "kl_ball" (KL(pi_old(s) || pi(s)) <= kl_delta per state)
    kl_delta: float = 0.05  # radius of the per-state KL ball when neighbourhood == "kl_ball"
    drift_dtype: str = "float32"  # the drift's dtype on the MDPs: float32 as in training (and faster)
    advantage_scaling: str = "std"  # "std": A_old / (std(A_old) + 1e-8) per MDP (as in training); "raw": A_old as is
    tol: float = 1e-8  # relative tolerance of eta(pi_{n+1}) >= eta(pi_n) (exact float64 evaluation)
    near_optimal: float = 0.01  # "within 1%": normalised gap to the optimum at most this
    max_final_gap: float = 0.0  # fail if some MDP ends with a normalised gap above this; 0 disables
    seed: int = 0  # seed of the MDPs, the random axiom points, the inner restarts (and lpo/ta_lpo params in the CLI)
    axiom_ratios: int = 121  # log-spaced ratios in [e^-20, e^20] (the trainer's clip) on the axiom grid, plus points near 1
    axiom_advantages: int = 25  # log-spaced |A| in [1e-8, 1e6] on the axiom grid, both signs, plus 0
    axiom_progress: int = 5  # evenly spaced progress values in [0, 1] on the axiom grid
    axiom_random_points: int = 8192  # extra random (r, A, progress) points

    def replace(self, **changes) -> "VerifyConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> "VerifyConfig":
        """Raise ConfigError (one line) for values the check cannot run with."""
        for name in ("num_mdps", "num_states", "num_actions", "iterations", "inner_steps",
                     "axiom_ratios", "axiom_advantages", "axiom_progress"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name}={value!r} is not allowed; it must be a positive integer")
        check_seed(self.seed)
        if self.num_actions < 2:
            raise ConfigError(f"num_actions={self.num_actions!r} is not allowed; it must be at least 2")
        for name in ("axiom_random_points", "inner_restarts"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name}={value!r} is not allowed; it must be an integer >= 0")
        if not 0 <= self.gamma_min <= self.gamma_max < 1:
            raise ConfigError(f"gamma_min={self.gamma_min!r}, gamma_max={self.gamma_max!r} are not allowed; "
                              "they must satisfy 0 <= gamma_min <= gamma_max < 1")
        for name in ("concentration", "inner_lr", "kl_delta", "tol", "near_optimal"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not allowed; it must be > 0")
        if not self.max_final_gap >= 0:
            raise ConfigError(f"max_final_gap={self.max_final_gap!r} is not allowed; it must be >= 0")
        if self.neighbourhood not in NEIGHBOURHOODS:
            raise ConfigError(f"neighbourhood={self.neighbourhood!r} is not allowed; "
                              f"choose one of {', '.join(NEIGHBOURHOODS)}")
        if self.drift_dtype not in DRIFT_DTYPES:
            raise ConfigError(f"drift_dtype={self.drift_dtype!r} is not allowed; "
                              f"choose one of {', '.join(DRIFT_DTYPES)}")
        if self.advantage_scaling not in ADVANTAGE_SCALINGS:
            raise ConfigError(f"advantage_scaling={self.advantage_scaling!r} is not allowed; "
                              f"choose one of {', '.join(ADVANTAGE_SCALINGS)}")
        return self


def mdp_rng(seed: int) -> np.random.Generator:
    """The generator of the random MDPs for `seed` (independent of `axiom_rng`)."""
    return np.random.default_rng([seed, 0])
