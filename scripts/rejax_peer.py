"""rejax's PPO, timed in its own venv (rejax is not a dependency of this project).

    /path/to/rejax-venv/bin/python scripts/rejax_peer.py ENV_ID SEEDS UPDATES

Builds rejax 0.1.3's PPO with the benchmark's settings (64 envs x 128 steps, 4 epochs,
8 minibatches, 64x64 ReLU MLP, lr 1e-2 annealed off, no evaluation during training),
compiles `SEEDS` vmapped runs of `UPDATES` updates, prints `ready`, then for every line
read on stdin runs them once and prints the seconds taken (compilation excluded). Used by
`bench_inner.py --rejax-python`, which alternates its calls with ours.
"""

import sys
import time

import jax
from rejax import PPO


def main() -> None:
    env_id, seeds, updates = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    num_envs, num_steps = 64, 128
    algo = PPO.create(env=env_id, num_envs=num_envs, num_steps=num_steps, num_epochs=4, num_minibatches=8,
                      learning_rate=1e-2, max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95, clip_eps=0.2,
                      ent_coef=0.01, vf_coef=0.5, total_timesteps=num_envs * num_steps * updates,
                      eval_freq=num_envs * num_steps * updates, skip_initial_evaluation=True,
                      agent_kwargs={"activation": "relu", "hidden_layer_sizes": (64, 64)})
    algo = algo.replace(eval_callback=lambda algo, ts, rng: ())  # time training only
    train = jax.jit(jax.vmap(algo.train))
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    compiled = train.lower(keys).compile()
    jax.block_until_ready(compiled(keys))  # warm-up
    print("ready", flush=True)
    for _ in sys.stdin:
        start = time.perf_counter()
        jax.block_until_ready(compiled(keys))
        print(time.perf_counter() - start, flush=True)


if __name__ == "__main__":
    main()
