"""The drift zoo of mirror learning (docs/design.md, sections 1 and 2: the maths and the zoo).

A per-sample drift `d(r, A, progress)` takes the probability ratio `r = pi(a|s) /
pi_old(a|s)` of a sample `a ~ pi_old`, its (normalised GAE) advantage `A`, and the training
progress in [0, 1]; the drift of a state is `D(pi|s) = E_{a~pi_old}[d(r, A)]` and the policy
loss is `-mean(r * A - d(r, A, progress))` (Kuba et al. 2022, the mirror-learning update).
A valid drift satisfies, for every A and progress:

    d(r, A) >= 0 for all r > 0,     d(1, A) = 0,     d/dr d(r, A) = 0 at r = 1.

The trainer evaluates a drift at log-ratios clipped to +-LOG_RATIO_CLIP and at advantages
normalised per minibatch; the axiom check covers that domain (and |A| up to ADVANTAGE_MAX).

Every drift here is a frozen dataclass of static options with `init(key) -> params` and
`__call__(params, ratio, advantage, progress) -> per-sample drift`: pure, jittable and
vmappable over `params` (an evolution-strategy population). Get one by name with
`get(name, **options)`.

    base.py          Drift, the checked domain (LOG_RATIO_CLIP, ADVANTAGE_MAX), option bounds
    closed_form.py   zero, kl, ppo, dpo, closed_form
    neural.py        lpo, ta_lpo: relu(start + h(psi)), valid for every parameter value
    neural_v1.py     lpo_v1, ta_lpo_v1: the family of format-1 drift files
    atoms.py         the atoms, and atoms: their non-negative weighted sums
"""

from __future__ import annotations

import math
import numbers
import reprlib
from typing import Any

from inner_loop.drifts.atoms import AtomsDrift
from inner_loop.drifts.base import (ADVANTAGE_MAX, COEFFICIENT_RANGE, LOG_RATIO_CLIP, MAX_HIDDEN_SIZE,
                                    MAX_INIT_SCALE, MAX_LAYERS, Drift)
from inner_loop.drifts.closed_form import ClosedFormDrift, DPODrift, KLDrift, PPODrift, ZeroDrift, ppo_drift
from inner_loop.drifts.neural import KNEE, START_DRIFTS, LPODrift, TALPODrift, lpo_features
from inner_loop.drifts.neural_v1 import LPOv1Drift, TALPOv1Drift, lpo_v1_features
from inner_loop.errors import ConfigError
from inner_loop.settings import field_types

__all__ = ["ADVANTAGE_MAX", "COEFFICIENT_RANGE", "LOG_RATIO_CLIP", "MAX_HIDDEN_SIZE", "MAX_INIT_SCALE",
           "MAX_LAYERS", "KNEE", "START_DRIFTS", "V1_NAMES", "ZOO", "Drift", "ZeroDrift", "KLDrift", "PPODrift",
           "DPODrift", "ClosedFormDrift", "LPODrift", "TALPODrift", "LPOv1Drift", "TALPOv1Drift", "AtomsDrift",
           "ppo_drift", "lpo_features", "lpo_v1_features", "names", "option_types", "option_kind", "get"]

ZOO: dict[str, type[Drift]] = {cls.name: cls for cls in
                               (ZeroDrift, KLDrift, PPODrift, DPODrift, LPODrift, TALPODrift, AtomsDrift,
                                LPOv1Drift, TALPOv1Drift, ClosedFormDrift)}
# The format-1 names of `lpo` and `ta_lpo` (see LPOv1Drift).
V1_NAMES = {"lpo": "lpo_v1", "ta_lpo": "ta_lpo_v1"}


def names() -> list[str]:
    return list(ZOO)


def option_types(name: str) -> dict[str, type]:
    """The options drift `name` takes, with their types."""
    return field_types(_lookup(name))


def option_kind(name: str, option: str, *, label: str | None = None, prefix: str = "") -> type:
    """The type of zoo drift `name`'s `option`; ConfigError (one line) if it has no such option.
    `label`: the name the user gave (an alias); `prefix`: how the user spells options (drift.)."""
    types = option_types(name)
    if option not in types:
        allowed = ", ".join(prefix + k for k in types) or "none"
        raise ConfigError(f"drift {label or name!r} has no option {option!r}; allowed: {allowed}")
    return types[option]


def get(name: str, **options) -> Drift:
    """The zoo drift `name` with `options`; ConfigError names bad names, options, types and values."""
    cls = _lookup(name)
    drift = cls(**{key: _typed(name, key, value, option_kind(name, key)) for key, value in options.items()})
    drift._check()
    return drift


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _typed(name: str, option: str, value: Any, kind: type) -> Any:
    """`value` as option `option`'s type: ints count as floats and integral floats as ints;
    bools as neither. ConfigError (one line) for anything else; ranges are `_check`'s."""
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if kind is float and number:
        try:
            return float(value)
        except OverflowError:  # an int beyond float range: out of range, as `_check` will say
            return math.inf
    if kind is int and number and (isinstance(value, numbers.Integral) or float(value).is_integer()):
        return int(value)
    if kind in (bool, str) and isinstance(value, kind):
        return value
    raise ConfigError(f"drift {name!r} option {option}={reprlib.repr(value)} ({type(value).__name__}) "
                      f"is not allowed; it must be {_TYPE_NAMES.get(kind, kind.__name__)}")


def _lookup(name: str) -> type[Drift]:
    if name not in ZOO:
        raise ConfigError(f"unknown drift {name!r}; allowed: {', '.join(ZOO)}")
    return ZOO[name]
