"""The neural drift families `lpo` and `ta_lpo`: valid for every parameter value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from inner_loop.drifts.base import MAX_HIDDEN_SIZE, MAX_INIT_SCALE, MAX_LAYERS, Drift, _require_positive
from inner_loop.drifts.closed_form import DPODrift, ppo_drift
from inner_loop.errors import ConfigError

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
    base_feature_names: ClassVar[tuple[str, ...]] = ()  # the names of `base_features`' columns
    architecture_text: ClassVar[str] = ""  # the family's form, in a line

    @staticmethod
    def base_features(ratio, advantage):
        raise NotImplementedError

    @property
    def num_features(self) -> int:
        return len(self.feature_names())

    def feature_names(self) -> list[str]:
        names = list(self.base_feature_names)
        return names + [f"p*{name}" for name in names] if self.time_aware else names

    def architecture(self) -> dict:
        return {"kind": self.architecture_text, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "start": self.start, "eps": self.eps}

    def features(self, ratio, advantage, progress):
        phi = self.base_features(ratio, advantage)
        if not self.time_aware:
            return phi
        progress = jnp.broadcast_to(jnp.asarray(progress, phi.dtype), phi.shape[:-1])
        return jnp.concatenate([phi, phi * progress[..., None]], axis=-1)

    @property
    def readout_layers(self) -> tuple[str, ...]:
        """The layers that start at zero: `init_scale` > 0 draws them at random instead."""
        raise NotImplementedError

    def init(self, key):
        net_key, *layer_keys = jax.random.split(key, 1 + len(self.readout_layers))
        params = self.net.init(net_key, jnp.zeros((self.num_features,), jnp.float32))
        if self.init_scale > 0:
            # Random read-out: a random (still valid) drift to start from.
            inner = params["params"]
            for name, layer_key in zip(self.readout_layers, layer_keys):
                kernel = inner[name]["kernel"]
                inner[name]["kernel"] = self.init_scale * jax.random.normal(layer_key, kernel.shape)
        return params

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
    base_feature_names: ClassVar[tuple[str, ...]] = tuple(
        f"{scale}{kind}({u})" for scale in ("", "A*", "|A|*") for u in ("r-1", "log r") for kind in ("odd", "even"))
    architecture_text: ClassVar[str] = (f"d = relu(start + h(psi)), h = v.psi + w.tanh-MLP(psi), bias-free; "
                                        f"odd(u) = u|u|/(|u|+{KNEE}), even(u) = u^2/(|u|+{KNEE})")
    base_features = staticmethod(lpo_features)

    @property
    def net(self) -> _ResidualNet:
        return _ResidualNet(self.hidden_size, self.num_layers)

    readout_layers: ClassVar[tuple[str, ...]] = ("out", "skip")  # the output layer and the linear skip

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
