"""Where a drift is used: (r, A, progress) samples from short runs with it, plus a weighted grid.

    data = distill_data(resolved, config, key)   # DistillData: ratio, advantage, progress, weight, target

Run samples come from `discover.training.reach.collect_samples` (the (ratio, advantage,
progress) the drift was evaluated at in each minibatch step of training,
`Trainer.update_samples`) of `config.seeds` vmapped runs per env, each env at the inner
config its sweep used (the drift file's `provenance.sweep_config`, else the env's preset)
and `config.timesteps` steps. A uniform random subset of `config.max_samples` carries weight
`1 - grid_share`; a grid over r in [GRID_RATIO_MIN, GRID_RATIO_MAX], A in
[-GRID_ADVANTAGE, GRID_ADVANTAGE] and p in [0, 1] carries `grid_share`, spread over its
cells in proportion to how many run samples fall in each (plus a GRID_FLOOR share spread
evenly), so the formula is held where training goes and still pinned down near it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from discover.distill.config import DEFAULT_ENV, MAX_DEFAULT_TIMESTEPS, DistillConfig
from discover.training.reach import collect_samples
from discover.training.resolver import ResolvedDrift
from inner_loop import TrainConfig, preset
from inner_loop.errors import ConfigError

GRID_RATIO_MIN, GRID_RATIO_MAX = 0.5, 2.0  # grid ratios (log-spaced)
GRID_ADVANTAGE = 3.0  # grid advantages in [-3, 3] (normalised advantages)
GRID_SHAPE = (41, 25, 5)  # grid points along r, A, p
GRID_FLOOR = 0.25  # share of the grid's weight spread evenly over its cells


@dataclass(frozen=True)
class DistillData:
    """The weighted samples a formula is fitted on, and the drift's value at each."""

    ratio: np.ndarray  # (n,) float32
    advantage: np.ndarray  # (n,) float32
    progress: np.ndarray  # (n,) float32
    weight: np.ndarray  # (n,) float64, summing to 1
    target: np.ndarray  # (n,) float64, the drift being distilled
    run_samples: int  # how many of the n come from runs (the rest: the grid)
    time_aware: bool  # whether the drift's value depends on the progress
    envs: tuple[str, ...]  # the envs sampled
    configs: dict  # {env: the inner config of its sampling runs, as a dict}


def sampling_envs(resolved: ResolvedDrift, config: DistillConfig) -> tuple[str, ...]:
    """`config.envs`, else the drift's training envs, else DEFAULT_ENV."""
    return config.envs or tuple(resolved.training_envs or ()) or (DEFAULT_ENV,)


def sampling_config(resolved: ResolvedDrift, env: str, config: DistillConfig) -> TrainConfig:
    """The inner config of `env`'s sampling runs: the sweep's for that env (if the drift file
    records one), else the env's preset with the drift's own fields, then `config.timesteps`."""
    sweep = resolved.metadata.get("provenance", {}).get("sweep_config")
    if isinstance(sweep, dict):
        changes = {**(sweep.get("inner") or {}), **((sweep.get("inner_env") or {}).get(env) or {})}
        try:
            inner = preset(env).replace(env_id=env, **changes)
        except TypeError:
            raise ConfigError(f"drift file {resolved.spec!r}: its sweep_config has an unknown inner field "
                              f"in {sorted(changes)}") from None
    else:
        inner = resolved.train_config(env)
    timesteps = config.timesteps or min(inner.total_timesteps, MAX_DEFAULT_TIMESTEPS)
    if timesteps < inner.batch_size * config.every:
        raise ConfigError(f"samples.timesteps={timesteps} leaves no samples on {env}: a run needs at least "
                          f"{inner.batch_size * config.every} steps (samples.every={config.every} updates of "
                          f"{inner.batch_size})")
    return inner.replace(total_timesteps=timesteps).validate()


