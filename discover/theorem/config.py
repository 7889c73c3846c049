"""What the theorem check runs on: `VerifyConfig`, every field `--set`-able, and its seeds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import jax
import numpy as np

from inner_loop.config import NEIGHBOURHOODS  # the trainer's names
from inner_loop.errors import ConfigError
from inner_loop.settings import (check_fields, count, int_at_least, interval, non_negative, one_of, positive,
                                 positive_int, seed_value, setting)

DriftFn = Callable[..., jax.Array]  # drift_fn(ratio, advantage, progress) -> per-sample drift

ADVANTAGE_SCALINGS = ("std", "raw")
DRIFT_DTYPES = ("float32", "float64")
_DISCOUNT = interval(0, 1, high_open=True)


@dataclass(frozen=True)
class VerifyConfig:
    """What `verify_drift` checks and on how many MDPs; every field can be `--set`."""

    num_mdps: int = setting(256, positive_int)  # random MDPs checked at once (vmapped)
    num_states: int = setting(20, positive_int)  # states per MDP
    num_actions: int = setting(5, int_at_least(2))  # actions per state
    gamma_min: float = setting(0.8, _DISCOUNT)  # discounts are drawn uniformly from [gamma_min, gamma_max]
    gamma_max: float = setting(0.99, _DISCOUNT)  # upper end of the discount range
    concentration: float = setting(1.0, positive)  # Dirichlet concentration of each transition row (small: near-deterministic)
    iterations: int = setting(50, positive_int)  # mirror-learning updates per MDP (progress = n / iterations)
    inner_steps: int = setting(50, positive_int)  # exponentiated-gradient steps of the per-state inner maximisation
    inner_lr: float = setting(1.0, positive)  # initial inner step size (per state: x1.5 after a better candidate, x0.5 after a worse)
    inner_restarts: int = setting(1, count)  # extra inner ascents from random logits (closer to the global argmax)
    neighbourhood: str = setting("none", one_of(*NEIGHBOURHOODS))  # "none" (all policies) or "kl_ball" (KL(pi_old(s) || pi(s)) <= kl_delta per state)
    kl_delta: float = setting(0.05, positive)  # radius of the per-state KL ball when neighbourhood == "kl_ball"
    drift_dtype: str = setting("float32", one_of(*DRIFT_DTYPES))  # the drift's dtype on the MDPs: float32 as in training (and faster)
    advantage_scaling: str = setting("std", one_of(*ADVANTAGE_SCALINGS))  # "std": A_old / (std(A_old) + 1e-8) per MDP (as in training); "raw": A_old as is
    tol: float = setting(1e-8, positive)  # relative tolerance of eta(pi_{n+1}) >= eta(pi_n) (exact float64 evaluation)
    near_optimal: float = setting(0.01, positive)  # "within 1%": normalised gap to the optimum at most this
    max_final_gap: float = setting(0.0, non_negative)  # fail if some MDP ends with a normalised gap above this; 0 disables
    seed: int = setting(0, seed_value)  # seed of the MDPs, the random axiom points, the inner restarts (and lpo/ta_lpo params in the CLI)
    axiom_ratios: int = setting(121, positive_int)  # log-spaced ratios in [e^-20, e^20] (the trainer's clip) on the axiom grid, plus points near 1
    axiom_advantages: int = setting(25, positive_int)  # log-spaced |A| in [1e-8, 1e6] on the axiom grid, both signs, plus 0
    axiom_progress: int = setting(5, positive_int)  # evenly spaced progress values in [0, 1] on the axiom grid
    axiom_random_points: int = setting(8192, count)  # extra random (r, A, progress) points

    def replace(self, **changes) -> "VerifyConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> "VerifyConfig":
        """Raise ConfigError (one line) for values the check cannot run with."""
        check_fields(self)
        if not 0 <= self.gamma_min <= self.gamma_max < 1:
            raise ConfigError(f"gamma_min={self.gamma_min!r}, gamma_max={self.gamma_max!r} are not allowed; "
                              "they must satisfy 0 <= gamma_min <= gamma_max < 1")
        return self


def mdp_rng(seed: int) -> np.random.Generator:
    """The generator of the random MDPs for `seed` (independent of `axiom_rng`)."""
    return np.random.default_rng([seed, 0])
