"""Configuration of one mirror-learning run, and per-environment presets.

`TrainConfig` is a frozen dataclass. Fields that set array shapes or program structure
(sizes, network, neighbourhood) are static: changing them recompiles. The float
hyperparameters that do not change shapes are also collected in `Hyperparams`, a pytree
that `train` accepts as an optional argument, so a batch of hyperparameter variants can be
vmapped in one compiled call (rejax-style static vs. vmappable fields).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import flax.struct
import jax.numpy as jnp

from inner_loop.errors import ConfigError
from inner_loop.settings import (check_fields, interval, non_negative, one_of, positive, positive_int,
                                 setting)

ACTIVATIONS = ("tanh", "relu", "gelu", "silu")
NEIGHBOURHOODS = ("none", "kl_ball")
# Read only by the KL-ball neighbourhood (TRPO's update); a run without it ignores them.
KL_BALL_FIELDS = ("kl_delta", "cg_iters", "cg_damping", "line_search_steps")
_UNIT = interval(0, 1)


def fields_read(config_dict: dict) -> dict:
    """A `TrainConfig.to_dict()` less the fields that run never reads (the KL ball's,
    without one): two configs with equal `fields_read` train identically."""
    unread = KL_BALL_FIELDS if config_dict.get("neighbourhood") == "none" else ()
    return {k: v for k, v in config_dict.items() if k not in unread}


@dataclass(frozen=True)
class TrainConfig:
    """One mirror-learning run: environment, rollout sizes, optimisation, network."""

    env_id: str = "CartPole-v1"  # any gymnax environment id
    total_timesteps: int = setting(500_000, positive_int)  # env steps over the whole run (all envs together)
    num_envs: int = setting(4, positive_int)  # parallel environments (vmapped)
    num_steps: int = setting(128, positive_int)  # steps per environment per update (rollout length)
    update_epochs: int = setting(4, positive_int)  # passes over each rollout batch
    num_minibatches: int = setting(4, positive_int)  # minibatches per epoch; must divide num_envs * num_steps
    lr: float = setting(2.5e-4, positive)  # Adam learning rate (policy and value)
    anneal_lr: bool = True  # decay the learning rate (and a KL ball's radius) linearly to zero over training
    gamma: float = setting(0.99, _UNIT)  # discount factor
    gae_lambda: float = setting(0.95, _UNIT)  # GAE lambda
    ent_coef: float = setting(0.01, non_negative)  # entropy bonus coefficient
    vf_coef: float = setting(0.5, non_negative)  # value loss coefficient
    vf_clip: float = setting(0.2, non_negative)  # clip range of the value update around old values; 0 disables
    max_grad_norm: float = setting(0.5, non_negative)  # global gradient-norm clip
    normalize_advantages: bool = True  # normalise GAE advantages per minibatch
    hidden_size: int = setting(64, positive_int)  # width of the actor and critic MLPs
    num_layers: int = setting(2, positive_int)  # hidden layers of the actor and critic MLPs
    activation: str = setting("tanh", one_of(*ACTIVATIONS))  # hidden activation: tanh, relu, gelu or silu
    normalize_obs: bool = False  # running mean/std observation normalisation
    normalize_reward: bool = False  # scale rewards by the running std of the return
    neighbourhood: str = setting("none", one_of(*NEIGHBOURHOODS))  # "none" (all policies) or "kl_ball" (TRPO-style)
    kl_delta: float = setting(0.01, positive)  # radius of the KL ball (mean KL(pi_old, pi) <= kl_delta)
    cg_iters: int = setting(10, positive_int)  # conjugate-gradient iterations for the natural gradient
    cg_damping: float = setting(0.1, non_negative)  # damping added to the Fisher-vector product
    line_search_steps: int = setting(10, positive_int)  # backtracking steps (halving) of the KL-ball update
    final_window: float = setting(0.05, interval(0, 1, low_open=True))  # end share of training: final_return

    # Derived sizes -----------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    @property
    def env_steps(self) -> int:
        """Env steps actually taken (whole updates only)."""
        return self.num_updates * self.batch_size

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fields_read(self) -> dict:
        """`to_dict()` less the fields this run never reads: see `fields_read`."""
        return fields_read(self.to_dict())

    def validate(self) -> "TrainConfig":
        """Raise ConfigError (one line) for values the trainer cannot run."""
        check_fields(self)
        if self.batch_size % self.num_minibatches:
            raise ConfigError(
                f"num_minibatches={self.num_minibatches} does not split the batch of "
                f"num_envs*num_steps={self.batch_size}; use a divisor of {self.batch_size}"
            )
        if self.num_updates < 1:
            raise ConfigError(
                f"total_timesteps={self.total_timesteps} is less than one batch of "
                f"num_envs*num_steps={self.batch_size}; use at least {self.batch_size}"
            )
        return self


@flax.struct.dataclass
class Hyperparams:
    """The float hyperparameters of a run as a pytree, so variants can be vmapped."""

    lr: jnp.ndarray
    gamma: jnp.ndarray
    gae_lambda: jnp.ndarray
    ent_coef: jnp.ndarray
    vf_coef: jnp.ndarray
    vf_clip: jnp.ndarray
    max_grad_norm: jnp.ndarray
    kl_delta: jnp.ndarray

    @classmethod
    def from_config(cls, config: TrainConfig) -> "Hyperparams":
        return cls(**{f.name: jnp.asarray(getattr(config, f.name), jnp.float32)
                      for f in dataclasses.fields(cls)})


# Presets ----------------------------------------------------------------------------
# Classic control follows purejaxrl's PPO settings; MinAtar follows the published LPO
# set-up (docs/design.md, Measured decisions: presets): 64 envs x 128 steps, 4 epochs,
# 8 minibatches, 64-unit ReLU MLP, per-game learning rates, 1e7 steps.

_MINATAR = dict(total_timesteps=10_000_000, num_envs=64, num_steps=128, update_epochs=4,
                num_minibatches=8, gamma=0.99, gae_lambda=0.95, ent_coef=0.01,
                activation="relu", hidden_size=64, num_layers=2, anneal_lr=True)

PRESETS: dict[str, TrainConfig] = {
    # kl_delta (read only by the kl_ball neighbourhood, i.e. TRPO): 0.005, as 0.01 made TRPO's
    # returns swing across root seeds (docs/design.md, Measured decisions).
    "CartPole-v1": TrainConfig(env_id="CartPole-v1", kl_delta=0.005),
    "Acrobot-v1": TrainConfig(env_id="Acrobot-v1"),
    "Pendulum-v1": TrainConfig(
        env_id="Pendulum-v1", total_timesteps=1_000_000, num_envs=16, num_steps=128,
        update_epochs=10, num_minibatches=16, lr=1e-3, gamma=0.95, gae_lambda=0.95,
        ent_coef=0.0, normalize_obs=True, normalize_reward=True, vf_clip=0.0,
        max_grad_norm=0.5,
    ),
    "Asterix-MinAtar": TrainConfig(env_id="Asterix-MinAtar", lr=3e-3, **_MINATAR),
    "Breakout-MinAtar": TrainConfig(env_id="Breakout-MinAtar", lr=1e-2, **_MINATAR),
    "Freeway-MinAtar": TrainConfig(env_id="Freeway-MinAtar", lr=1e-3, **_MINATAR),
    "SpaceInvaders-MinAtar": TrainConfig(env_id="SpaceInvaders-MinAtar", lr=7e-3, **_MINATAR),
}


def preset(env_id: str) -> TrainConfig:
    """The preset for `env_id`, or the generic defaults with that env id."""
    return PRESETS.get(env_id, TrainConfig(env_id=env_id))

