"""Probe environments (real gymnax Environment subclasses) with known answers."""

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from inner_loop.envs import EnvSpec


@struct.dataclass
class State(environment.EnvState):
    time: int
    sign: jax.Array


@struct.dataclass
class Params(environment.EnvParams):
    max_steps_in_episode: int = 1000


class ContextualBandit(environment.Environment):
    """One-step episodes: observe +-1, reward 1 for the matching action. Optimum 1, random 0.5."""

    @property
    def default_params(self):
        return Params()

    def reset_env(self, key, params):
        sign = jax.random.bernoulli(key).astype(jnp.int32)
        return jnp.asarray([2.0 * sign - 1.0]), State(time=0, sign=sign)

    def step_env(self, key, state, action, params):
        reward = (action == state.sign).astype(jnp.float32)
        state = state.replace(time=state.time + 1)
        return jnp.asarray([2.0 * state.sign - 1.0]), state, reward, jnp.bool_(True), {}

    def action_space(self, params):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)


class ConstantRewardTimeLimit(environment.Environment):
    """Reward 1 every step, never terminates, truncated by a time limit; the observation
    does not show the time. With truncation bootstrapped, V = 1 / (1 - gamma) everywhere."""

    @property
    def default_params(self):
        return Params(max_steps_in_episode=2)

    def reset_env(self, key, params):
        return jnp.ones(1), State(time=0, sign=jnp.int32(0))

    def step_env(self, key, state, action, params):
        return jnp.ones(1), state.replace(time=state.time + 1), jnp.float32(1.0), jnp.bool_(False), {}

    def action_space(self, params):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (1,), jnp.float32)


def spec(env) -> EnvSpec:
    return EnvSpec(type(env).__name__, env, env.default_params, 1, True, 2)
