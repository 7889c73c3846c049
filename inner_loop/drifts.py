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
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import reprlib
from dataclasses import dataclass
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from inner_loop.config import field_types
from inner_loop.errors import ConfigError
from inner_loop.expression import compile_expression

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

    def _check(self) -> None:
        """Raise ConfigError for option values outside their allowed range."""


@dataclass(frozen=True)
class ZeroDrift(Drift):
    """GPI / A2C-like: no drift (all policies reachable, no penalty)."""

    name: ClassVar[str] = "zero"

    def __call__(self, params, ratio, advantage, progress=0.0):
        return jnp.zeros_like(ratio * advantage)


@dataclass(frozen=True)
class KLDrift(Drift):
    """Trust-region learning: `C * KL(pi_old, pi)` estimated per sample as `C((r-1) - log r)`.

    `E_{a~pi_old}[(r - 1) - log r] = KL(pi_old || pi)` since `E[r] = 1`. Valid because
    `log r <= r - 1` (non-negative, zero only at r = 1) and `d/dr = C(1 - 1/r) = 0` at r = 1.
    """

    name: ClassVar[str] = "kl"
    coef: float = 1.0  # C, the weight of the KL penalty

    def __call__(self, params, ratio, advantage, progress=0.0):
        # max(0, .): in floating point (r-1) - log r can round to -1e-14 near r = 1
        return self.coef * jnp.maximum((ratio - 1.0) - jnp.log(ratio), 0.0) * jnp.ones_like(advantage)

    def _check(self):
        _require_positive(self, "coef")


def ppo_drift(ratio, advantage, eps):
    """PPO's clipped objective as a drift: `ReLU((r - clip(r, 1-eps, 1+eps)) * A)`.

    Zero on `[1-eps, 1+eps]`, hence zero with zero slope at r = 1; the ReLU makes it >= 0.
    `r*A - d` equals PPO's `min(r*A, clip(r)*A)`.
    """
    return jax.nn.relu((ratio - jnp.clip(ratio, 1.0 - eps, 1.0 + eps)) * advantage)


@dataclass(frozen=True)
class PPODrift(Drift):
    """PPO (Schulman et al. 2017) written as a mirror-learning drift."""

    name: ClassVar[str] = "ppo"
    eps: float = 0.2  # clip range

    def __call__(self, params, ratio, advantage, progress=0.0):
        return ppo_drift(ratio, advantage, self.eps)

    def _check(self):
        _require_positive(self, "eps")


@dataclass(frozen=True)
class DPODrift(Drift):
    """Discovered Policy Optimisation (Lu et al. 2022), the closed form of LPO.

    A >= 0: `ReLU((r-1)A - alpha tanh((r-1)A / alpha))`;
    A <  0: `ReLU(log(r)A - beta tanh(log(r)A / beta))`.
    `x - a tanh(x/a)` is odd, >= 0 for x >= 0 and ~ x^3 / (3a^2) near 0, so the ReLU'd drift
    is non-negative, zero at r = 1 and flat there.
    """

    name: ClassVar[str] = "dpo"
    alpha: float = 2.0
    beta: float = 0.6

    def __call__(self, params, ratio, advantage, progress=0.0):
        pos = (ratio - 1.0) * advantage
        neg = jnp.log(ratio) * advantage
        drift_pos = jax.nn.relu(pos - self.alpha * jnp.tanh(pos / self.alpha))
        drift_neg = jax.nn.relu(neg - self.beta * jnp.tanh(neg / self.beta))
        return jnp.where(advantage >= 0, drift_pos, drift_neg)

    def _check(self):
        _require_positive(self, "alpha")
        _require_positive(self, "beta")


