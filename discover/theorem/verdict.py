"""The verdict of the theorem check: monotonic improvement and convergence on the MDP batch,
with the axioms, in one `VerifyResult` (`verify_drift`)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from discover.theorem.axioms import AxiomResult, check_axioms, axiom_rng
from discover.theorem.config import DriftFn, VerifyConfig, mdp_rng
from discover.theorem.mdp import random_mdps
from discover.theorem.mirror import run_batch
from discover.theorem.text import json_number


@dataclass(frozen=True)
class ImprovementResult:
    """Monotonic improvement `eta(pi_{n+1}) >= eta(pi_n) - tol |eta(pi_n)|` at every step."""

    steps: int  # updates checked (MDPs x iterations)
    violations: int  # updates that lost more than the tolerance
    mdps_with_violation: int  # MDPs with at least one violation
    first_mdp_with_violation: int | None  # index of the first MDP (in draw order) that shows one
    worst_drop: float  # largest relative loss (eta_n - eta_{n+1}) / |eta_n| (<= 0: never lost)
    worst_at: dict  # {"mdp", "iteration"} of the worst drop
    min_inner_objective: float  # smallest accepted per-state objective (>= 0 for a valid drift)
    non_finite_mdps: int  # MDPs whose returns became NaN / inf
    above_optimum: int  # returns above the value-iteration optimum (a machinery bug if > 0)

    @property
    def passed(self) -> bool:
        return self.violations == 0 and self.non_finite_mdps == 0 and self.above_optimum == 0

    def to_dict(self) -> dict:
        return {**{k: json_number(v) if isinstance(v, float) else v for k, v in dataclasses.asdict(self).items()},
                "passed": self.passed}


@dataclass(frozen=True)
class ConvergenceResult:
    """How close the runs get to the optimum. Normalised gap: `(eta* - eta_n) / (eta* - eta_0)`."""

    final_gap_median: float  # median over MDPs of the final normalised gap (0: optimal)
    final_gap_max: float  # worst MDP's final normalised gap
    final_relative_gap_median: float  # median of (eta* - eta_N) / |eta*|
    final_relative_gap_max: float  # worst MDP's (eta* - eta_N) / |eta*|
    near_optimal: float  # the threshold "within 1%" uses (normalised gap)
    steps_to_near_optimal_median: float | None  # median updates to get within it (None: under half got there)
    steps_to_near_optimal_max: int | None  # slowest MDP that got there
    never_near_optimal: int  # MDPs not within it after all updates
    max_final_gap: float  # the limit on final_gap_max (0: not checked)

    @property
    def passed(self) -> bool:
        return self.max_final_gap <= 0 or self.final_gap_max <= self.max_final_gap

    def to_dict(self) -> dict:
        return {**{k: json_number(v) if isinstance(v, float) else v for k, v in dataclasses.asdict(self).items()},
                "passed": self.passed}


def improvement_check(returns: np.ndarray, min_objective: np.ndarray, optimal: np.ndarray,
                      tol: float) -> ImprovementResult:
    """Monotonic improvement over a batch: `returns` [M, N+1], `min_objective` [M, N], `optimal` [M]."""
    before, after = returns[:, :-1], returns[:, 1:]
    finite = np.all(np.isfinite(returns), axis=1)
    drop = np.where(np.isfinite(after - before), (before - after) / np.maximum(np.abs(before), 1e-300), np.nan)
    violating = np.nan_to_num(drop, nan=0.0) > tol
    mdp_violates = violating.any(axis=1)
    safe_drop = np.where(np.isnan(drop), -np.inf, drop)
    m, n = np.unravel_index(int(np.argmax(safe_drop)), drop.shape)
    slack = tol * np.maximum(np.abs(optimal), 1.0)
    above = int(np.sum(np.nan_to_num(returns, nan=-np.inf) > optimal[:, None] + slack[:, None]))
    return ImprovementResult(
        steps=int(drop.size), violations=int(violating.sum()), mdps_with_violation=int(mdp_violates.sum()),
        first_mdp_with_violation=int(np.argmax(mdp_violates)) if mdp_violates.any() else None,
        worst_drop=float(safe_drop[m, n]), worst_at={"mdp": int(m), "iteration": int(n)},
        min_inner_objective=float(np.nanmin(min_objective)) if np.isfinite(min_objective).any() else float("nan"),
        non_finite_mdps=int((~finite).sum()), above_optimum=above)


def convergence_check(returns: np.ndarray, optimal: np.ndarray, near_optimal: float,
                      max_final_gap: float) -> ConvergenceResult:
    """Gaps to the optimum over a batch: `returns` [M, N+1], `optimal` [M]."""
    initial_gap = optimal - returns[:, 0]
    safe_initial_gap = np.where(initial_gap > 0, initial_gap, 1.0)[:, None]  # uniform already optimal: gap 0
    gap = np.where(initial_gap[:, None] > 0, (optimal[:, None] - returns) / safe_initial_gap, 0.0)
    gap = np.where(np.isfinite(gap), gap, np.inf)
    final = gap[:, -1]
    relative = (optimal - returns[:, -1]) / np.maximum(np.abs(optimal), 1e-300)
    relative = np.where(np.isfinite(relative), relative, np.inf)
    reached = gap <= near_optimal
    ever = reached.any(axis=1)
    first = np.where(ever, np.argmax(reached, axis=1), np.inf).astype(float)
    median_steps = float(np.median(first))
    return ConvergenceResult(
        final_gap_median=float(np.median(final)), final_gap_max=float(np.max(final)),
        final_relative_gap_median=float(np.median(relative)), final_relative_gap_max=float(np.max(relative)),
        near_optimal=near_optimal,
        steps_to_near_optimal_median=median_steps if np.isfinite(median_steps) else None,
        steps_to_near_optimal_max=int(np.max(first[ever])) if ever.any() else None,
        never_near_optimal=int((~ever).sum()), max_final_gap=max_final_gap)


@dataclass(frozen=True)
class VerifyResult:
    """The verdict of `verify_drift`: axioms, monotonic improvement, convergence, timings."""

    config: VerifyConfig  # what was checked
    axioms: AxiomResult  # per-sample axioms on a grid plus random points
    improvement: ImprovementResult  # monotonic improvement on the exact MDP batch
    convergence: ConvergenceResult  # gap to the optimum
    max_kl: float  # largest per-state KL(pi_old || pi_new) of any update (<= kl_delta in a KL ball)
    seconds: dict  # {"axioms", "compile", "run", "total"} wall-clock seconds
    returns: np.ndarray = field(repr=False)  # [num_mdps, iterations + 1] exact returns
    optimal_returns: np.ndarray = field(repr=False)  # [num_mdps] eta(pi*)

    @property
    def failures(self) -> list[str]:
        """Why the drift fails, one line each (empty when it passes)."""
        out = list(self.axioms.failures)
        imp = self.improvement
        if imp.violations:
            out.append(f"monotonic improvement violated {imp.violations} times in {imp.mdps_with_violation} of "
                       f"{self.config.num_mdps} MDPs (worst relative drop {imp.worst_drop:.3g} at MDP "
                       f"{imp.worst_at['mdp']}, update {imp.worst_at['iteration']})")
        if imp.non_finite_mdps:
            out.append(f"returns became non-finite in {imp.non_finite_mdps} MDPs")
        if imp.above_optimum:
            out.append(f"{imp.above_optimum} returns exceed the value-iteration optimum (a bug in the check)")
        if self.config.neighbourhood == "kl_ball" and not self.max_kl <= self.config.kl_delta * (1 + 1e-6):
            out.append(f"an update left the KL ball: KL {self.max_kl:.3g} > kl_delta={self.config.kl_delta:g} "
                       "(a bug in the check)")
        if not self.convergence.passed:
            out.append(f"final normalised gap to the optimum {self.convergence.final_gap_max:.3g} exceeds "
                       f"max_final_gap={self.convergence.max_final_gap:g}")
        return out

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {"passed": self.passed, "failures": self.failures, "axioms": self.axioms.to_dict(),
                "improvement": self.improvement.to_dict(), "convergence": self.convergence.to_dict(),
                "max_kl": json_number(self.max_kl), "seconds": self.seconds, "config": self.config.to_dict()}


def verify_drift(drift_fn: DriftFn, config: VerifyConfig | None = None) -> VerifyResult:
    """Check the axioms of `drift_fn(ratio, advantage, progress)` and the theorem on random MDPs."""
    config = (config or VerifyConfig()).validate()
    start = time.perf_counter()
    axioms = check_axioms(drift_fn, config, axiom_rng(config.seed))
    axioms_done = time.perf_counter()
    with jax.enable_x64(True):
        mdps = jax.tree.map(jnp.asarray, random_mdps(mdp_rng(config.seed), config))
        keys = jax.random.split(jax.random.PRNGKey(config.seed), config.num_mdps)  # inner restarts
        compiled = jax.jit(lambda m, k: run_batch(m, k, drift_fn, config)).lower(mdps, keys).compile()
        compiled_at = time.perf_counter()
        trace = jax.tree.map(np.asarray, jax.block_until_ready(compiled(mdps, keys)))
    end = time.perf_counter()
    seconds = {"axioms": axioms_done - start, "compile": compiled_at - axioms_done,
               "run": end - compiled_at, "total": end - start}
    return VerifyResult(
        config=config, axioms=axioms,
        improvement=improvement_check(trace.returns, trace.min_objective, trace.optimal_return, config.tol),
        convergence=convergence_check(trace.returns, trace.optimal_return, config.near_optimal,
                                      config.max_final_gap),
        max_kl=float(np.nanmax(trace.max_kl)) if np.isfinite(trace.max_kl).any() else float("nan"),
        seconds={k: round(v, 3) for k, v in seconds.items()},
        returns=trace.returns, optimal_returns=trace.optimal_return)
