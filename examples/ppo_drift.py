"""PPO in one file, in the purejaxrl style, whose policy loss is a loaded mirror-learning drift.

    python examples/ppo_drift.py --drift transfer-v1          # a discovered drift
    python examples/ppo_drift.py --drift ppo                  # PPO's clipped loss, exactly
    python examples/ppo_drift.py --drift dpo --option alpha=2.0 --env Breakout-MinAtar

The only line that differs from a clipped-objective PPO is in `policy_loss`:
`-mean(ratio * A - drift(ratio, A, progress))` instead of `-mean(min(ratio * A, clip(ratio) * A))`.
Everything else is what you would write without this project: gymnax envs, a flax
actor-critic, optax, GAE, minibatch epochs, all in one jitted function. Discrete actions;
as in purejaxrl, a truncated episode is treated as ended.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import NamedTuple

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax

import discover


@dataclass(frozen=True)
class Config:
    env_id: str = "CartPole-v1"  # a gymnax env with discrete actions
    total_timesteps: int = 500_000  # env steps over all envs
    num_envs: int = 4  # parallel envs
    num_steps: int = 128  # steps per env per update
    update_epochs: int = 4  # passes over each batch
    num_minibatches: int = 4  # minibatches per pass
    lr: float = 2.5e-4  # Adam step size, annealed linearly to 0
    gamma: float = 0.99  # discount
    gae_lambda: float = 0.95  # GAE's lambda
    vf_coef: float = 0.5  # weight of the value loss
    ent_coef: float = 0.01  # weight of the entropy bonus
    max_grad_norm: float = 0.5  # global gradient-norm clip

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // (self.num_envs * self.num_steps)


class ActorCritic(nn.Module):
    num_actions: int

    @nn.compact
    def __call__(self, obs):
        # flax's default init, not purejaxrl's orthogonal one: vmapped over seeds, that runs
        # jaxlib's batched QR, which can deadlock XLA's CPU thread pool (jax 0.10, multi-core).
        actor = nn.tanh(nn.Dense(64)(nn.tanh(nn.Dense(64)(obs))))
        logits = nn.Dense(self.num_actions, kernel_init=nn.initializers.normal(0.01))(actor)
        critic = nn.tanh(nn.Dense(64)(nn.tanh(nn.Dense(64)(obs))))
        return logits, nn.Dense(1)(critic)[..., 0]


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    done: jax.Array
    finished_return: jax.Array  # the episode's return where one ended at this step, else 0


def policy_loss(drift, log_prob, old_log_prob, advantages, progress):
    """The mirror-learning policy loss: the advantage minus the drift, as the project's trainer has it."""
    clip = discover.LOG_RATIO_CLIP  # the drift's axioms are checked for |log ratio| <= 20
    ratio = jnp.exp(jnp.clip(log_prob - old_log_prob, -clip, clip))
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    # PPO would be: -jnp.mean(jnp.minimum(ratio * advantages, jnp.clip(ratio, 0.8, 1.2) * advantages))
    return -jnp.mean(ratio * advantages - drift(ratio, advantages, progress))