@dataclass(frozen=True)
class ClosedFormDrift(Drift):
    """A formula over (r, A, p) in the safe grammar of `inner_loop/expression.py`, e.g. what
    `discover distill` writes: `0.93*relu((r - clip(r, 0.8, 1.2))*A) + 0.1*p*(log(r))**2`.

    The text is parsed by a whitelist interpreter (never eval'd); its validity is the axiom
    check's business (load_drift checks it), except that distill only emits non-negative
    sums of valid atoms (docs/design.md, Distillation).
    """

    name: ClassVar[str] = "closed_form"
    expression: str = ""  # the formula over r (ratio), A (advantage) and p (progress)

    def __call__(self, params, ratio, advantage, progress=0.0):
        return compile_expression(self.expression)(ratio, advantage, progress)

    def _check(self):
        if not isinstance(self.expression, str):
            raise ConfigError(f"drift option expression={self.expression!r} is not allowed; it must be a string")
        if not self.expression.strip():
            raise ConfigError("drift 'closed_form' needs the option expression, e.g. expression=(r - 1)**2")
        compile_expression(self.expression)


KNEE = 0.1  # |u| where each LPO feature turns from quadratic (flat at r = 1) to linear growth


def _flat_pair(u):
    """`u|u| / (|u| + KNEE)` (odd) and `u^2 / (|u| + KNEE)` (even): C^1, value and slope 0 at
    u = 0, and growing like `|u|` beyond the knee. Computed as `u` and `|u|` times the
    factor `|u| / (|u| + KNEE)` in [0, 1), so no intermediate overflows where u is finite
    (u|u| is inf in float32 from |u| ~ 1.8e19)."""
    magnitude = jnp.abs(u)
    damping = magnitude / (magnitude + KNEE)
    return u * damping, magnitude * damping


def lpo_features(ratio, advantage):
    """The LPO features `psi(r, A)`: each is zero *and flat* at r = 1, for every A.

    With `u` in (r - 1, log r): `u|u|/(|u|+k)` and `u^2/(|u|+k)` (k = KNEE), each times
    1, A and |A|: 12 features. Every one has `psi = 0` and `d psi / dr = 0` at r = 1 and
    grows like `|r - 1| |A|` (or `|log r| |A|`) far from it, so a linear read-out can
    outgrow the `r A` gain of the surrogate objective.
    """
    columns = [*_flat_pair(ratio - 1.0), *_flat_pair(jnp.log(ratio))]
    base = jnp.stack(columns, axis=-1)
    adv = advantage[..., None]
    return jnp.concatenate([base, base * adv, base * jnp.abs(adv)], axis=-1)


class _ResidualNet(nn.Module):
    """`h(psi) = v . psi + w . tanh-MLP(psi)`, all without biases, so `h(0) = 0` for every
    weight value; the linear skip `v` lets `h` grow linearly in the features."""

    hidden_size: int
    num_layers: int

    @nn.compact
    def __call__(self, features):
        skip = nn.Dense(1, use_bias=False, kernel_init=nn.initializers.zeros, name="skip")(features)
        hidden = features
        for _ in range(self.num_layers):
            hidden = jnp.tanh(nn.Dense(self.hidden_size, use_bias=False)(hidden))
        out = nn.Dense(1, use_bias=False, kernel_init=nn.initializers.zeros, name="out")(hidden)
        return (skip + out)[..., 0]


START_DRIFTS = ("none", "ppo", "dpo")


@dataclass(frozen=True)
class _NeuralDrift(Drift):
    """What the two neural families share: their options, and their features with the
    training progress appended for the time-aware variants."""

    hidden_size: int = 64  # width of the bias-free tanh MLP
    num_layers: int = 1  # hidden layers of the MLP
    start: str = "ppo"  # the drift evolution starts at (the names `_check` allows)
    eps: float = 0.2  # PPO clip range of the "ppo" start
    init_scale: float = 0.0  # std of the read-out layer(s) at init (0: drift starts exactly at `start`)

    time_aware: ClassVar[bool] = False
    base_feature_count: ClassVar[int] = 0

    @staticmethod
    def base_features(ratio, advantage):
        raise NotImplementedError

    @property
    def num_features(self) -> int:
        return self.base_feature_count * (2 if self.time_aware else 1)

    def features(self, ratio, advantage, progress):
        phi = self.base_features(ratio, advantage)
        if not self.time_aware:
            return phi
        progress = jnp.broadcast_to(jnp.asarray(progress, phi.dtype), phi.shape[:-1])
        return jnp.concatenate([phi, phi * progress[..., None]], axis=-1)

    @staticmethod
    def _inputs(ratio, advantage):
        """`ratio` and `advantage` as arrays of one float dtype and one shape."""
        dtype = jnp.result_type(ratio, advantage, jnp.float32)
        return jnp.broadcast_arrays(jnp.asarray(ratio, dtype), jnp.asarray(advantage, dtype))


