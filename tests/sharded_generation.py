"""Run two sweep generations, then score their mean drift, on however many devices XLA_FLAGS gives; print its numbers as JSON.

Used by tests/test_outer_loop.py to compare 1 device with 4 forced CPU devices.
"""

import json

from inner_loop.cpu import configure_cpu

configure_cpu()  # first: gymnax and evosax start jax when imported; a CPU device per core

import jax  # noqa: E402
import numpy as np  # noqa: E402

from discover.sweep.machinery import build_machinery  # noqa: E402
from outer_loop import Normalisation  # noqa: E402
from discover.sweep.config import apply_sweep_overrides, get_preset  # noqa: E402

config = apply_sweep_overrides(get_preset("quick"), [
    "population_size=4", "seeds_per_member=2", "total_timesteps=1024", "num_envs=4", "num_steps=32",
    "update_epochs=2", "num_minibatches=2", "drift=lpo", "drift.hidden_size=4", "strategy.std=1.0"]).validate()
machinery = build_machinery(config, Normalisation(ppo=[20.0], untrained=[0.0]))
state, metrics = machinery.run_generations(machinery.initial_state, 2)
mean = machinery.strategy.get_mean(state.es_state)
mean_fitness, mean_returns = machinery.mean_fitness(jax.random.PRNGKey(7), jax.device_get(mean))
print(json.dumps({"devices": len(jax.devices()),
                  "mean_drift_returns": np.asarray(mean_returns).tolist(),
                  "fitness": np.asarray(metrics["fitness"]).tolist(),
                  "mean": [np.asarray(x).tolist() for x in jax.tree.leaves(mean)]}))
