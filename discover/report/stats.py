"""Statistics for comparison reports: IQM, bootstrap confidence intervals, probability of
improvement (Agarwal et al. 2021, "Deep RL at the edge of the statistical precipice").

Pure NumPy on small arrays (seeds x envs); the bootstrap draws come from an explicit seed.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

STATISTICS = ("mean", "median", "iqm")


def iqm(values: np.ndarray, axis=None) -> float:
    """Interquartile mean: the mean of the middle 50 % of the values (25 % trimmed each side)."""
    x = np.sort(np.asarray(values, np.float64).ravel() if axis is None else values, axis=-1)
    n = x.shape[-1]
    lo, hi = int(np.floor(0.25 * n)), int(np.ceil(0.75 * n))
    if hi <= lo:
        return float(np.mean(x))
    return float(np.mean(x[..., lo:hi]))


def statistic(name: str) -> Callable[[np.ndarray], float]:
    return {"mean": lambda x: float(np.mean(x)), "median": lambda x: float(np.median(x)), "iqm": iqm}[name]


def bootstrap_ci(values: np.ndarray, stat: Callable[[np.ndarray], float], *, resamples: int = 2000,
                 confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of `stat` over the seeds of one stratum (1-D `values`)."""
    x = np.asarray(values, np.float64)
    if x.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = np.array([stat(x[rng.integers(0, x.size, x.size)]) for _ in range(resamples)])
    alpha = (1.0 - confidence) / 2
    return float(np.quantile(draws, alpha)), float(np.quantile(draws, 1 - alpha))


def stratified_bootstrap_ci(strata: list[np.ndarray], stat: Callable[[np.ndarray], float], *,
                            resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Bootstrap CI of `stat` over the pooled strata (envs), resampling seeds within each stratum."""
    rng = np.random.default_rng(seed)
    strata = [np.asarray(s, np.float64) for s in strata if len(s)]
    if not strata:
        return float("nan"), float("nan")
    draws = np.array([stat(np.concatenate([s[rng.integers(0, s.size, s.size)] for s in strata]))
                      for _ in range(resamples)])
    alpha = (1.0 - confidence) / 2
    return float(np.quantile(draws, alpha)), float(np.quantile(draws, 1 - alpha))


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) for a run X of one algorithm and Y of another (ties count 1/2)."""
    x, y = np.asarray(x, np.float64)[:, None], np.asarray(y, np.float64)[None, :]
    if x.size == 0 or y.size == 0:
        return float("nan")
    return float(np.mean((x > y) + 0.5 * (x == y)))


def probability_of_improvement_ci(x, y, *, resamples: int = 2000, confidence: float = 0.95,
                                  seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.size == 0 or y.size == 0:
        return float("nan"), float("nan")
    draws = [probability_of_improvement(x[rng.integers(0, x.size, x.size)], y[rng.integers(0, y.size, y.size)])
             for _ in range(resamples)]
    alpha = (1.0 - confidence) / 2
    return float(np.quantile(draws, alpha)), float(np.quantile(draws, 1 - alpha))


def curve_band(curves: np.ndarray, *, resamples: int = 1000, confidence: float = 0.95,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, lower, upper) per update of (seeds, updates) curves; bootstrap over seeds, NaN-aware."""
    c = np.asarray(curves, np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, c.shape[0], (resamples, c.shape[0]))
    with np.errstate(all="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(c[idx], axis=1)  # (resamples, updates)
            alpha = (1.0 - confidence) / 2
            return np.nanmean(c, axis=0), np.nanquantile(means, alpha, axis=0), np.nanquantile(means, 1 - alpha, axis=0)
