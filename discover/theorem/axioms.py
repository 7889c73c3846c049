"""The per-sample axioms of a drift, numerically: d >= 0, d(1, A) = 0, zero slope at r = 1,
finite values and gradients, on a dense grid plus random points of the domain training
reaches: log r in [-LOG_RATIO_CLIP, LOG_RATIO_CLIP] (the trainer's clip), |A| up to
ADVANTAGE_MAX, progress in [0, 1]. No tolerance: d >= 0 and d(1, A) = 0 hold exactly, and
flatness at r = 1 is judged by one-sided difference quotients (autodiff cannot see a kink
behind relu, whose derivative at 0 is 0)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from discover.theorem.config import DriftFn, VerifyConfig
from discover.theorem.text import fmt, fmt_point, json_number
from inner_loop.drifts import ADVANTAGE_MAX, LOG_RATIO_CLIP, Drift

# Difference steps on each side of r = 1 (float64); a kink or a slope keeps the quotient
# constant as h shrinks, a smooth flat minimum makes it shrink like h.
FD_STEPS_FLOAT64 = (1e-7, 1e-11)
FD_STEPS_FLOAT32 = (1e-2, 1e-4)  # if the drift computes in float32 whatever it is given
FD_FLOOR = 1e-9  # quotients below this count as zero


# Ratios near 1 added to the log-spaced grid (where a drift's shape matters most).
NEAR_IDENTITY = (1.0, 1 - 1e-7, 1 + 1e-7, 1 - 1e-3, 1 + 1e-3, 0.8, 1.2, 0.5, 2.0)


def axiom_point_count(config: VerifyConfig) -> int:
    """How many (r, A, progress) points `axiom_points` gives for `config`."""
    grid = (config.axiom_ratios + len(NEAR_IDENTITY)) * (2 * config.axiom_advantages + 1) * config.axiom_progress
    return grid + config.axiom_random_points


def axiom_rng(seed: int) -> np.random.Generator:
    """The generator of the random axiom points for `seed`."""
    return np.random.default_rng([seed, 1])


@dataclass(frozen=True)
class AxiomCheck:
    """One axiom: did it hold at every point tried, and the worst point found."""

    name: str  # what was checked, e.g. "non-negative"
    passed: bool  # held at every point (within tolerance)
    worst: float | None  # the worst value found (meaning depends on the check; None: no finite value)
    at: dict | None  # {"ratio", "advantage", "progress"} where `worst` occurred
    detail: str  # one line for people

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "worst": json_number(self.worst),
                "at": self.at, "detail": self.detail}


@dataclass(frozen=True)
class AxiomResult:
    """The per-sample axioms checked on a grid plus random points."""

    checks: tuple[AxiomCheck, ...]  # one per axiom
    points: int  # (r, A, progress) points at which d was evaluated

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[str]:
        return [f"axiom '{c.name}' fails: {c.detail}" for c in self.checks if not c.passed]

    def check(self, name: str) -> AxiomCheck:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "points": self.points, "checks": [c.to_dict() for c in self.checks]}


def axiom_points(config: VerifyConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ratio, advantage, progress), flat float64 numpy arrays: the dense grid plus random points."""
    ratios = np.concatenate([np.exp(np.linspace(-LOG_RATIO_CLIP, LOG_RATIO_CLIP, config.axiom_ratios)),
                             NEAR_IDENTITY])
    top = np.log10(ADVANTAGE_MAX)
    magnitudes = np.logspace(-8, top, config.axiom_advantages)
    advantages = np.concatenate([-magnitudes[::-1], [0.0], magnitudes])
    progress = np.linspace(0.0, 1.0, config.axiom_progress)
    r, a, p = (x.ravel() for x in np.meshgrid(ratios, advantages, progress, indexing="ij"))
    n = config.axiom_random_points
    rand_r = np.exp(rng.uniform(-LOG_RATIO_CLIP, LOG_RATIO_CLIP, n))
    # half log-spread |A| (small values matter), half uniform on +-1e4 (large values matter)
    log_spread = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-8, top, n)
    rand_a = np.where(rng.uniform(size=n) < 0.5, log_spread, rng.uniform(-1e4, 1e4, n))
    rand_p = rng.uniform(0, 1, n)
    return np.concatenate([r, rand_r]), np.concatenate([a, rand_a]), np.concatenate([p, rand_p])


