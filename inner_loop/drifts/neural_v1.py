"""The format-1 neural family: drift files of format version 1 hold `lpo`/`ta_lpo` params of
this family; they load as `lpo_v1`/`ta_lpo_v1` (it can only tighten its start:
`start + g^2 >= start`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import flax.linen as nn
import jax.numpy as jnp

from inner_loop.drifts.closed_form import ppo_drift
from inner_loop.drifts.neural import _check_net_options, _NeuralDrift


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
    base_feature_names: ClassVar[tuple[str, ...]] = (
        "r-1", "(r-1)^2", "log r", "(log r)^2", "A(r-1)", "A(r-1)^2", "A log r", "A (log r)^2")
    architecture_text: ClassVar[str] = "d = [PPO drift if start == 'ppo'] + g(phi)^2, g a bias-free tanh MLP"
    base_features = staticmethod(lpo_v1_features)

    @property
    def net(self) -> _BiasFreeTanhNet:
        return _BiasFreeTanhNet(self.hidden_size, self.num_layers)

    @property
    def readout_layers(self) -> tuple[str, ...]:
        return (f"Dense_{self.num_layers}",)

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

