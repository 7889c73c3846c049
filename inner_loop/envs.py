"""Gymnax environments as the inner loop sees them.

Owns: checking env ids, flattening observations, describing the action space, and the
running statistics used for observation / reward normalisation. gymnax 1.x `step`
returns `(obs, state, reward, terminated, truncated, info)` and auto-resets; the
observation before the reset is in `info["final_observation"]`, which the trainer uses to
bootstrap truncated episodes instead of treating them as deaths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from inner_loop.errors import ConfigError

# Needs a data download at reset time, which fails offline.
UNSUPPORTED_ENVS = {"MNISTBandit-bsuite": "it downloads MNIST at reset time"}


def _gymnax():
    # Imported when first needed, not with the package: importing gymnax starts JAX's
    # backend (one of its envs builds an array at import), and `discover sweep
    # --distributed` must call jax.distributed.initialize() before that happens.
    import gymnax

    return gymnax


def supported_env_ids() -> list[str]:
    return [e for e in _gymnax().registered_envs if e not in UNSUPPORTED_ENVS]


@dataclass(frozen=True)
class EnvSpec:
    """A gymnax environment plus what the networks need to know about it."""

    env_id: str
    env: Any
    env_params: Any
    obs_dim: int
    discrete: bool
    action_dim: int  # number of actions (discrete) or action dimensions (continuous)
    action_low: Any = None  # continuous bounds (flat arrays), None for discrete
    action_high: Any = None
    action_shape: tuple = ()  # the env's own action shape (continuous)


def make_env(env_id: str) -> EnvSpec:
    """Build the gymnax env for `env_id`, or raise ConfigError naming the allowed ids."""
    if env_id in UNSUPPORTED_ENVS:
        raise ConfigError(f"env id {env_id!r} is not supported: {UNSUPPORTED_ENVS[env_id]}")
    gymnax = _gymnax()
    from gymnax.environments import spaces

    if env_id not in gymnax.registered_envs:
        raise ConfigError(f"unknown env id {env_id!r}; allowed: {', '.join(supported_env_ids())}")
    env, env_params = gymnax.make(env_id)
    obs_shape = env.observation_space(env_params).shape
    obs_dim = 1
    for size in obs_shape:
        obs_dim *= int(size)
    space = env.action_space(env_params)
    if isinstance(space, spaces.Discrete):
        return EnvSpec(env_id, env, env_params, obs_dim, True, int(space.n))
    if isinstance(space, spaces.Box):
        shape = space.shape if space.shape else (1,)
        low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), shape)
        high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), shape)
        action_dim = 1
        for size in shape:
            action_dim *= int(size)
        return EnvSpec(env_id, env, env_params, obs_dim, False, action_dim,
                       low.reshape(-1), high.reshape(-1), tuple(space.shape))
    raise ConfigError(f"env id {env_id!r} has action space {type(space).__name__}; "
                      "allowed: Discrete or Box")


def flatten_obs(obs: jax.Array) -> jax.Array:
    """One env's observation as a flat vector in its own dtype.

    MinAtar observations are boolean; keeping them so (the networks cast to float32 at
    their input) makes rollout buffers and minibatch shuffles 4x smaller.
    """
    return jnp.asarray(obs).reshape(-1)


@flax.struct.dataclass
class RunningMeanStd:
    """Running mean and variance (parallel Welford update over batches)."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, shape) -> "RunningMeanStd":
        return cls(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32),
                   jnp.asarray(1e-4, jnp.float32))

    def update(self, batch: jax.Array) -> "RunningMeanStd":
        batch = batch.astype(jnp.float32)
        batch_mean = batch.mean(axis=0)
        batch_var = batch.var(axis=0)
        batch_count = batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        return RunningMeanStd(mean, m2 / total, total)

    def normalize(self, x: jax.Array, clip: float = 10.0) -> jax.Array:
        return jnp.clip((x - self.mean) / jnp.sqrt(self.var + 1e-8), -clip, clip)