def _split_params(drift_fn: DriftFn) -> tuple[Callable, Any]:
    """`(fn(params, r, a, p), params)` for `drift_fn(r, a, p)`.

    A drift with bound parameters (`discover.files.drift_file.LoadedDrift`: a hashable zoo `Drift`
    and its params) is split, so the compiled checks are reused for every parameter value of
    that drift (a sweep checks two drift files per checkpoint); any other callable is
    closed over, and compiled afresh.
    """
    drift, params = getattr(drift_fn, "drift", None), getattr(drift_fn, "params", None)
    if isinstance(drift, Drift) and params is not None:
        return drift, params
    return (lambda _, r, a, p: drift_fn(r, a, p)), ()


@functools.lru_cache(maxsize=16)
def _axiom_programs(fn: Callable) -> tuple[Callable, Callable]:
    """Jitted `values(params, r, a, p)` and `slopes(params, r, a, p)` (dd/dr per point)."""

    def scalar_drift(r, params, a, p):
        return jnp.sum(fn(params, r, a, p))  # sum: a scalar even if the drift adds a length-1 axis

    values = jax.jit(lambda params, r, a, p: jnp.broadcast_to(fn(params, r, a, p), r.shape))
    slopes = jax.jit(lambda params, r, a, p: jax.vmap(jax.grad(scalar_drift), (0, None, 0, 0))(r, params, a, p))
    return values, slopes


def check_axioms(drift_fn: DriftFn, config: VerifyConfig | None = None,
                 rng: np.random.Generator | None = None) -> AxiomResult:
    """Check the per-sample axioms of `drift_fn(ratio, advantage, progress)` numerically.

    Values and `jax.grad` slopes in float32 (the dtype drifts train in) on the grid and
    random points of `axiom_points` (drawn with `rng`, by default seeded with `config.seed`);
    one-sided difference quotients at r = 1 in float64.
    """
    config = (config or VerifyConfig()).validate()
    rng = axiom_rng(config.seed) if rng is None else rng
    ratio64, adv64, prog64 = axiom_points(config, rng)
    ratio, adv, prog = (jnp.asarray(x, jnp.float32) for x in (ratio64, adv64, prog64))
    fn, params = _split_params(drift_fn)
    values_program, slopes_program = _axiom_programs(fn)

    def values_fn(r, a, p):
        return values_program(params, r, a, p)

    values = np.asarray(values_fn(ratio, adv, prog), np.float64)
    slopes = np.asarray(slopes_program(params, ratio, adv, prog), np.float64)
    at_one = np.asarray(values_fn(jnp.ones_like(adv), adv, prog), np.float64)  # r = 1 exactly

    def point(i, r=None):
        return {"ratio": float(ratio64[i] if r is None else r), "advantage": float(adv64[i]),
                "progress": float(prog64[i])}

    checks = (_finite_check(values, slopes, point), _non_negative_check(values, point),
              _identity_check(at_one, point), _one_sided_slope_check(values_fn, adv64, prog64))
    return AxiomResult(checks, points=int(ratio.size))


def _finite_check(values: np.ndarray, slopes: np.ndarray, point: Callable) -> AxiomCheck:
    """Finite values and autodiff slopes everywhere (training differentiates the drift)."""
    bad = ~(np.isfinite(values) & np.isfinite(slopes))
    if not bad.any():
        i = int(np.argmax(np.abs(values)))
        return AxiomCheck("finite", True, float(values[i]), point(i), "finite values and slopes everywhere")
    i = int(np.argmax(bad))
    example = (f"d({fmt_point(point(i))}) = {values[i]!r}" if not np.isfinite(values[i])
               else f"dd/dr({fmt_point(point(i))}) = {slopes[i]!r}")
    return AxiomCheck("finite", False, float(values[i]), point(i),
                      f"{int(bad.sum())} points with a non-finite value or slope, e.g. {example}")


