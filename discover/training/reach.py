"""What a drift family can represent: fit it by gradient descent to a target drift on the
(r, A, progress) samples of a real training run, and report the relative error.

    samples = collect_samples(config, drifts.get("ppo"), {}, key, every=4)
    params, error = fit_family(drifts.get("lpo", start="ppo"), drifts.get("dpo"), samples, key)

`error = ||d_fit - d_target|| / ||d_target||` over the samples (an L2 norm). Used by
`scripts/reach.py` (the reach table) and its test.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from inner_loop import TrainConfig, make_train
from inner_loop.drifts import Drift


class Samples(NamedTuple):
    ratio: jax.Array  # (n,)
    advantage: jax.Array  # (n,) as the drift got it: normalised per minibatch (if the config normalises)
    progress: jax.Array  # (n,) training progress in [0, 1)


def collect_samples(config: TrainConfig, drift: Drift, drift_params: Any, key: jax.Array, every: int = 1,
                    seeds: int | None = None) -> Samples:
    """The samples the drift saw in every `every`-th update of one run of `drift` on `config`
    (or of `seeds` runs, vmapped over `jax.random.split(key, seeds)`): `Trainer.update_samples`'
    inputs of every minibatch step, so `update_epochs * batch_size` per kept update."""
    trainer = make_train(config, drift)

    @jax.jit
    def run(key):
        state = trainer.init(key)

        def one(state, _):
            state, samples = trainer.update_samples(state, drift_params)
            return state, samples

        def block(state, _):
            state, _ = jax.lax.scan(lambda s, _: trainer.update(s, drift_params, trainer.default_hparams()),
                                    state, None, every - 1)
            return one(state, None)

        _, samples = jax.lax.scan(block, state, None, trainer.num_updates // every)
        return samples

    samples = run(key) if seeds is None else jax.jit(jax.vmap(run))(jax.random.split(key, seeds))
    ratio, advantage, progress = (x.reshape(-1) for x in samples)
    return Samples(ratio, advantage, progress)


def relative_error(fitted: jax.Array, target: jax.Array) -> jax.Array:
    return jnp.linalg.norm(fitted - target) / jnp.maximum(jnp.linalg.norm(target), 1e-12)


def fit_family(family: Drift, target: Drift, samples: Samples, key: jax.Array, steps: int = 3000,
               lr: float = 3e-3, target_params: Any = None, init_scale: float = 0.01) -> tuple[Any, float]:
    """`family`'s params fitted to `target` on `samples` (Adam on the squared error, from
    the family's start); returns (params, relative error)."""
    want = target(target_params or {}, samples.ratio, samples.advantage, samples.progress)
    scale = jnp.maximum(jnp.mean(want * want), 1e-12)

    def loss(params):
        got = family(params, samples.ratio, samples.advantage, samples.progress)
        return jnp.mean((got - want) ** 2) / scale

    # A small random read-out: at the exact start `relu(0 + h)` (start "none") has no gradient.
    params = dataclasses.replace(family, init_scale=init_scale).init(key)
    tx = optax.adam(optax.cosine_decay_schedule(lr, steps))

    @jax.jit
    def train(params):
        def step(carry, _):
            params, opt_state = carry
            value, grads = jax.value_and_grad(loss)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, steps)
        return params

    params = train(params)
    got = family(params, samples.ratio, samples.advantage, samples.progress)
    return params, float(relative_error(got, want))
