"""Paired, stratified bootstrap statistics of a comparison, with PPO = 1 by construction.

Every label ran with the same seed keys on every env and grid point, so seed i of one label
is paired with seed i of every other. A bootstrap draw resamples seed indices within each env
(and within each half of the seeds where tuned rows are chosen on one half), the same indices
for every label and grid point, and recomputes everything from them: the normaliser, the IQMs
and their ratio. Return arrays are (labels, envs, points, seeds); draws put a resample axis
in front. A failed seed's return has already been replaced by its score (`summary.failed_scores`).
"""

from __future__ import annotations

import warnings

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95
MIN_SEEDS_FOR_CI = 5  # fewer seeds per label and env: numbers without CIs
MAX_UNDEFINED = 0.05  # share of draws where PPO's IQM is not above 0 beyond which a ratio has no CI
_BATCH = 250  # draws computed at once (memory: batch x labels x envs x points x seeds floats)


def iqm(values, axis: int = -1) -> np.ndarray:
    """Interquartile mean along `axis`: the mean of the middle 50 % (25 % trimmed each side)."""
    x = np.moveaxis(np.sort(np.asarray(values, np.float64), axis=axis), axis, -1)
    n = x.shape[-1]
    lo, hi = int(np.floor(0.25 * n)), int(np.ceil(0.75 * n))
    return x[..., lo:hi].mean(-1)


def normalise(returns: np.ndarray, zero: np.ndarray, ppo: int) -> np.ndarray:
    """(return - untrained) / (PPO's mean over the env's points and seeds - untrained): per env,
    0 is the untrained policy and 1 PPO's mean. `returns` (..., L, E, G, S), `zero` (E, G)."""
    advance = returns - zero[:, :, None]
    span = advance[..., ppo, :, :, :].mean(axis=(-2, -1))  # (..., E)
    with np.errstate(divide="ignore", invalid="ignore"):
        return advance / span[..., None, :, None, None]


def draw_indices(rng: np.random.Generator, resamples: int, num_envs: int, num_seeds: int,
                 halves: bool) -> np.ndarray:
    """(resamples, envs, seeds) seed indices drawn with replacement within each env (and within
    each half of the seeds when `halves`: the first half chooses tuned rows, the second scores)."""
    if not halves:
        return rng.integers(0, num_seeds, (resamples, num_envs, num_seeds))
    half = num_seeds // 2
    return np.concatenate([rng.integers(0, half, (resamples, num_envs, half)),
                           rng.integers(half, num_seeds, (resamples, num_envs, num_seeds - half))], axis=-1)


def resample(returns: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """`returns` (L, E, G, S) at `indices` (B, E, S), the same seeds for every label and point:
    (B, L, E, G, S)."""
    by_env_seed = np.moveaxis(returns, (1, 3), (0, 1))  # (E, S, L, G)
    picked = by_env_seed[np.arange(returns.shape[1])[None, :, None], indices]  # (B, E, S, L, G)
    return picked.transpose(0, 3, 1, 4, 2)


def pooled_iqm(scores: np.ndarray, envs: list[int], points: list[int]) -> np.ndarray:
    """IQM per label of the scores pooled over `envs` x `points` x seeds: (..., L, E, G, S) -> (..., L)."""
    sub = scores[..., envs, :, :][..., points, :]
    return iqm(sub.reshape(*sub.shape[:-3], -1))


def ratio_to_ppo(scores: np.ndarray, envs: list[int], points: list[int], ppo: int) -> np.ndarray:
    """IQM of each label's pooled scores / IQM of PPO's (NaN where PPO's is not above 0): (..., L)."""
    pooled = pooled_iqm(scores, envs, points)
    denominator = pooled[..., ppo:ppo + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, pooled / denominator, np.nan)


def beats(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(a run of x ends above the run of y with the same seed), ties 1/2: (..., S) -> (...)."""
    return np.mean((x > y) + 0.5 * (x == y), axis=-1)


def choose_points(scores: np.ndarray, choose_seeds: slice) -> np.ndarray:
    """(L, E): per label and env, the grid point whose IQM over `choose_seeds` is highest
    (the first of equals). `scores` (L, E, G, S)."""
    return np.argmax(iqm(scores[..., choose_seeds]), axis=-1)


def tuned(scores: np.ndarray, chosen: np.ndarray, score_seeds: slice) -> np.ndarray:
    """Each label's scores at its chosen point on `score_seeds`: (..., L, E, G, S) -> (..., L, E, 1, S')."""
    labels, envs = chosen.shape
    picked = scores[..., np.arange(labels)[:, None], np.arange(envs)[None, :], chosen, :]  # (..., L, E, S)
    return picked[..., score_seeds][..., None, :]


def interval(point: np.ndarray, draws: np.ndarray, seeds: int) -> dict:
    """{value, ci, undefined_draws} per element of `point` from `draws` (B, ...): percentile CI,
    None with fewer than MIN_SEEDS_FOR_CI seeds or too many undefined (NaN) draws."""
    undefined = np.mean(~np.isfinite(draws), axis=0)
    alpha = (1.0 - CONFIDENCE) / 2
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-undefined element: its CI is NaN
        finite = np.where(np.isfinite(draws), draws, np.nan)
        lo = np.nanquantile(finite, alpha, axis=0) if draws.size else np.full(point.shape, np.nan)
        hi = np.nanquantile(finite, 1 - alpha, axis=0) if draws.size else np.full(point.shape, np.nan)
    show = (seeds >= MIN_SEEDS_FOR_CI) & (undefined <= MAX_UNDEFINED)
    return {"value": point, "lo": np.where(show, lo, np.nan), "hi": np.where(show, hi, np.nan),
            "undefined_draws": undefined}


def bootstrap(statistic, returns: np.ndarray, rng: np.random.Generator, halves: bool,
              resamples: int = RESAMPLES) -> tuple[dict, dict]:
    """(statistic on the data, statistic on `resamples` paired draws stacked in front).
    `statistic` maps (..., L, E, G, S) returns to {name: array}; it recomputes any normaliser."""
    _, envs, _, seeds = returns.shape
    point = statistic(returns)
    draws = []
    for start in range(0, resamples, _BATCH):
        indices = draw_indices(rng, min(_BATCH, resamples - start), envs, seeds, halves)
        draws.append(statistic(resample(returns, indices)))
    return point, {name: np.concatenate([d[name] for d in draws], axis=0) for name in point}
