"""Run one inner-loop configuration over vmapped seeds, with timings and progress.

The run is split into compiled chunks of updates (`Trainer.run_updates`) so a progress
display can advance between chunks; inside a chunk nothing leaves the device. The numbers
are those of `make_train(config, drift)(key, drift_params)` for each seed key.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from inner_loop import TrainConfig, make_train
from inner_loop.drifts import Drift
from inner_loop.parallel import pad_runs, padded_size, runs_mesh, shard_runs


@dataclass
class SeedsResult:
    """What one configuration did over its seeds."""

    final_return: np.ndarray  # (seeds,)
    curve: np.ndarray  # (seeds, num_updates) mean episodic return per update
    metrics: dict  # every per-update metric, (seeds, num_updates)
    compile_seconds: float
    run_seconds: float
    env_steps: int  # per seed

    @property
    def env_steps_per_second(self) -> float:
        return self.final_return.shape[0] * self.env_steps / self.run_seconds


def chunk_length(num_updates: int, target_chunks: int = 50) -> int:
    """A divisor of num_updates near num_updates / target_chunks (one compiled chunk size)."""
    target = max(1, num_updates / target_chunks)
    divisors = [d for d in range(1, num_updates + 1) if num_updates % d == 0]
    return min(divisors, key=lambda d: (abs(math.log(d / target)), d))


def train_seeds(config: TrainConfig, drift: Drift, drift_params: Any, num_seeds: int, key: jax.Array, *,
                on_progress: Callable[[int, int], None] | None = None,
                target_chunks: int = 50) -> SeedsResult:
    """Train `num_seeds` vmapped seeds of one drift; seed i uses `split(key, num_seeds)[i]`.

    The seeds are split over the local devices (`inner_loop.parallel`, which says how
    that, like the number of seeds, can change float rounding). `key` must not be one the
    drift params were drawn from (split a root key first).
    """
    trainer = make_train(config, drift)
    hparams = trainer.default_hparams()
    mesh = runs_mesh(num_seeds)
    keys = pad_runs(jax.random.split(key, num_seeds), padded_size(num_seeds, mesh))
    chunk = chunk_length(trainer.num_updates, target_chunks)

    def init_fn(keys):
        return jax.vmap(lambda k: trainer.init(k, hparams))(keys)

    def run_fn(state, num_updates):
        return jax.vmap(lambda s: trainer.run_updates(s, drift_params, hparams, num_updates))(state)

    start = time.perf_counter()
    init = jax.jit(shard_runs(init_fn, mesh)).lower(keys).compile()
    state_shape = jax.eval_shape(init_fn, keys)
    run_chunk = jax.jit(shard_runs(lambda s: run_fn(s, chunk), mesh)).lower(state_shape).compile()
    # the whole run is traced only, never run: the shapes of the per-update metrics
    per_update_shape = jax.eval_shape(lambda s: run_fn(s, trainer.num_updates), state_shape)[1]
    summarize = jax.jit(shard_runs(jax.vmap(trainer.summarize), mesh)).lower(per_update_shape).compile()
    compile_seconds = time.perf_counter() - start

    start = time.perf_counter()
    state = init(keys)
    pieces = []
    for done in range(0, trainer.num_updates, chunk):
        state, per_update = run_chunk(state)
        pieces.append(per_update)
        if on_progress is not None:
            jax.block_until_ready(per_update)
            on_progress(done + chunk, trainer.num_updates)
    per_update = jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=1), *pieces)
    metrics = jax.block_until_ready(summarize(per_update))
    run_seconds = time.perf_counter() - start

    metrics = jax.tree.map(lambda x: np.asarray(x)[:num_seeds], metrics)  # padding dropped
    return SeedsResult(final_return=metrics.pop("final_return"), curve=metrics.pop("curve"),
                       metrics=metrics, compile_seconds=compile_seconds, run_seconds=run_seconds,
                       env_steps=config.env_steps)
