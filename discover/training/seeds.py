"""Run one inner-loop configuration over vmapped seeds, with timings and progress.

With a progress callback the run is split into compiled chunks of updates
(`Trainer.run_updates`, one program for every chunk length) so the display can advance
between them. Chunks are sized by time, about `CHUNK_SECONDS` of work each, learned from the
chunks already done, and the next chunk is dispatched before the host waits for the last
one, so the device does not wait for the display (runs split over several devices still pay
a little per chunk: docs/results/throughput/). The numbers are exactly those of one call,
however the run is split (tests/test_trainer.py), and those of
`make_train(config, drift)(key, drift_params)` for each seed key.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import jax
import numpy as np

from inner_loop import TrainConfig, make_train
from inner_loop.drifts import Drift
from inner_loop.parallel import pad_runs, padded_size, runs_mesh, shard_runs

CHUNK_SECONDS = 3.0  # work per compiled chunk when progress is shown


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


class SeedRunner:
    """The compiled programs of `num_seeds` vmapped seeds of one drift: `runner(key, on_progress)`
    trains them (seed i uses `split(key, num_seeds)[i]`); call it as often as needed.

    The seeds are split over the local devices (`inner_loop.parallel`, which says how that,
    like the number of seeds, can change float rounding).
    """

    def __init__(self, config: TrainConfig, drift: Drift, drift_params: Any, num_seeds: int):
        trainer = make_train(config, drift)
        hparams = trainer.default_hparams()
        self.config, self.num_seeds, self.num_updates = config, num_seeds, trainer.num_updates
        self.mesh = runs_mesh(num_seeds)
        self.padded = padded_size(num_seeds, self.mesh)

        def init(keys):
            states = jax.vmap(lambda k: trainer.init(k, hparams))(keys)
            return states, jax.vmap(lambda s: trainer.empty_record(s, drift_params, hparams))(states)

        def chunk(bounds, states, record):
            start, stop = bounds[0], bounds[1]  # shared by every run: the loop counter stays unbatched
            return jax.vmap(lambda s, r: trainer.run_updates(s, drift_params, hparams, r, start, stop))(
                states, record)

        started = time.perf_counter()
        key = jax.random.PRNGKey(0)
        keys = jax.ShapeDtypeStruct((self.padded,) + key.shape, key.dtype)
        self._init = jax.jit(shard_runs(init, self.mesh)).lower(keys).compile()
        states, record = jax.eval_shape(init, keys)
        bounds = jax.ShapeDtypeStruct((2,), np.int32)
        self._chunk = jax.jit(shard_runs(chunk, self.mesh, whole_leading_args=1)).lower(
            bounds, states, record).compile()
        self._summarize = jax.jit(shard_runs(jax.vmap(trainer.summarize), self.mesh)).lower(record).compile()
        self.compile_seconds = time.perf_counter() - started

    def __call__(self, key: jax.Array, on_progress: Callable[[int, int], None] | None = None,
                 chunk_seconds: float = CHUNK_SECONDS) -> SeedsResult:
        started = time.perf_counter()
        states, record = self._init(pad_runs(jax.random.split(key, self.num_seeds), self.padded))
        if on_progress is None:
            states, record = self._chunk(np.asarray([0, self.num_updates], np.int32), states, record)
        else:
            states, record = self._chunks(states, record, on_progress, chunk_seconds)
        metrics = jax.block_until_ready(self._summarize(record))
        run_seconds = time.perf_counter() - started
        metrics = jax.tree.map(lambda x: np.asarray(x)[:self.num_seeds], metrics)  # padding dropped
        return SeedsResult(final_return=metrics.pop("final_return"), curve=metrics.pop("curve"),
                           metrics=metrics, compile_seconds=self.compile_seconds, run_seconds=run_seconds,
                           env_steps=self.config.env_steps)

    def _chunks(self, states, record, on_progress, chunk_seconds: float):
        """All updates in chunks of about `chunk_seconds`, with at most two chunks in flight: the
        host waits on the older one (and reports it) while the device runs the newer."""
        total, dispatched, size = self.num_updates, 0, 1  # the first chunk, one update, is timed alone
        in_flight: deque = deque()
        last_finished, timed = time.perf_counter(), False
        while dispatched < total or in_flight:
            if dispatched < total and len(in_flight) < (2 if timed else 1):
                stop = min(total, dispatched + size)
                states, record = self._chunk(np.asarray([dispatched, stop], np.int32), states, record)
                in_flight.append((stop, stop - dispatched, states.update))
                dispatched = stop
                continue
            stop, length, marker = in_flight.popleft()
            jax.block_until_ready(marker)
            # the device ran this chunk since the previous one finished (it was queued behind it)
            now = time.perf_counter()
            seconds_per_update = max(now - last_finished, 1e-9) / length
            last_finished, timed = now, True
            size = max(1, min(total, math.floor(chunk_seconds / seconds_per_update)))
            on_progress(stop, total)
        return states, record


def train_seeds(config: TrainConfig, drift: Drift, drift_params: Any, num_seeds: int, key: jax.Array, *,
                on_progress: Callable[[int, int], None] | None = None,
                chunk_seconds: float = CHUNK_SECONDS) -> SeedsResult:
    """Compile and train `num_seeds` vmapped seeds of one drift once (`SeedRunner`). `key` must
    not be one the drift params were drawn from (split a root key first)."""
    return SeedRunner(config, drift, drift_params, num_seeds)(key, on_progress, chunk_seconds)
