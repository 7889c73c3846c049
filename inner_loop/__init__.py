"""One mirror-learning run: envs, networks, the drift zoo, GAE, neighbourhoods, the trainer."""

from inner_loop._xla import configure_xla_cpu

configure_xla_cpu()  # before jax is imported anywhere below

from inner_loop import drifts  # noqa: E402
from inner_loop.config import PRESETS, Hyperparams, TrainConfig, preset  # noqa: E402
from inner_loop.errors import ConfigError  # noqa: E402
from inner_loop.train import Trainer, make_train  # noqa: E402

__all__ = ["drifts", "PRESETS", "Hyperparams", "TrainConfig", "preset", "ConfigError",
           "Trainer", "make_train"]
