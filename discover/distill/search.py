"""Sparse non-negative regression over the atoms: greedy forward selection with NNLS re-fits.

    problem = WeightedProblem(columns, target, weight)   # columns: (n, atoms), each atom's values
    fits = greedy_fits(problem, max_terms=6)              # every subset tried, with its NNLS fit

Each step adds the atom whose addition, after re-fitting *all* weights with non-negative
least squares (`scipy.optimize.nnls`), lowers the weighted error most; the weights stay
>= 0, so every fit is a valid drift (docs/design.md, Distillation). The weighted problem is
reduced once by a QR factorisation of the column-normalised design, `sqrt(w) X = Q R`: for
any subset S, `||sqrt(w)(X_S c - y)||^2 = ||R_S c - Q^T sqrt(w) y||^2 + ||(I - Q Q^T) sqrt(w) y||^2`,
so each NNLS is on (atoms x |S|) numbers, whatever the number of samples.

The error of a fit is the weighted relative error `||sqrt(w)(f - y)|| / ||sqrt(w) y||`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from inner_loop.errors import ConfigError

UNUSED_COLUMN = 1e-12  # an atom whose weighted norm is below this share of the largest is never used


@dataclass(frozen=True)
class Fit:
    """One subset of atoms with its NNLS weights (all > 0; atoms given weight 0 are dropped)."""

    atoms: tuple[int, ...]  # indices into the library, in the order they were selected
    weights: tuple[float, ...]  # non-negative weights of those atoms
    error: float  # weighted relative error of the fit


class WeightedProblem:
    """min over c >= 0 of ||sqrt(w)(X c - y)||, reduced by QR (see the module docstring)."""

    def __init__(self, columns: np.ndarray, target: np.ndarray, weight: np.ndarray):
        root = np.sqrt(weight)[:, None]
        design = columns * root
        norms = np.linalg.norm(design, axis=0)
        self.usable = np.flatnonzero(norms > UNUSED_COLUMN * max(norms.max(initial=0.0), 1e-300))
        self.scale = np.where(norms > 0, norms, 1.0)
        target_w = target * root[:, 0]
        self.target_norm = float(np.linalg.norm(target_w))
        if not self.target_norm > 0:
            raise ConfigError("the drift is zero on every sample; there is nothing to distil")
        q, self.r = np.linalg.qr(design / self.scale)
        self.qy = q.T @ target_w
        self.outside = float(np.sum((target_w - q @ self.qy) ** 2))  # the part no combination reaches

    def fit(self, atoms: tuple[int, ...]) -> Fit:
        """The NNLS fit of these atoms (weights in the atoms' own units)."""
        coef, residual = nnls(self.r[:, list(atoms)], self.qy, maxiter=50 * len(atoms) + 50)
        weights = coef / self.scale[list(atoms)]
        error = float(np.sqrt(residual ** 2 + self.outside) / self.target_norm)
        kept = [(a, float(w)) for a, w in zip(atoms, weights) if w > 0]
        return Fit(tuple(a for a, _ in kept), tuple(w for _, w in kept), error)


def greedy_fits(problem: WeightedProblem, max_terms: int) -> list[Fit]:
    """Every fit tried by greedy forward selection (each step's candidates), best last in
    each step; stops early when no atom lowers the error."""
    chosen: tuple[int, ...] = ()
    error = 1.0  # the empty formula (0) has relative error 1
    tried: list[Fit] = []
    for _ in range(max_terms):
        candidates = [problem.fit(chosen + (int(j),)) for j in problem.usable if j not in chosen]
        if not candidates:
            break
        tried += candidates
        best = min(candidates, key=lambda f: f.error)
        if best.error >= error * (1 - 1e-9):
            break
        chosen, error = best.atoms, best.error
    return tried


def pareto_front(items: list, size, error) -> list:
    """The items not beaten on both size and error, smallest first (ties: the first seen)."""
    front = []
    for item in sorted(items, key=lambda x: (size(x), error(x))):
        if not front or error(item) < error(front[-1]):
            if front and size(front[-1]) == size(item):
                continue
            front.append(item)
    return front


def choose(front: list, size, error, max_size: int, tolerance: float):
    """The smallest item of `front` (sorted by size) whose error is within `tolerance` of the
    best error among those of at most `max_size` (if none is that small: the smallest)."""
    small = [item for item in front if size(item) <= max_size] or front[:1]
    best = min(error(item) for item in small)
    return next(item for item in small if error(item) <= best * (1 + tolerance) + 1e-12)
