"""What `discover distill` does: `DistillConfig`, and reading it from `--set key=value` pairs."""

from __future__ import annotations

from dataclasses import dataclass

from inner_loop.envs import make_env
from inner_loop.errors import ConfigError
from inner_loop.settings import (apply_settings, check_fields, interval, non_negative, positive_int, seed_value,
                                 setting, settable_fields, split_pairs)

DEFAULT_ENV = "CartPole-v1"  # where a drift with no training envs (a zoo drift) is sampled
MAX_DEFAULT_TIMESTEPS = 65_536  # the default short run: the env's training length, at most this


def _known_envs(key: str, envs: tuple[str, ...]) -> None:
    for env in envs:
        make_env(env)  # unknown env ids: one line with the allowed list


def _timesteps(key: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{key}={value!r} leaves no samples; it must be >= one batch of the env's config "
                          "(num_envs * num_steps)")


@dataclass(frozen=True)
class DistillConfig:
    """Samples, search and choice of one distillation (docs/design.md, Distillation); each
    field's `--set` key is its `key` (env=, samples.timesteps=, ...)."""

    envs: tuple[str, ...] = setting((), _known_envs, key="env")  # envs to sample on; () = the drift's training envs (else CartPole-v1)
    timesteps: int | None = setting(None, _timesteps, key="samples.timesteps")  # env steps of each sampling run; None = the env's, at most 65,536
    seeds: int = setting(2, positive_int, key="samples.seeds")  # sampling runs per env (vmapped)
    every: int = setting(1, positive_int, key="samples.every")  # keep the samples of every `every`-th update
    max_samples: int = setting(20_000, positive_int, key="samples.max")  # run samples kept (a uniform random subset of all the runs' samples)
    grid_share: float = setting(0.2, interval(0, 1, high_open=True), key="samples.grid_share")  # share of the total weight on the (r, A, p) grid (the rest on run samples)
    max_terms: int = setting(6, positive_int)  # atoms added by greedy forward selection
    max_size: int = setting(15, positive_int)  # largest formula (operations) the choice may return
    tolerance: float = setting(0.05, non_negative)  # choose the smallest formula with error <= best * (1 + tolerance)
    seed: int = setting(0, seed_value)  # PRNG seed of the sampling runs and the subsample

    def validate(self) -> "DistillConfig":
        check_fields(self)
        return self


SETTINGS = tuple(settable_fields(DistillConfig))  # the --set keys


def distill_config(pairs: list[str]) -> DistillConfig:
    """The DistillConfig of `--set` pairs (one-line ConfigError for an unknown key or bad value)."""
    pairs = split_pairs(pairs)
    if any(key == "env" and not text.strip(" ,") for key, text in pairs):
        raise ConfigError("env= is empty; name at least one gymnax env id")
    return apply_settings(DistillConfig(), pairs, also_allowed=("drift.<option> for a zoo drift",)).validate()
