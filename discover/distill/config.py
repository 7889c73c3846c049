"""What `discover distill` does: `DistillConfig`, and reading it from `--set key=value` pairs."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from discover.training.settings import parse_value, split_pairs
from inner_loop.config import check_seed
from inner_loop.envs import make_env
from inner_loop.errors import ConfigError

DEFAULT_ENV = "CartPole-v1"  # where a drift with no training envs (a zoo drift) is sampled
MAX_DEFAULT_TIMESTEPS = 65_536  # the default short run: the env's training length, at most this


@dataclass(frozen=True)
class DistillConfig:
    """Samples, search and choice of one distillation (docs/design.md, Distillation)."""

    envs: tuple[str, ...] = ()  # envs to sample on; () = the drift's training envs (else CartPole-v1)
    timesteps: int | None = None  # env steps of each sampling run; None = the env's, at most 65,536
    seeds: int = 2  # sampling runs per env (vmapped)
    every: int = 1  # keep the samples of every `every`-th update
    max_samples: int = 20_000  # run samples kept (a uniform random subset of all the runs' samples)
    grid_share: float = 0.2  # share of the total weight on the (r, A, p) grid (the rest on run samples)
    max_terms: int = 6  # atoms added by greedy forward selection
    max_size: int = 15  # largest formula (operations) the choice may return
    tolerance: float = 0.05  # choose the smallest formula with error <= best * (1 + tolerance)
    seed: int = 0  # PRNG seed of the sampling runs and the subsample

    def validate(self) -> "DistillConfig":
        for name in ("seeds", "every", "max_samples", "max_terms", "max_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{SETTING_OF[name]}={getattr(self, name)} is not allowed; it must be >= 1")
        if self.timesteps is not None and self.timesteps < 1:
            raise ConfigError(f"samples.timesteps={self.timesteps} leaves no samples; it must be >= one batch "
                              "of the env's config (num_envs * num_steps)")
        if not 0 <= self.grid_share < 1:
            raise ConfigError(f"samples.grid_share={self.grid_share!r} is not allowed; it must be in [0, 1)")
        if not 0 <= self.tolerance < math.inf:
            raise ConfigError(f"tolerance={self.tolerance!r} is not allowed; it must be a finite number >= 0")
        check_seed(self.seed)
        for env in self.envs:
            make_env(env)  # unknown env ids: one line with the allowed list
        return self


# --set key -> DistillConfig field
SETTINGS = {"env": "envs", "samples.timesteps": "timesteps", "samples.seeds": "seeds", "samples.every": "every",
            "samples.max": "max_samples", "samples.grid_share": "grid_share", "max_terms": "max_terms",
            "max_size": "max_size", "tolerance": "tolerance", "seed": "seed"}
SETTING_OF = {field: key for key, field in SETTINGS.items()}


def distill_config(pairs: list[str]) -> DistillConfig:
    """The DistillConfig of `--set` pairs (one-line ConfigError for an unknown key or bad value)."""
    changes = {}
    for key, text in split_pairs(pairs):
        if key not in SETTINGS:
            raise ConfigError(f"unknown setting {key!r}; allowed: {', '.join(SETTINGS)} (and drift.<option> "
                              "for a zoo drift)")
        field = SETTINGS[key]
        if field == "envs":
            changes[field] = tuple(e.strip() for e in text.split(",") if e.strip())
            if not changes[field]:
                raise ConfigError("env= is empty; name at least one gymnax env id")
        else:
            changes[field] = parse_value(key, text, float if field in ("grid_share", "tolerance") else int)
    return dataclasses.replace(DistillConfig(), **changes).validate()

