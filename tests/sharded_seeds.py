"""Train 3 seeds with `train_seeds` on however many devices XLA_FLAGS gives, and the same 3
seeds as one plain vmap on one device; print both, and the collectives of the split program,
as JSON. Used by tests/test_trainer.py with 2 forced CPU devices (3 seeds: one padded run)."""

import json
import re

from inner_loop.cpu import configure_cpu

configure_cpu()  # first: gymnax and evosax start jax when imported; a CPU device per core

import jax  # noqa: E402
import numpy as np  # noqa: E402

from discover.training.seeds import train_seeds  # noqa: E402
from inner_loop import TrainConfig, drifts, make_train  # noqa: E402
from inner_loop.parallel import runs_mesh, shard_runs  # noqa: E402

config = TrainConfig(env_id="CartPole-v1", total_timesteps=4 * 16 * 6, num_envs=4, num_steps=16,
                     update_epochs=2, num_minibatches=2)
drift = drifts.get("lpo")
params = drift.init(jax.random.PRNGKey(0))
split = train_seeds(config, drift, params, 3, jax.random.PRNGKey(3), on_progress=lambda done, total: None,
                    chunk_seconds=0.0)  # chunks of one update
keys = jax.random.split(jax.random.PRNGKey(3), 3)
train = make_train(config, drift)
plain = jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, params)
mesh = runs_mesh(4)
program = jax.jit(shard_runs(lambda k: jax.vmap(train, in_axes=(0, None))(k, params), mesh)).lower(
    jax.random.split(keys[0], 4)).compile().as_text()
print(json.dumps({"devices": len(jax.devices()), "mesh": mesh.size,
                  "split": {"final_return": split.final_return.tolist(), "curve": split.curve.tolist()},
                  "plain": {"final_return": np.asarray(plain["final_return"]).tolist(),
                            "curve": np.asarray(plain["curve"]).tolist()},
                  "collectives": sorted(set(re.findall(r"all-reduce|all-gather|all-to-all|collective-permute",
                                                       program)))}))