@dataclass(frozen=True)
class LPODrift(_NeuralDrift):
    """Learned Policy Optimisation's drift (Lu et al. 2022) in a family that is valid for
    every parameter value and can move its start both ways.

    `d(r, A) = relu(base(r, A) + h(psi(r, A)))`, where `base` is the start drift (0, PPO's
    or DPO's), `psi` the features of `lpo_features` and `h` a bias-free tanh MLP plus a
    linear skip on `psi` (`_ResidualNet`). Why the axioms hold for *every* parameter value:
      * non-negative: the relu;
      * zero at identity: `psi(1, A) = 0`, and the bias-free net maps 0 to 0, so `h = 0`;
        `base(1, A) = 0`;
      * flat at identity from both sides: `0 <= d <= base + |h|`; `base` is flat at r = 1
        (a valid drift) and `h` is C^1 with `dh/dr = (dh/dpsi)(dpsi/dr) = 0` there, so
        `d = o(r - 1)`: its derivative at r = 1 is 0, with no kink hidden by relu'(0).
    Reach: `h < 0` lowers the base (below PPO's drift, or zero on an interval around
    r = 1); `h > 0` raises it; the skip grows linearly in `|r - 1| |A|`. The output and skip
    layers start at zero (unless `init_scale` > 0), so the initial drift is exactly the
    start; `h` is linear in them, so antithetic perturbations change fitness to first order.
    """

    name: ClassVar[str] = "lpo"
    base_feature_count: ClassVar[int] = 12
    base_features = staticmethod(lpo_features)

    @property
    def net(self) -> _ResidualNet:
        return _ResidualNet(self.hidden_size, self.num_layers)

    def init(self, key):
        net_key, out_key, skip_key = jax.random.split(key, 3)
        params = self.net.init(net_key, jnp.zeros((self.num_features,), jnp.float32))
        if self.init_scale > 0:
            # Random read-out: a random (still valid) drift to start from.
            inner = params["params"]
            for name, layer_key in (("out", out_key), ("skip", skip_key)):
                kernel = inner[name]["kernel"]
                inner[name]["kernel"] = self.init_scale * jax.random.normal(layer_key, kernel.shape)
        return params

    def base(self, ratio, advantage):
        if self.start == "ppo":
            return ppo_drift(ratio, advantage, self.eps)
        if self.start == "dpo":
            return DPODrift()(None, ratio, advantage)
        return jnp.zeros_like(ratio)

    def __call__(self, params, ratio, advantage, progress=0.0):
        ratio, advantage = self._inputs(ratio, advantage)
        h = self.net.apply(params, self.features(ratio, advantage, progress))
        return jax.nn.relu(self.base(ratio, advantage) + h)

    def _check(self):
        _check_net_options(self, START_DRIFTS)


@dataclass(frozen=True)
class TALPODrift(LPODrift):
    """Temporally-aware LPO (Jackson et al. 2024): LPO whose net also sees training progress.

    No public TA-LPO code exists; our construction: the features are `[psi, psi * p]` with
    `p = n / N` the training progress, fed to the same residual net. Every feature is still
    zero and flat at r = 1 for every p, so the proof for `lpo` carries over unchanged, at
    every point of training.
    """

    name: ClassVar[str] = "ta_lpo"
    time_aware: ClassVar[bool] = True


# Format-1 family ---------------------------------------------------------------------
# Drift files of format version 1 hold `lpo`/`ta_lpo` params of this family; they load as
# `lpo_v1`/`ta_lpo_v1` (it can only tighten its start: `start + g^2 >= start`).

def lpo_v1_features(ratio, advantage):
    """The format-1 LPO features; each is exactly 0 at r = 1 (r - 1 = log 1 = 0)."""
    x, log_r = ratio - 1.0, jnp.log(ratio)
    base = jnp.stack([x, x * x, log_r, log_r * log_r], axis=-1)
    return jnp.concatenate([base, base * advantage[..., None]], axis=-1)