def run_samples(resolved: ResolvedDrift, params, config: DistillConfig, key: jax.Array,
                on_env: Callable[[str], None] = lambda env: None) -> tuple[np.ndarray, dict]:
    """(samples (3, n): ratio, advantage, progress of every env's runs pooled, {env: config})."""
    pooled, configs = [], {}
    for i, env in enumerate(sampling_envs(resolved, config)):
        inner = sampling_config(resolved, env, config)
        configs[env] = inner.to_dict()
        on_env(env)
        samples = collect_samples(inner, resolved.drift, params, jax.random.fold_in(key, i), config.every,
                                  seeds=config.seeds)
        pooled.append(np.stack([np.asarray(x, np.float32) for x in samples]))
    samples = np.concatenate(pooled, axis=1)
    finite = np.all(np.isfinite(samples), axis=0) & (samples[0] > 0)
    samples = samples[:, finite]
    if samples.shape[1] == 0:
        raise ConfigError("the sampling runs gave no finite samples; raise samples.timesteps")
    return samples, configs


def grid_points(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(grid (3, m), weight (m,) summing to 1): cells weighted by the run samples in them."""
    log_r = np.linspace(np.log(GRID_RATIO_MIN), np.log(GRID_RATIO_MAX), GRID_SHAPE[0])
    adv = np.linspace(-GRID_ADVANTAGE, GRID_ADVANTAGE, GRID_SHAPE[1])
    prog = np.linspace(0.0, 1.0, GRID_SHAPE[2])
    axes = (log_r, adv, prog)
    values = (np.log(samples[0]), samples[1], samples[2])
    index = tuple(_nearest(axis, v) for axis, v in zip(axes, values))
    counts = np.zeros(GRID_SHAPE)
    np.add.at(counts, index, 1.0)
    weight = (1 - GRID_FLOOR) * counts / counts.sum() + GRID_FLOOR / counts.size
    mesh = np.meshgrid(*axes, indexing="ij")
    grid = np.stack([np.exp(mesh[0]), mesh[1], mesh[2]]).reshape(3, -1).astype(np.float32)
    return grid, weight.reshape(-1)


def _nearest(axis: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of the grid value nearest each value (the end cells take everything beyond)."""
    step = axis[1] - axis[0]
    return np.clip(np.rint((values - axis[0]) / step), 0, len(axis) - 1).astype(int)


def distill_data(resolved: ResolvedDrift, config: DistillConfig, key: jax.Array,
                 on_env: Callable[[str], None] = lambda env: None) -> DistillData:
    """The weighted data set of `resolved` (see the module docstring)."""
    params_key, run_key, subset_key = jax.random.split(key, 3)
    fn = resolved.bind(params_key)  # a drift file's own params; a zoo drift's init(params_key)
    samples, configs = run_samples(resolved, fn.params, config, run_key, on_env)
    if samples.shape[1] > config.max_samples:
        keep = np.asarray(jax.random.choice(subset_key, samples.shape[1], (config.max_samples,), replace=False))
        samples = samples[:, np.sort(keep)]
    grid, grid_weight = grid_points(samples)
    points = np.concatenate([samples, grid], axis=1)
    n_runs = samples.shape[1]
    weight = np.concatenate([np.full(n_runs, (1 - config.grid_share) / n_runs), config.grid_share * grid_weight])
    target = np.asarray(jax.jit(fn)(*(jnp.asarray(x) for x in points)), np.float64)
    if not np.all(np.isfinite(target)):
        raise ConfigError(f"drift {resolved.spec!r} is not finite on {int((~np.isfinite(target)).sum())} samples")
    later = np.asarray(jax.jit(fn)(jnp.asarray(grid[0]), jnp.asarray(grid[1]), jnp.ones_like(grid[2])))
    earlier = np.asarray(jax.jit(fn)(jnp.asarray(grid[0]), jnp.asarray(grid[1]), jnp.zeros_like(grid[2])))
    return DistillData(*points, weight=weight, target=target, run_samples=n_runs,
                       time_aware=bool(np.any(later != earlier)), envs=tuple(configs), configs=configs)
