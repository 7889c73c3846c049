"""One mirror-learning run: envs, networks, the drift zoo, GAE, neighbourhoods, the trainer."""

from inner_loop import drifts
from inner_loop.config import PRESETS, Hyperparams, TrainConfig, preset
from inner_loop.cpu import configure_cpu
from inner_loop.errors import ConfigError
from inner_loop.train import Trainer, make_train

__all__ = ["drifts", "PRESETS", "Hyperparams", "TrainConfig", "preset", "ConfigError",
           "Trainer", "make_train", "configure_cpu"]
