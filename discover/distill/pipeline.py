"""The distillation of one drift: samples, atoms, greedy search, Pareto front, the choice.

    result = distill(resolve_drift("transfer-v1"), DistillConfig(), jax.random.PRNGKey(0))
    result.chosen.formula.text, result.chosen.error, [(e.formula.size, e.error) for e in result.front]

`result.drift()` is the chosen formula as a `closed_form` zoo drift, ready for `save_drift`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import jax
import numpy as np

from inner_loop.drifts import atoms as atom_library
from discover.distill.config import DistillConfig
from discover.distill.formula import Formula, weighted_error
from discover.distill.samples import DistillData, distill_data
from discover.distill.search import WeightedProblem, choose, greedy_fits, pareto_front
from discover.training.resolver import ResolvedDrift
from inner_loop import drifts


@dataclass(frozen=True)
class Candidate:
    """A formula on the Pareto front, with its error on the data (as stored: rounded weights)."""

    formula: Formula  # the formula
    error: float  # weighted relative error of its text on the data
    fit_error: float  # the NNLS fit's error (unrounded weights)


@dataclass(frozen=True)
class DistillResult:
    """What `distill` found."""

    data: DistillData  # the weighted samples
    atoms: tuple[atom_library.Atom, ...]  # the library searched
    tried: int  # fits evaluated by the greedy search
    front: tuple[Candidate, ...]  # the size-vs-error Pareto front, smallest first
    chosen: Candidate  # the formula chosen from the front
    seconds: dict  # {"samples": s, "search": s}

    def drift(self) -> drifts.Drift:
        return drifts.get("closed_form", expression=self.chosen.formula.text)

    def summary(self) -> dict:
        """The provenance of the distilled drift (JSON-ready)."""
        return {"expression": self.chosen.formula.text, "latex": self.chosen.formula.latex,
                "error": self.chosen.error, "size": self.chosen.formula.size,
                "pareto_front": [{"size": c.formula.size, "error": c.error, "expression": c.formula.text}
                                 for c in self.front],
                "envs": list(self.data.envs), "sampling_configs": self.data.configs,
                "run_samples": self.data.run_samples, "grid_points": int(self.data.ratio.size - self.data.run_samples),
                "time_aware": self.data.time_aware, "atoms": len(self.atoms), "fits_tried": self.tried,
                "seconds": self.seconds}


def atom_columns(atoms: tuple[atom_library.Atom, ...], data: DistillData) -> np.ndarray:
    """(n, len(atoms)): every atom at every sample."""
    return np.stack([a.values(data.ratio, data.advantage, data.progress) for a in atoms], axis=1)


def pareto_candidates(data: DistillData, config: DistillConfig) -> tuple[tuple[atom_library.Atom, ...], int,
                                                                         list[Candidate]]:
    """(the library, fits tried, the Pareto front of their formulas) on `data`."""
    atoms = atom_library.library(data.time_aware)
    problem = WeightedProblem(atom_columns(atoms, data), data.target, data.weight)
    fits = greedy_fits(problem, config.max_terms)
    formulas = {}
    for fit in (f for f in fits if f.atoms):  # one formula per distinct text (greedy steps revisit subsets)
        formula = Formula(tuple((w, atoms[a]) for a, w in zip(fit.atoms, fit.weights)))
        if formula.text not in formulas or fit.error < formulas[formula.text][1]:
            formulas[formula.text] = (formula, fit.error)
    front = pareto_front(list(formulas.values()), size=lambda x: x[0].size, error=lambda x: x[1])
    candidates = [Candidate(f, weighted_error(f.values(data.ratio, data.advantage, data.progress), data.target,
                                              data.weight), e) for f, e in front]
    # Rounding the weights can only move errors a little; the front is re-taken on the stored text's errors.
    candidates = pareto_front(candidates, size=lambda c: c.formula.size, error=lambda c: c.error)
    return atoms, len(fits), candidates


def distill(resolved: ResolvedDrift, config: DistillConfig, key: jax.Array,
            on_stage: Callable[[str], None] = lambda stage: None) -> DistillResult:
    """Distil `resolved` into a closed form (docs/design.md, Distillation)."""
    start = time.perf_counter()
    data = distill_data(resolved, config, key, on_env=lambda env: on_stage(f"sampling {env}"))
    sampled = time.perf_counter()
    on_stage("searching")
    atoms, tried, front = pareto_candidates(data, config)
    chosen = choose(front, size=lambda c: c.formula.size, error=lambda c: c.error, max_size=config.max_size,
                    tolerance=config.tolerance)
    seconds = {"samples": round(sampled - start, 1), "search": round(time.perf_counter() - sampled, 1)}
    return DistillResult(data, atoms, tried, tuple(front), chosen, seconds)