def make_train(config: Config, drift):
    """`train(key) -> {"episode_return": mean finished-episode return per update}`, jittable."""
    env, env_params = gymnax.make(config.env_id)
    network = ActorCritic(env.action_space(env_params).n)
    minibatch_size = config.num_envs * config.num_steps // config.num_minibatches
    schedule = optax.linear_schedule(config.lr, 0.0, config.num_updates * config.update_epochs * config.num_minibatches)
    tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(schedule, eps=1e-5))

    def flat_obs(obs):
        return obs.reshape(config.num_envs, -1).astype(jnp.float32)

    def train(key):
        key, init_key, reset_key = jax.random.split(key, 3)
        obs, env_state = jax.vmap(env.reset, (0, None))(jax.random.split(reset_key, config.num_envs), env_params)
        obs = flat_obs(obs)
        params = network.init(init_key, obs[0])
        runner = (params, tx.init(params), env_state, obs, jnp.zeros(config.num_envs), key)

        def env_step(carry, _):
            params, env_state, obs, episode_return, key = carry
            key, action_key, step_key = jax.random.split(key, 3)
            logits, value = network.apply(params, obs)
            action = jax.random.categorical(action_key, logits)
            log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], -1)[:, 0]
            next_obs, env_state, reward, terminated, truncated, _ = jax.vmap(env.step, (0, 0, 0, None))(
                jax.random.split(step_key, config.num_envs), env_state, action, env_params)
            done = jnp.logical_or(terminated, truncated)  # gymnax resets a finished env by itself
            episode_return = episode_return + reward
            transition = Transition(obs, action, log_prob, value, reward, done, jnp.where(done, episode_return, 0.0))
            return (params, env_state, flat_obs(next_obs), jnp.where(done, 0.0, episode_return), key), transition

        def gae(traj, last_value):
            def step(carry, t):
                advantage, next_value = carry
                not_done = 1.0 - t.done
                delta = t.reward + config.gamma * next_value * not_done - t.value
                advantage = delta + config.gamma * config.gae_lambda * not_done * advantage
                return (advantage, t.value), advantage

            _, advantages = jax.lax.scan(step, (jnp.zeros_like(last_value), last_value), traj, reverse=True)
            return advantages, advantages + traj.value

        def loss(params, batch, progress):
            traj, advantages, targets = batch
            logits, value = network.apply(params, traj.obs)
            log_softmax = jax.nn.log_softmax(logits)
            log_prob = jnp.take_along_axis(log_softmax, traj.action[:, None], -1)[:, 0]
            clipped = traj.value + jnp.clip(value - traj.value, -0.2, 0.2)
            value_loss = 0.5 * jnp.maximum((value - targets) ** 2, (clipped - targets) ** 2).mean()
            entropy = -(jnp.exp(log_softmax) * log_softmax).sum(-1).mean()
            actor_loss = policy_loss(drift, log_prob, traj.log_prob, advantages, progress)
            return actor_loss + config.vf_coef * value_loss - config.ent_coef * entropy

        def update(runner, update_index):
            params, opt_state, env_state, obs, episode_return, key = runner
            (params, env_state, obs, episode_return, key), traj = jax.lax.scan(
                env_step, (params, env_state, obs, episode_return, key), None, config.num_steps)
            advantages, targets = gae(traj, network.apply(params, obs)[1])
            progress = update_index / config.num_updates  # what a time-aware drift (ta_lpo) reads

            def epoch(carry, _):
                params, opt_state, key = carry
                key, perm_key = jax.random.split(key)
                flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), (traj, advantages, targets))
                perm = jax.random.permutation(perm_key, config.num_envs * config.num_steps)
                minibatches = jax.tree.map(
                    lambda x: x[perm].reshape((config.num_minibatches, minibatch_size) + x.shape[1:]), flat)

                def minibatch_step(carry, batch):
                    params, opt_state = carry
                    grads = jax.grad(loss)(params, batch, progress)
                    updates, opt_state = tx.update(grads, opt_state, params)
                    return (optax.apply_updates(params, updates), opt_state), None

                (params, opt_state), _ = jax.lax.scan(minibatch_step, (params, opt_state), minibatches)
                return (params, opt_state, key), None

            (params, opt_state, key), _ = jax.lax.scan(epoch, (params, opt_state, key), None, config.update_epochs)
            episodes = traj.done.sum()
            mean_return = jnp.where(episodes > 0, traj.finished_return.sum() / jnp.maximum(episodes, 1), jnp.nan)
            return (params, opt_state, env_state, obs, episode_return, key), mean_return

        _, returns = jax.lax.scan(update, runner, jnp.arange(config.num_updates))
        return {"episode_return": returns}

    return train


def final_return(returns: np.ndarray) -> float:
    """Mean return of the episodes that ended in the last 10 % of updates."""
    tail = returns[-max(1, len(returns) // 10):]
    return float(np.nanmean(tail))


def parse_option(text: str) -> tuple[str, object]:
    """`name=value`, the value read as JSON where it parses (2.0, 3, true), else as a string."""
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--option {text!r} is not of the form name=value")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


class OneLineParser(argparse.ArgumentParser):
    """Bad input is one line on stderr and exit status 2, as the `discover` command does it."""

    def error(self, message: str):
        print(f"ppo_drift.py: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def checked_config(parser: OneLineParser, args: argparse.Namespace) -> Config:
    if args.env not in gymnax.registered_envs:
        parser.error(f"--env {args.env!r} is not a gymnax env; e.g. CartPole-v1, Acrobot-v1, Breakout-MinAtar")
    env, env_params = gymnax.make(args.env)
    if not hasattr(env.action_space(env_params), "n"):
        parser.error(f"--env {args.env!r} has continuous actions; this example takes discrete ones")
    batch = Config.num_envs * Config.num_steps
    if not batch <= args.timesteps < 1e12:  # NaN too
        parser.error(f"--timesteps {args.timesteps:g} is not allowed; give at least one batch ({batch}), below 1e12")
    if args.seeds < 1:
        parser.error(f"--seeds {args.seeds} is not allowed; give at least 1")
    return Config(env_id=args.env, total_timesteps=int(args.timesteps))


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drift", default="transfer-v1", help="a drift name or drift file (discover.load_drift)")
    parser.add_argument("--option", action="append", type=parse_option, default=[], help="a drift option, name=value")
    parser.add_argument("--env", default=Config.env_id, help="a gymnax env with discrete actions")
    parser.add_argument("--timesteps", type=float, default=Config.total_timesteps)
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args(argv)
    config = checked_config(parser, args)
    try:
        drift = discover.load_drift(args.drift, **dict(args.option))
    except discover.ConfigError as err:
        parser.error(str(err))
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    returns = np.asarray(jax.jit(jax.vmap(make_train(config, drift)))(keys)["episode_return"])
    finals = [final_return(r) for r in returns]
    print(f"{args.drift} on {args.env}, {config.num_updates} updates: final return per seed "
          f"{', '.join(f'{f:.1f}' for f in finals)} (mean {np.mean(finals):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
