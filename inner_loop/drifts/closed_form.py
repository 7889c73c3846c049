"""The closed-form drifts: none, KL, PPO, DPO, and a formula in the safe grammar."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from inner_loop.drifts.base import Drift, _require_positive
from inner_loop.errors import ConfigError
from inner_loop.expression import compile_expression

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

    def feature_names(self) -> list[str]:
        return ["r", "A", "p"]

    def architecture(self) -> dict:
        return {"kind": "closed-form formula over r, A, p (the safe grammar of inner_loop/expression.py)",
                "expression": self.expression}

    def _check(self):
        if not isinstance(self.expression, str):
            raise ConfigError(f"drift option expression={self.expression!r} is not allowed; it must be a string")
        if not self.expression.strip():
            raise ConfigError("drift 'closed_form' needs the option expression, e.g. expression=(r - 1)**2")
        compile_expression(self.expression)