class _BiasFreeTanhNet(nn.Module):
    """`g(phi)`: tanh MLP without biases, so `g(0) = 0` for every weight value."""

    hidden_size: int
    num_layers: int

    @nn.compact
    def __call__(self, features):
        h = features
        for _ in range(self.num_layers):
            h = jnp.tanh(nn.Dense(self.hidden_size, use_bias=False)(h))
        return nn.Dense(1, use_bias=False, kernel_init=nn.initializers.zeros)(h)[..., 0]


@dataclass(frozen=True)
class LPOv1Drift(_NeuralDrift):
    """The format-1 LPO family: `d = [PPO drift if start == "ppo"] + g(phi(r, A))^2`.

    `phi` = `[r-1, (r-1)^2, log r, (log r)^2]` and each times A; `g` a bias-free tanh MLP.
    Valid for every parameter value: a square (plus PPO's drift) is >= 0; `phi(1, A) = 0` so
    `g = 0` at r = 1; `d/dr g^2 = 2 g dg/dr = 0` there, from both sides (g is smooth).
    """

    name: ClassVar[str] = "lpo_v1"
    base_feature_count: ClassVar[int] = 8
    base_features = staticmethod(lpo_v1_features)

    @property
    def net(self) -> _BiasFreeTanhNet:
        return _BiasFreeTanhNet(self.hidden_size, self.num_layers)

    def init(self, key):
        net_key, out_key = jax.random.split(key)
        params = self.net.init(net_key, jnp.zeros((self.num_features,), jnp.float32))
        if self.init_scale > 0:
            out = params["params"][f"Dense_{self.num_layers}"]
            out["kernel"] = self.init_scale * jax.random.normal(out_key, out["kernel"].shape)
        return params

    def __call__(self, params, ratio, advantage, progress=0.0):
        ratio, advantage = self._inputs(ratio, advantage)
        g = self.net.apply(params, self.features(ratio, advantage, progress))
        drift = g * g
        if self.start == "ppo":
            drift = drift + ppo_drift(ratio, advantage, self.eps)
        return drift

    def _check(self):
        _check_net_options(self, ("ppo", "none"))


@dataclass(frozen=True)
class TALPOv1Drift(LPOv1Drift):
    """The format-1 TA-LPO family: `lpo_v1` on the features `[phi, phi * progress]`."""

    name: ClassVar[str] = "ta_lpo_v1"
    time_aware: ClassVar[bool] = True


def _check_net_options(drift, starts) -> None:
    _require_positive(drift, "hidden_size", MAX_HIDDEN_SIZE, 1)
    _require_positive(drift, "num_layers", MAX_LAYERS, 1)
    _require_positive(drift, "eps")
    scale = drift.init_scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale <= MAX_INIT_SCALE:  # NaN too
        raise ConfigError(f"drift option init_scale={drift.init_scale!r} is not allowed; "
                          f"it must be a finite number >= 0, at most {MAX_INIT_SCALE:g}")
    if drift.start not in starts:
        raise ConfigError(f"drift option start={drift.start!r} is not allowed; choose {', '.join(starts)}")


ZOO: dict[str, type[Drift]] = {cls.name: cls for cls in
                               (ZeroDrift, KLDrift, PPODrift, DPODrift, LPODrift, TALPODrift,
                                LPOv1Drift, TALPOv1Drift, ClosedFormDrift)}
# The format-1 names of `lpo` and `ta_lpo` (see LPOv1Drift).
V1_NAMES = {"lpo": "lpo_v1", "ta_lpo": "ta_lpo_v1"}


def names() -> list[str]:
    return list(ZOO)


def option_types(name: str) -> dict[str, type]:
    """The options drift `name` takes, with their types."""
    return field_types(_lookup(name))


def get(name: str, **options) -> Drift:
    """The zoo drift `name` with `options`; ConfigError names bad names, options, types and values."""
    cls = _lookup(name)
    types = field_types(cls)
    for key in options:
        if key not in types:
            takes = f"allowed: {', '.join(types)}" if types else "it takes no options"
            raise ConfigError(f"drift {name!r} has no option {key!r}; {takes}")
    drift = cls(**{key: _typed(name, key, value, types[key]) for key, value in options.items()})
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
