"""A plain PPO built the way the peer JAX implementations are, as an on-host yardstick.

Steps per second depend on the host (the peer figures were taken on another CPU),
so `bench_inner.py` times this yardstick beside our trainer, on the same configs, in the
same process. It is written for this benchmark and follows the usual single-file JAX PPO
design rather than ours:
  * one actor-critic apply per env step, giving the action and the value together;
  * the PRNG key split once per step (action) and once per step for the envs;
  * no truncation bootstrapping (a truncated episode is treated as ended), so no second
    critic pass over the final observations;
  * GAE by a reverse scan (unroll 16), `jax.random.permutation` shuffles, the clipped
    objective, clipped value loss, entropy bonus, global-norm clipping and Adam.
Same network shapes and sizes (separate actor and critic MLPs, orthogonal init) and the
same batch, epochs and minibatches as the trainer it is compared with.
"""

from __future__ import annotations

from inner_loop.cpu import configure_cpu

configure_cpu()  # first: gymnax and evosax start jax when imported; a CPU device per core

import flax.linen as nn  # noqa: E402
import gymnax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from inner_loop.networks import orthogonal  # noqa: E402


class _ActorCritic(nn.Module):
    action_dim: int
    hidden_size: int
    activation: str

    @nn.compact
    def __call__(self, obs):
        act = nn.relu if self.activation == "relu" else nn.tanh
        dense = lambda size, scale: nn.Dense(size, kernel_init=orthogonal(scale))  # noqa: E731
        actor = act(dense(self.hidden_size, np.sqrt(2))(obs))
        actor = act(dense(self.hidden_size, np.sqrt(2))(actor))
        logits = dense(self.action_dim, 0.01)(actor)
        critic = act(dense(self.hidden_size, np.sqrt(2))(obs))
        critic = act(dense(self.hidden_size, np.sqrt(2))(critic))
        return logits, dense(1, 1.0)(critic)[..., 0]


def make_peer_train(env_id: str, num_envs: int, num_steps: int, update_epochs: int,
                    num_minibatches: int, num_updates: int, hidden_size: int = 64,
                    activation: str = "tanh", gamma: float = 0.99, gae_lambda: float = 0.95):
    """`train(key, lr) -> per-update sum of finished-episode returns` (discrete actions)."""
    env, env_params = gymnax.make(env_id)
    num_actions = env.action_space(env_params).n
    obs_dim = int(np.prod(env.observation_space(env_params).shape))
    network = _ActorCritic(num_actions, hidden_size, activation)
    batch_size = num_envs * num_steps

    def train(key, lr):
        key, init_key, reset_key = jax.random.split(key, 3)
        params = network.init(init_key, jnp.zeros(obs_dim))
        tx = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(lr, eps=1e-5))
        opt_state = tx.init(params)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_envs), env_params)
        obs = obs.reshape(num_envs, -1).astype(jnp.float32)

        def update(carry, _):
            params, opt_state, env_state, obs, key, episode_return = carry

            def env_step(carry, _):
                env_state, obs, key, episode_return = carry
                key, act_key, step_key = jax.random.split(key, 3)
                logits, value = network.apply(params, obs)
                action = jax.random.categorical(act_key, logits)
                log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], -1)[:, 0]
                next_obs, env_state, reward, terminated, truncated, _ = jax.vmap(
                    env.step, in_axes=(0, 0, 0, None))(jax.random.split(step_key, num_envs), env_state, action,
                                                       env_params)
                done = jnp.logical_or(terminated, truncated)
                episode_return = episode_return + reward
                finished = jnp.where(done, episode_return, 0.0)
                transition = (obs, action, log_prob, value, reward, done, finished)
                next_obs = next_obs.reshape(num_envs, -1).astype(jnp.float32)
                return (env_state, next_obs, key, jnp.where(done, 0.0, episode_return)), transition

            (env_state, obs, key, episode_return), traj = jax.lax.scan(
                env_step, (env_state, obs, key, episode_return), None, num_steps)
            traj_obs, action, log_prob, value, reward, done, finished = traj
            _, last_value = network.apply(params, obs)

            def gae_step(carry, step):
                advantage, next_value = carry
                done_t, value_t, reward_t = step
                not_done = 1.0 - done_t
                delta = reward_t + gamma * next_value * not_done - value_t
                advantage = delta + gamma * gae_lambda * not_done * advantage
                return (advantage, value_t), advantage

            _, advantages = jax.lax.scan(gae_step, (jnp.zeros_like(last_value), last_value),
                                         (done.astype(jnp.float32), value, reward), reverse=True, unroll=16)
            targets = advantages + value

            def epoch(carry, _):
                params, opt_state, key = carry
                key, perm_key = jax.random.split(key)
                perm = jax.random.permutation(perm_key, batch_size)
                batch = (traj_obs, action, log_prob, value, advantages, targets)
                batch = jax.tree.map(lambda x: jnp.take(x.reshape((batch_size,) + x.shape[2:]), perm, axis=0)
                                     .reshape((num_minibatches, -1) + x.shape[2:]), batch)

                def minibatch_step(carry, minibatch):
                    params, opt_state = carry
                    mb_obs, mb_action, mb_log_prob, mb_value, mb_advantage, mb_target = minibatch

                    def loss_fn(params):
                        logits, new_value = network.apply(params, mb_obs)
                        log_softmax = jax.nn.log_softmax(logits)
                        new_log_prob = jnp.take_along_axis(log_softmax, mb_action[:, None], -1)[:, 0]
                        clipped_value = mb_value + jnp.clip(new_value - mb_value, -0.2, 0.2)
                        value_loss = 0.5 * jnp.maximum(jnp.square(new_value - mb_target),
                                                       jnp.square(clipped_value - mb_target)).mean()
                        ratio = jnp.exp(new_log_prob - mb_log_prob)
                        adv = (mb_advantage - mb_advantage.mean()) / (mb_advantage.std() + 1e-8)
                        policy_loss = -jnp.minimum(ratio * adv, jnp.clip(ratio, 0.8, 1.2) * adv).mean()
                        entropy = -(jnp.exp(log_softmax) * log_softmax).sum(-1).mean()
                        return policy_loss + 0.5 * value_loss - 0.01 * entropy

                    grads = jax.grad(loss_fn)(params)
                    updates, opt_state = tx.update(grads, opt_state, params)
                    return (optax.apply_updates(params, updates), opt_state), None

                (params, opt_state), _ = jax.lax.scan(minibatch_step, (params, opt_state), batch)
                return (params, opt_state, key), None

            (params, opt_state, key), _ = jax.lax.scan(epoch, (params, opt_state, key), None, update_epochs)
            return (params, opt_state, env_state, obs, key, episode_return), finished.sum()

        carry = (params, opt_state, env_state, obs, key, jnp.zeros(num_envs))
        _, returns = jax.lax.scan(update, carry, None, num_updates)
        return returns

    return train
