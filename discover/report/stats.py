"""The learning-curve band of a comparison's figures (the report's numbers are `paired`'s).

Pure NumPy; the bootstrap draws come from an explicit seed.
"""

from __future__ import annotations

import warnings

import numpy as np


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
