"""The drift zoo of mirror learning (DESIGN.md section 1).

A per-sample drift `d(r, A, progress)` takes the probability ratio `r = pi(a|s) /
pi_old(a|s)` of a sample `a ~ pi_old`, its (normalised GAE) advantage `A`, and the training
progress in [0, 1]; the drift of a state is `D(pi|s) = E_{a~pi_old}[d(r, A)]` and the policy
loss is `-mean(r * A - d(r, A, progress))` (Kuba et al. 2022, the mirror-learning update).
A valid drift satisfies, for every A and progress:

    d(r, A) >= 0 for all r > 0,     d(1, A) = 0,     d/dr d(r, A) = 0 at r = 1.

Every drift here is a frozen dataclass of static options with `init(key) -> params` and
`__call__(params, ratio, advantage, progress) -> per-sample drift`: pure, jittable and
vmappable over `params` (an evolution-strategy population). Get one by name with
`get(name, **options)`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from inner_loop.config import field_types
from inner_loop.errors import ConfigError


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


def lpo_features(ratio, advantage):
    """The LPO input features; each is exactly 0 at r = 1 (r - 1 = log 1 = 0)."""
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
class LPODrift(Drift):
    """Learned Policy Optimisation's drift (Lu et al. 2022) with a smooth, always-valid form.

    `d(r, A) = [PPO drift if start == "ppo"] + g(phi(r, A))^2`, where `phi` are the LPO
    features `[r-1, (r-1)^2, log r, (log r)^2]` and each times A, and `g` is a bias-free
    tanh MLP. Why the axioms hold for *every* parameter value:
      * non-negative: a square, plus PPO's drift which is non-negative;
      * zero at identity: `phi(1, A) = 0` exactly, and a bias-free tanh net maps 0 to 0;
      * zero derivative at identity: `d/dr g^2 = 2 g dg/dr`, and `g = 0` at r = 1; `g` is
        smooth (tanh, log, polynomials), so this holds from both sides: no kink hidden by a
        ReLU convention and no flat region that shrinks as the weights grow. PPO's drift is
        identically zero on `[1-eps, 1+eps]`.
    `g` is bounded by the output weights (tanh hidden units), so the drift is finite for
    every finite input. With `start="ppo"` the output layer starts at zero, so the initial
    drift is exactly PPO's and evolution starts from PPO.
    """

    name: ClassVar[str] = "lpo"
    hidden_size: int = 64  # width of the bias-free tanh MLP
    num_layers: int = 1  # hidden layers of the MLP
    start: str = "ppo"  # "ppo": add PPO's drift (evolution starts at PPO); "none": pure net
    eps: float = 0.2  # PPO clip range used when start == "ppo"
    init_scale: float = 0.0  # std of the output layer at init (0: drift starts exactly at PPO / 0)

    time_aware: ClassVar[bool] = False

    @property
    def net(self) -> _BiasFreeTanhNet:
        return _BiasFreeTanhNet(self.hidden_size, self.num_layers)

    @property
    def num_features(self) -> int:
        return 16 if self.time_aware else 8

    def init(self, key):
        net_key, out_key = jax.random.split(key)
        params = self.net.init(net_key, jnp.zeros((self.num_features,), jnp.float32))
        if self.init_scale > 0:
            # Random output layer: a random (still valid) drift to start from.
            out = params["params"][f"Dense_{self.num_layers}"]
            out["kernel"] = self.init_scale * jax.random.normal(out_key, out["kernel"].shape)
        return params

    def features(self, ratio, advantage, progress):
        phi = lpo_features(ratio, advantage)
        if not self.time_aware:
            return phi
        progress = jnp.broadcast_to(jnp.asarray(progress, phi.dtype), phi.shape[:-1])
        return jnp.concatenate([phi, phi * progress[..., None]], axis=-1)

    def __call__(self, params, ratio, advantage, progress=0.0):
        dtype = jnp.result_type(ratio, advantage, jnp.float32)
        ratio, advantage = jnp.broadcast_arrays(jnp.asarray(ratio, dtype), jnp.asarray(advantage, dtype))
        g = self.net.apply(params, self.features(ratio, advantage, progress))
        drift = g * g
        if self.start == "ppo":
            drift = drift + ppo_drift(ratio, advantage, self.eps)
        return drift

    def _check(self):
        _require_positive(self, "hidden_size")
        _require_positive(self, "num_layers")
        _require_positive(self, "eps")
        scale = self.init_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale < math.inf:  # NaN too
            raise ConfigError(f"drift option init_scale={self.init_scale!r} is not allowed; "
                              "it must be a finite number >= 0")
        if self.start not in ("ppo", "none"):
            raise ConfigError(f"drift option start={self.start!r} is not allowed; choose ppo or none")


@dataclass(frozen=True)
class TALPODrift(LPODrift):
    """Temporally-aware LPO (Jackson et al. 2024): LPO whose net also sees training progress.

    No public TA-LPO code exists; our construction: the features are `[phi, phi * p]` with
    `p = n / N` the training progress, fed to the same squared bias-free tanh net. Every
    feature still vanishes at r = 1 for every p, so the proof for `lpo` carries over
    unchanged, at every point of training.
    """

    name: ClassVar[str] = "ta_lpo"
    time_aware: ClassVar[bool] = True


ZOO: dict[str, type[Drift]] = {cls.name: cls for cls in
                               (ZeroDrift, KLDrift, PPODrift, DPODrift, LPODrift, TALPODrift)}


def names() -> list[str]:
    return list(ZOO)


def option_types(name: str) -> dict[str, type]:
    """The options drift `name` takes, with their types."""
    return field_types(_lookup(name))


def get(name: str, **options) -> Drift:
    """The zoo drift `name` with `options`; ConfigError names bad names and options."""
    cls = _lookup(name)
    allowed = list(field_types(cls))
    for key in options:
        if key not in allowed:
            takes = f"allowed: {', '.join(allowed)}" if allowed else "it takes no options"
            raise ConfigError(f"drift {name!r} has no option {key!r}; {takes}")
    drift = cls(**options)
    drift._check()
    return drift


def _lookup(name: str) -> type[Drift]:
    if name not in ZOO:
        raise ConfigError(f"unknown drift {name!r}; allowed: {', '.join(ZOO)}")
    return ZOO[name]


def _require_positive(drift: Drift, option: str) -> None:
    value = getattr(drift, option)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigError(f"drift option {option}={value!r} is not allowed for {drift.name!r}; "
                          "it must be a finite number > 0")
