"""The base of every drift: the class, the domain the axioms are checked on, option bounds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import jax

from inner_loop.errors import ConfigError

# r in [e^-20, e^20] (2e-9 to 4.9e8): keeps log r and r*A finite in float32 for every drift.
LOG_RATIO_CLIP = 20.0
# Per-minibatch normalisation bounds |A| by sqrt(minibatch_size - 1), 1e3 for a million
# samples; 1e6 leaves room for raw (unnormalised) advantages.
ADVANTAGE_MAX = 1e6


@dataclass(frozen=True)
class Drift:
    """Base class: a per-sample drift function with static options and (maybe) params."""

    name: ClassVar[str] = "drift"

    def init(self, key: jax.Array) -> Any:
        """Parameters of the drift (an empty dict for closed-form drifts)."""
        return {}

    def __call__(self, params: Any, ratio: jax.Array, advantage: jax.Array,
                 progress: jax.Array | float = 0.0) -> jax.Array:
        raise NotImplementedError

    def options(self) -> dict:
        return dataclasses.asdict(self)

    def feature_names(self) -> list[str]:
        """What the parameters read (a drift file's `features`): the inputs, for a closed form."""
        return ["r", "A"]

    def architecture(self) -> dict:
        """What the parameters are (a drift file's `architecture`): "kind", and the options that shape them."""
        return {"kind": f"closed-form zoo drift {self.name!r}"}

    def _check(self) -> None:
        """Raise ConfigError for option values outside their allowed range."""


# Option bounds: wide for any sensible use, narrow enough that float32 arithmetic and memory
# stay finite (alpha 1e39 overflows float32; hidden_size 1e12 aborts XLA).
COEFFICIENT_RANGE = (1e-6, 1e6)  # eps, alpha, beta, coef
MAX_HIDDEN_SIZE, MAX_LAYERS, MAX_INIT_SCALE = 4096, 16, 1e3


def _require_positive(drift: Drift, option: str, high: float = COEFFICIENT_RANGE[1],
                      low: float = COEFFICIENT_RANGE[0]) -> None:
    value = getattr(drift, option)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:  # NaN too
        raise ConfigError(f"drift option {option}={value!r} is not allowed for {drift.name!r}; "
                          f"it must be a finite number > 0, from {low:g} to {high:g}")