def _non_negative_check(values: np.ndarray, point: Callable) -> AxiomCheck:
    """d >= 0 at every finite point, with no tolerance."""
    finite_values = np.where(np.isfinite(values), values, np.inf)
    i = int(np.argmin(finite_values))
    worst = float(finite_values[i]) if np.isfinite(finite_values[i]) else None
    return AxiomCheck("non-negative", worst is None or worst >= 0, worst, point(i) if worst is not None else None,
                      f"min d = {fmt(worst)} at {fmt_point(point(i))}")


def _identity_check(at_one: np.ndarray, point: Callable) -> AxiomCheck:
    """d(1, A) = 0 exactly, for every (A, progress) of the set."""
    i = int(np.argmax(np.where(np.isfinite(at_one), np.abs(at_one), np.inf)))
    return AxiomCheck("zero at identity", bool(np.all(at_one == 0)), float(at_one[i]), point(i, 1.0),
                      f"max |d(1, A)| = {fmt(abs(at_one[i]))} at {fmt_point(point(i, 1.0))}")


SLOPE_CHECK = "zero slope at identity"


def _one_sided_slope_check(values: DriftFn, adv: np.ndarray, prog: np.ndarray) -> AxiomCheck:
    """Zero one-sided derivatives at r = 1 from difference quotients in float64.

    `q(h) = |d(1 +- h) - d(1)| / h` on each side. If the drift is differentiable with zero
    slope, q shrinks with h (like h for a smooth minimum, or is 0 on a flat region); at a
    kink or a slope it stays put. Fail where `q(h_small) > sqrt(h_small / h_large) q(h_large)
    + FD_FLOOR`. Autodiff is not used: relu's derivative at 0 is 0, whatever is inside it.
    `values(r, a, p)`: the drift at every point, jitted (with float64 inputs here).
    """
    name = SLOPE_CHECK
    # A handful of (A, progress) pairs is enough per sign: use the set's distinct ones, capped.
    pairs = np.unique(np.stack([adv, prog], 1), axis=0)
    if len(pairs) > 4096:
        pairs = pairs[np.linspace(0, len(pairs) - 1, 4096).astype(int)]
    with jax.enable_x64(True):
        a = jnp.asarray(pairs[:, 0], jnp.float64)
        p = jnp.asarray(pairs[:, 1], jnp.float64)
        base = values(jnp.ones_like(a), a, p)
        precise = base.dtype == jnp.float64
        h_large, h_small = FD_STEPS_FLOAT64 if precise else FD_STEPS_FLOAT32

        def quotients(h):
            return jnp.stack([jnp.abs(values(jnp.full_like(a, 1.0 + side * h), a, p) - base) / h
                              for side in (-1.0, 1.0)], 1)

        q_large = np.asarray(quotients(h_large), np.float64)
        q_small = np.asarray(quotients(h_small), np.float64)
    excess = q_small - (math.sqrt(h_small / h_large) * q_large + FD_FLOOR)
    excess = np.where(np.isfinite(excess), excess, np.inf)
    i, side = np.unravel_index(int(np.argmax(excess)), excess.shape)
    at = {"ratio": 1.0 + (-1.0, 1.0)[side] * h_small, "advantage": float(pairs[i, 0]),
          "progress": float(pairs[i, 1])}
    ok = bool(np.all(excess <= 0))
    note = "" if precise else " (the drift computes in float32; coarser steps)"
    detail = (f"{'left' if side == 0 else 'right'} difference quotient {fmt(q_small[i, side])} at h={h_small:g} "
              f"vs {fmt(q_large[i, side])} at h={h_large:g}, A={at['advantage']:.3g}, "
              f"progress={at['progress']:.3g}{note}")
    if ok:
        detail = f"quotients shrink with h everywhere (worst at h={h_small:g}: {fmt(float(np.max(q_small)))}){note}"
    return AxiomCheck(name, ok, float(q_small[i, side]), at, detail)
