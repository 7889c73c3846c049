"""Exact tabular verification of the mirror-learning theorem for any drift (`discover verify`).

Owns the check that a per-sample drift `d(r, A, progress)` is one mirror learning can use
(DESIGN.md section 1; Kuba, Schroeder de Witt, Foerster 2022, "Mirror Learning: A Unifying
Framework of Policy Optimisation", the fundamental theorem, Theorem 3.6): its Python API
(`check_axioms`, the exact MDP machinery, `verify_drift`) and the `verify` subcommand
(`add_verify_command`). Two kinds of evidence:

1. **Axioms**, numerically, on a dense grid plus random points (ratios 1e-6..1e6,
   advantages +-1e4 down to 1e-8 and 0, progress 0..1): `d >= 0`, `d(1, A) = 0`, zero
   slope at `r = 1` by `jax.grad` *and* by two-sided difference quotients in float64 (a
   kink at `r = 1` that `relu'(0) = 0` hides from autodiff is caught there), and finite
   values and gradients.
2. **The theorem itself**, exactly, on a batch of random finite MDPs (vmapped, jitted; the
   MDP machinery in float64, the drift in float32 as in training unless `drift_dtype` says
   otherwise): starting from the uniform policy, each mirror-learning update maximises,
   state by state, `E_{a~pi}[A_old(s,a)] - E_{a~pi_old}[d(pi/pi_old, A_old(s,a), n/N)]`
   over softmax policies (optionally inside a per-state KL ball) by exponentiated-gradient
   ascent from `pi_old`, plus `inner_restarts` ascents from random logits (the theorem's
   update is the global argmax; a purely local ascent from `pi_old` rarely wanders where a
   drift that is negative away from `r = 1` would take the global one). Policies are evaluated exactly
   by a linear solve. We check monotonic improvement `eta(pi_{n+1}) >= eta(pi_n)` at every
   update of every MDP, and report the gap to the optimum (value iteration) and how fast it
   closes. The theorem's convergence claim is asymptotic, so the gap is reported, not
   checked, unless `max_final_gap` is set.

Why the exact check is meaningful: by the performance-difference lemma,
`V_new(s) - V_old(s)` is a discounted sum over states of `E_{a~pi_new}[A_old(s, a)]`. The
inner optimiser keeps the best iterate per state, and the first is `pi_old`, where the
objective is `-E_old[d(1, A)]` (0 for a valid drift), so the new policy's objective is
never below it; with `d >= 0` that makes every `E_{pi_new}[A_old(s, .)] >= 0`, hence
`V_new >= V_old` everywhere. A drift that is negative somewhere loses that guarantee, which
the MDP batch can expose.

Advantages fed to the drift and the objective (`advantage_scaling`): "std" (default)
divides `A_old` by (its standard deviation under `pi_old`, states weighted equally, + 1e-8),
in both terms, as the trainer's per-minibatch normalisation does -- learned drifts were trained on
normalised advantages, so that is the input range they know. The objective is then
`(1/sigma) (E_pi[A] - sigma E_old[d(r, A/sigma)])`: the argmax of mirror learning with the
(equally valid) drift `sigma d(r, A/sigma)`. "raw" feeds `A_old` unchanged.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

# inner_loop first: importing the package sets the XLA CPU flag before jax starts.
from inner_loop.config import check_seed, field_types
from inner_loop.drifts import Drift
from inner_loop.errors import ConfigError

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

DriftFn = Callable[..., jax.Array]  # drift_fn(ratio, advantage, progress) -> per-sample drift

NEIGHBOURHOODS = ("none", "kl_ball")  # the names the trainer uses
ADVANTAGE_SCALINGS = ("std", "raw")
DRIFT_DTYPES = ("float32", "float64")

# Two-sided difference steps around r = 1 (float64); a kink keeps the quotient constant as h
# shrinks, a smooth flat minimum makes it shrink like h.
FD_STEPS_FLOAT64 = (1e-7, 1e-11)
FD_STEPS_FLOAT32 = (1e-2, 1e-4)  # if the drift computes in float32 whatever it is given
FD_FLOOR = 1e-9  # quotients below this count as zero
RESTART_SCALE = 3.0  # std of the random logit offsets that extra inner ascents start from
KL_BISECTION_STEPS = 40  # halvings of the step back towards pi_old in the KL ball
STEP_GROWTH, STEP_SHRINK = 1.5, 0.5  # the inner step size after a better / a worse candidate
MAX_LOGIT_STEP = 10.0  # cap on any logit's change in one inner step
LOGIT_RANGE = 30.0  # logits stay within this of their state's largest (see clip_logit_range)


@dataclass(frozen=True)
class VerifyConfig:
    """What `verify_drift` checks and on how many MDPs; every field can be `--set`."""

    num_mdps: int = 256  # random MDPs checked at once (vmapped)
    num_states: int = 20  # states per MDP
    num_actions: int = 5  # actions per state
    gamma_min: float = 0.8  # discounts are drawn uniformly from [gamma_min, gamma_max]
    gamma_max: float = 0.99  # upper end of the discount range
    concentration: float = 1.0  # Dirichlet concentration of each transition row (small: near-deterministic)
    iterations: int = 50  # mirror-learning updates per MDP (progress = n / iterations)
    inner_steps: int = 50  # exponentiated-gradient steps of the per-state inner maximisation
    inner_lr: float = 1.0  # initial inner step size (per state: x1.5 after a better candidate, x0.5 after a worse)
    inner_restarts: int = 1  # extra inner ascents from random logits (closer to the global argmax)
    neighbourhood: str = "none"  # "none" (all policies) or "kl_ball" (KL(pi_old(s) || pi(s)) <= kl_delta per state)
    kl_delta: float = 0.05  # radius of the per-state KL ball when neighbourhood == "kl_ball"
    drift_dtype: str = "float32"  # the drift's dtype on the MDPs: float32 as in training (~2x faster than float64)
    advantage_scaling: str = "std"  # "std": A_old / (std(A_old) + 1e-8) per MDP (as in training); "raw": A_old as is
    tol: float = 1e-8  # relative tolerance of eta(pi_{n+1}) >= eta(pi_n) (exact float64 evaluation)
    near_optimal: float = 0.01  # "within 1%": normalised gap to the optimum at most this
    max_final_gap: float = 0.0  # fail if some MDP ends with a normalised gap above this; 0 disables
    seed: int = 0  # seed of the MDPs, the random axiom points, the inner restarts (and lpo/ta_lpo params in the CLI)
    axiom_ratios: int = 121  # log-spaced ratios in [1e-6, 1e6] on the axiom grid (plus points near 1)
    axiom_advantages: int = 25  # log-spaced |A| in [1e-8, 1e4] on the axiom grid, both signs, plus 0
    axiom_progress: int = 5  # evenly spaced progress values in [0, 1] on the axiom grid
    axiom_random_points: int = 8192  # extra random (r, A, progress) points
    axiom_atol: float = 1e-6  # absolute tolerance of d >= 0, d(1, A) = 0 and |dd/dr| at r = 1

    def replace(self, **changes) -> "VerifyConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> "VerifyConfig":
        """Raise ConfigError (one line) for values the check cannot run with."""
        for name in ("num_mdps", "num_states", "num_actions", "iterations", "inner_steps",
                     "axiom_ratios", "axiom_advantages", "axiom_progress"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name}={value!r} is not allowed; it must be a positive integer")
        check_seed(self.seed)
        if self.num_actions < 2:
            raise ConfigError(f"num_actions={self.num_actions!r} is not allowed; it must be at least 2")
        for name in ("axiom_random_points", "inner_restarts"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name}={value!r} is not allowed; it must be an integer >= 0")
        if not 0 <= self.gamma_min <= self.gamma_max < 1:
            raise ConfigError(f"gamma_min={self.gamma_min!r}, gamma_max={self.gamma_max!r} are not allowed; "
                              "they must satisfy 0 <= gamma_min <= gamma_max < 1")
        for name in ("concentration", "inner_lr", "kl_delta", "tol", "near_optimal"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not allowed; it must be > 0")
        for name in ("max_final_gap", "axiom_atol"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not allowed; it must be >= 0")
        if self.neighbourhood not in NEIGHBOURHOODS:
            raise ConfigError(f"neighbourhood={self.neighbourhood!r} is not allowed; "
                              f"choose one of {', '.join(NEIGHBOURHOODS)}")
        if self.drift_dtype not in DRIFT_DTYPES:
            raise ConfigError(f"drift_dtype={self.drift_dtype!r} is not allowed; "
                              f"choose one of {', '.join(DRIFT_DTYPES)}")
        if self.advantage_scaling not in ADVANTAGE_SCALINGS:
            raise ConfigError(f"advantage_scaling={self.advantage_scaling!r} is not allowed; "
                              f"choose one of {', '.join(ADVANTAGE_SCALINGS)}")
        return self


def mdp_rng(seed: int) -> np.random.Generator:
    """The generator of the random MDPs for `seed` (independent of `axiom_rng`)."""
    return np.random.default_rng([seed, 0])


def axiom_rng(seed: int) -> np.random.Generator:
    """The generator of the random axiom points for `seed`."""
    return np.random.default_rng([seed, 1])


# ---------------------------------------------------------------------------------------
# Axioms
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AxiomCheck:
    """One axiom: did it hold at every point tried, and the worst point found."""

    name: str  # what was checked, e.g. "non-negative"
    passed: bool  # held at every point (within tolerance)
    worst: float | None  # the worst value found (meaning depends on the check; None: no finite value)
    at: dict | None  # {"ratio", "advantage", "progress"} where `worst` occurred
    detail: str  # one line for people

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "worst": _json_float(self.worst),
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
    ratios = np.concatenate([np.logspace(-6, 6, config.axiom_ratios),
                             [1.0, 1 - 1e-7, 1 + 1e-7, 1 - 1e-3, 1 + 1e-3, 0.8, 1.2, 0.5, 2.0]])
    magnitudes = np.logspace(-8, 4, config.axiom_advantages)
    advantages = np.concatenate([-magnitudes[::-1], [0.0], magnitudes])
    progress = np.linspace(0.0, 1.0, config.axiom_progress)
    r, a, p = (x.ravel() for x in np.meshgrid(ratios, advantages, progress, indexing="ij"))
    n = config.axiom_random_points
    rand_r = 10.0 ** rng.uniform(-6, 6, n)
    # half log-spread |A| (small values matter), half uniform on +-1e4 (large values matter)
    log_spread = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-8, 4, n)
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
    two-sided difference quotients at r = 1 in float64.
    """
    config = (config or VerifyConfig()).validate()
    rng = axiom_rng(config.seed) if rng is None else rng
    ratio64, adv64, prog64 = axiom_points(config, rng)
    ratio, adv, prog = (jnp.asarray(x, jnp.float32) for x in (ratio64, adv64, prog64))
    fn, params = _split_params(drift_fn)
    values_program, slopes_program = _axiom_programs(fn)

    def values_fn(r, a, p):
        return values_program(params, r, a, p)

    def slope_fn(r, a, p):
        return slopes_program(params, r, a, p)

    values = np.asarray(values_fn(ratio, adv, prog), np.float64)
    slopes = np.asarray(slope_fn(ratio, adv, prog), np.float64)

    # Identity: every (A, progress) of the set, at r = 1 exactly.
    ones = jnp.ones_like(adv)
    at_one = np.asarray(values_fn(ones, adv, prog), np.float64)
    slope_at_one = np.asarray(slope_fn(ones, adv, prog), np.float64)

    def point(i, r=None):
        return {"ratio": float(ratio64[i] if r is None else r), "advantage": float(adv64[i]),
                "progress": float(prog64[i])}

    checks = []
    # finite values and slopes everywhere
    bad = ~(np.isfinite(values) & np.isfinite(slopes))
    if bad.any():
        i = int(np.argmax(bad))
        example = (f"d({_fmt_point(point(i))}) = {values[i]!r}" if not np.isfinite(values[i])
                   else f"dd/dr({_fmt_point(point(i))}) = {slopes[i]!r}")
        checks.append(AxiomCheck("finite", False, float(values[i]), point(i),
                                 f"{int(bad.sum())} points with a non-finite value or slope, e.g. {example}"))
    else:
        checks.append(AxiomCheck("finite", True, float(np.max(np.abs(values))),
                                 point(int(np.argmax(np.abs(values)))), "finite values and slopes everywhere"))
    # d >= 0
    finite_values = np.where(np.isfinite(values), values, np.inf)
    i = int(np.argmin(finite_values))
    worst = float(finite_values[i]) if np.isfinite(finite_values[i]) else None
    ok = worst is None or worst >= -config.axiom_atol
    checks.append(AxiomCheck("non-negative", ok, worst, point(i) if worst is not None else None,
                             f"min d = {_fmt(worst)} at {_fmt_point(point(i))}"))
    # d(1, A) = 0
    i = int(np.argmax(np.where(np.isfinite(at_one), np.abs(at_one), np.inf)))
    ok = bool(np.all(np.abs(at_one) <= config.axiom_atol))
    checks.append(AxiomCheck("zero at identity", ok, float(at_one[i]), point(i, 1.0),
                             f"max |d(1, A)| = {_fmt(abs(at_one[i]))} at {_fmt_point(point(i, 1.0))}"))
    # dd/dr (1, A) = 0 by autodiff
    i = int(np.argmax(np.where(np.isfinite(slope_at_one), np.abs(slope_at_one), np.inf)))
    ok = bool(np.all(np.abs(slope_at_one) <= config.axiom_atol))
    checks.append(AxiomCheck("zero slope at identity (grad)", ok, float(slope_at_one[i]), point(i, 1.0),
                             f"max |dd/dr(1, A)| = {_fmt(abs(slope_at_one[i]))} at {_fmt_point(point(i, 1.0))}"))
    checks.append(_two_sided_slope_check(values_fn, adv64, prog64))
    return AxiomResult(tuple(checks), points=int(ratio.size))


def _two_sided_slope_check(values: DriftFn, adv: np.ndarray, prog: np.ndarray) -> AxiomCheck:
    """Zero one-sided derivatives at r = 1 from difference quotients in float64.

    `q(h) = |d(1 +- h) - d(1)| / h`. If the drift is differentiable with zero slope, q
    shrinks with h (like h for a smooth minimum, or is 0 on a flat region); at a kink it
    stays put. Fail where `q(h_small) > sqrt(h_small / h_large) q(h_large) + FD_FLOOR`.
    `values(r, a, p)`: the drift at every point, jitted (with float64 inputs here).
    """
    name = "zero slope at identity (two-sided, float64)"
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
    detail = (f"{'left' if side == 0 else 'right'} difference quotient {_fmt(q_small[i, side])} at h={h_small:g} "
              f"vs {_fmt(q_large[i, side])} at h={h_large:g}, A={at['advantage']:.3g}, "
              f"progress={at['progress']:.3g}{note}")
    if ok:
        detail = f"quotients shrink with h everywhere (worst at h={h_small:g}: {_fmt(float(np.max(q_small)))}){note}"
    return AxiomCheck(name, ok, float(q_small[i, side]), at, detail)


# ---------------------------------------------------------------------------------------
# Exact MDP machinery (one MDP; vmap for a batch)
# ---------------------------------------------------------------------------------------

class MDP(NamedTuple):
    """A finite discounted MDP; a pytree, so a batch is an MDP of stacked arrays."""

    transitions: jax.Array  # [S, A, S]: P(s' | s, a)
    rewards: jax.Array  # [S, A]: r(s, a)
    initial: jax.Array  # [S]: the initial-state distribution rho_0
    gamma: jax.Array  # []: the discount


def random_mdps(rng: np.random.Generator, config: VerifyConfig) -> MDP:
    """`config.num_mdps` random MDPs, stacked (float64 numpy arrays; `jnp.asarray` them as needed).

    Transition rows ~ Dirichlet(concentration), rewards ~ U[0, 1], rho_0 ~ Dirichlet(1),
    discount ~ U[gamma_min, gamma_max]. Drawn with numpy, not jax.random: the MDPs are data,
    and on XLA's CPU backend every new shape of a threefry draw costs ~1.5 s to compile.
    """
    m, s, a = config.num_mdps, config.num_states, config.num_actions
    return MDP(transitions=rng.dirichlet(np.full(s, config.concentration), size=(m, s, a)),
               rewards=rng.uniform(0.0, 1.0, size=(m, s, a)),
               initial=rng.dirichlet(np.ones(s), size=m),
               gamma=rng.uniform(config.gamma_min, config.gamma_max, size=m))


def policy_values(mdp: MDP, policy: jax.Array) -> jax.Array:
    """Exact `V^pi` [S]: solve `(I - gamma P_pi) V = r_pi`."""
    p_pi = jnp.einsum("sa,sat->st", policy, mdp.transitions)
    r_pi = jnp.sum(policy * mdp.rewards, axis=-1)
    eye = jnp.eye(p_pi.shape[0], dtype=p_pi.dtype)
    return jnp.linalg.solve(eye - mdp.gamma * p_pi, r_pi)


def q_values(mdp: MDP, values: jax.Array) -> jax.Array:
    """`Q(s, a) = r(s, a) + gamma sum_s' P(s'|s, a) V(s')` [S, A]."""
    return mdp.rewards + mdp.gamma * jnp.einsum("sat,t->sa", mdp.transitions, values)


def advantages(mdp: MDP, policy: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(`A^pi` [S, A], `V^pi` [S]), exact."""
    values = policy_values(mdp, policy)
    return q_values(mdp, values) - values[:, None], values


def expected_return(mdp: MDP, values: jax.Array) -> jax.Array:
    """`eta = sum_s rho_0(s) V(s)`."""
    return jnp.dot(mdp.initial, values)


def value_iteration(mdp: MDP, tol: float = 1e-12, max_iterations: int = 100_000,
                    polish_steps: int = 3) -> tuple[jax.Array, jax.Array]:
    """(`V*` [S], an optimal deterministic policy [S, A] one-hot).

    Value iteration until the sup-norm change is below `tol` (relative to max |V|), then
    `polish_steps` rounds of policy iteration with exact evaluation, so `V*` is the exact
    value of the returned greedy policy (policy iteration is exact at its fixed point).
    """
    def bellman(values):
        return jnp.max(q_values(mdp, values), axis=-1)

    def not_done(carry):
        values, change, i = carry
        return (change > tol * jnp.maximum(1.0, jnp.max(jnp.abs(values)))) & (i < max_iterations)

    def sweep(carry):
        values, _, i = carry
        new = bellman(values)
        return new, jnp.max(jnp.abs(new - values)), i + 1

    zeros = jnp.zeros(mdp.rewards.shape[0], mdp.rewards.dtype)
    values, _, _ = jax.lax.while_loop(not_done, sweep, (zeros, jnp.asarray(jnp.inf, zeros.dtype), 0))

    def greedy(values):
        return jax.nn.one_hot(jnp.argmax(q_values(mdp, values), axis=-1), mdp.rewards.shape[1],
                              dtype=values.dtype)

    def improve(_, values):
        return policy_values(mdp, greedy(values))

    values = jax.lax.fori_loop(0, polish_steps, improve, values)
    return values, greedy(values)


def kl_to_old(logits: jax.Array, logp_old: jax.Array) -> jax.Array:
    """`KL(pi_old(s) || pi(s))` per state [S]."""
    return jnp.sum(jnp.exp(logp_old) * (logp_old - jax.nn.log_softmax(logits)), axis=-1)


def project_to_kl_ball(logits: jax.Array, logits_old: jax.Array, delta: float) -> jax.Array:
    """Per state, step back along the line towards `logits_old` until `KL(pi_old || pi) <= delta`.

    Along `z_old + t (z - z_old)` the KL is convex in t with value and slope 0 at t = 0, so it
    grows with t and bisection finds the largest feasible t in [0, 1].
    """
    logp_old = jax.nn.log_softmax(logits_old)
    direction = logits - logits_old
    inside = kl_to_old(logits, logp_old) <= delta

    def halve(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        ok = kl_to_old(logits_old + mid[:, None] * direction, logp_old) <= delta
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)

    zeros = jnp.zeros(logits.shape[0], logits.dtype)
    lo, _ = jax.lax.fori_loop(0, KL_BISECTION_STEPS, halve, (zeros, jnp.ones_like(zeros)))
    t = jnp.where(inside, 1.0, lo)
    return logits_old + t[:, None] * direction


def clip_logit_range(logits: jax.Array) -> jax.Array:
    """Keep every logit within LOGIT_RANGE of its state's largest (probabilities >= ~e^-30).

    Why: a softmax saturated on one action has vanishing gradients and ratios that overflow;
    bounding the range keeps both finite. The policies searched are the ones this allows.
    """
    return jnp.maximum(logits, jnp.max(logits, axis=-1, keepdims=True) - LOGIT_RANGE)


def mirror_objective_of_policy(policy: jax.Array, logp_old: jax.Array, adv: jax.Array, drift_fn: DriftFn,
                               progress: jax.Array, drift_dtype: str = "float32") -> jax.Array:
    """Per state [S]: `E_{a~pi}[A(s,a)] - E_{a~pi_old}[d(pi(a|s)/pi_old(a|s), A(s,a), progress)]`.

    `policy` [S, A] is pi itself; the drift is evaluated in `drift_dtype`, the rest in the
    dtype of `policy`.
    """
    ratio = policy * jnp.exp(-logp_old)
    r, a = ratio.astype(drift_dtype), adv.astype(drift_dtype)
    drift = jnp.broadcast_to(drift_fn(r, a, jnp.full_like(r, progress)), ratio.shape).astype(ratio.dtype)
    return jnp.sum(policy * adv, axis=-1) - jnp.sum(jnp.exp(logp_old) * drift, axis=-1)


def mirror_objective(logits: jax.Array, logp_old: jax.Array, adv: jax.Array, drift_fn: DriftFn,
                     progress: jax.Array, drift_dtype: str = "float32") -> jax.Array:
    """`mirror_objective_of_policy` at `softmax(logits)`."""
    return mirror_objective_of_policy(jax.nn.softmax(logits), logp_old, adv, drift_fn, progress, drift_dtype)


def maximise_mirror_objective(logits_old: jax.Array, adv: jax.Array, drift_fn: DriftFn, progress: jax.Array,
                              config: VerifyConfig, key: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """(best logits [S, A], best objective [S]) by exponentiated-gradient ascent from `logits_old`.

    Each step adds `step_size * dL/dpi` to the logits (`pi <- pi exp(step dL/dpi) / Z`: mirror
    ascent on the simplex, whose fixed points are the constrained optimum, and which, unlike
    the gradient in logits, does not vanish where the softmax saturates). Monotone with a
    per-state adaptive step: only better candidates are kept and the first point is `pi_old`
    itself, so a state's objective never ends below its value at `pi_old`; non-finite
    objectives or gradients count as worse. With `config.inner_restarts` > 0, as many more
    ascents start from random logits around `pi_old` (drawn with `key`) and the best over all
    is kept per state: closer to the theorem's global argmax, which is what exposes drifts
    that are negative away from `r = 1`.
    """
    logp_old = jax.nn.log_softmax(logits_old)

    def total(policy):
        per_state = mirror_objective_of_policy(policy, logp_old, adv, drift_fn, progress, config.drift_dtype)
        return jnp.sum(jnp.where(jnp.isfinite(per_state), per_state, 0.0)), per_state

    value_and_grad = jax.value_and_grad(total, has_aux=True)  # states are separable: row s of the grad is state s's

    def evaluate(logits):
        (_, objective), grad = value_and_grad(jax.nn.softmax(logits))
        ok = jnp.isfinite(objective) & jnp.all(jnp.isfinite(grad), axis=-1)
        return jnp.where(ok, objective, -jnp.inf), jnp.where(ok[:, None], grad, 0.0)

    def ascent_step(_, carry):
        # From the best point so far, a step of the state's own size; keep the candidate only
        # if it is better. Success grows the size, failure shrinks it, so it adapts to drifts
        # of any steepness (a steep one needs tiny steps, GPI huge ones).
        best_logits, best_objective, best_grad, step_size = carry
        step = step_size[:, None] * best_grad
        largest = jnp.max(jnp.abs(step), axis=-1, keepdims=True)
        step = step * jnp.minimum(1.0, MAX_LOGIT_STEP / jnp.maximum(largest, 1e-300))
        candidate = clip_logit_range(best_logits + step)
        if config.neighbourhood == "kl_ball":
            candidate = project_to_kl_ball(candidate, logits_old, config.kl_delta)
        objective, grad = evaluate(candidate)
        better = objective > best_objective
        return (jnp.where(better[:, None], candidate, best_logits), jnp.where(better, objective, best_objective),
                jnp.where(better[:, None], grad, best_grad), step_size * jnp.where(better, STEP_GROWTH, STEP_SHRINK))

    def ascend(start):
        objective, grad = evaluate(start)
        step_size = jnp.full(start.shape[0], config.inner_lr, start.dtype)
        best_logits, best_objective, _, _ = jax.lax.fori_loop(
            0, config.inner_steps, ascent_step, (start, objective, grad, step_size))
        return best_logits, best_objective

    if config.inner_restarts == 0:
        return ascend(logits_old)
    key = jax.random.PRNGKey(0) if key is None else key
    noise = RESTART_SCALE * jax.random.normal(key, (config.inner_restarts,) + logits_old.shape, logits_old.dtype)
    starts = jnp.concatenate([logits_old[None], clip_logit_range(logits_old[None] + noise)])
    if config.neighbourhood == "kl_ball":
        starts = jax.vmap(lambda z: project_to_kl_ball(z, logits_old, config.kl_delta))(starts)
    all_logits, all_objective = jax.vmap(ascend)(starts)  # [R+1, S, A], [R+1, S]
    best = jnp.argmax(all_objective, axis=0)  # ties: the ascent from pi_old (index 0)
    states = jnp.arange(logits_old.shape[0])
    return all_logits[best, states], all_objective[best, states]


class RunTrace(NamedTuple):
    """One MDP's mirror-learning run (stacked over MDPs when vmapped)."""

    returns: jax.Array  # [iterations + 1]: eta(pi_0), ..., eta(pi_N), exact
    min_objective: jax.Array  # [iterations]: min over states of the accepted per-state objective
    max_kl: jax.Array  # [iterations]: max over states of KL(pi_old || pi_new)
    optimal_return: jax.Array  # []: eta(pi*) by value iteration


def mirror_learning_run(mdp: MDP, key: jax.Array, drift_fn: DriftFn, config: VerifyConfig) -> RunTrace:
    """`config.iterations` exact mirror-learning updates from the uniform policy (`key`: restarts)."""
    num_states, num_actions = mdp.rewards.shape
    logits0 = jnp.zeros((num_states, num_actions), mdp.rewards.dtype)

    def update(logits, n):
        policy = jax.nn.softmax(logits)
        adv, values = advantages(mdp, policy)
        # E_{pi_old}[A_old(s, .)] = 0 exactly; subtracting the rounding left by the solve makes
        # the objective at pi_old exactly 0 (it matters once "std" scaling magnifies tiny A).
        adv = adv - jnp.sum(policy * adv, axis=-1, keepdims=True)
        if config.advantage_scaling == "std":
            # The trainer's normalisation: (A - mean) / (std + 1e-8), the mean being 0 here.
            adv = adv / (jnp.sqrt(jnp.mean(jnp.sum(policy * adv * adv, axis=-1))) + 1e-8)
        progress = n / config.iterations
        new_logits, objective = maximise_mirror_objective(logits, adv, drift_fn, progress, config,
                                                          jax.random.fold_in(key, n.astype(jnp.int32)))
        kl = kl_to_old(new_logits, jax.nn.log_softmax(logits))
        # Softmax ignores a per-state shift; re-centre so logits stay bounded over many updates.
        new_logits = new_logits - jnp.max(new_logits, axis=-1, keepdims=True)
        return new_logits, (expected_return(mdp, values), jnp.min(objective), jnp.max(kl))

    steps = jnp.arange(config.iterations, dtype=mdp.rewards.dtype)
    final_logits, (returns, min_objective, max_kl) = jax.lax.scan(update, logits0, steps)
    final_return = expected_return(mdp, policy_values(mdp, jax.nn.softmax(final_logits)))
    optimal, _ = value_iteration(mdp)
    return RunTrace(jnp.append(returns, final_return), min_objective, max_kl, expected_return(mdp, optimal))


def run_batch(mdps: MDP, keys: jax.Array, drift_fn: DriftFn, config: VerifyConfig) -> RunTrace:
    """`mirror_learning_run` vmapped over a batch of MDPs and their keys (call under jit)."""
    return jax.vmap(lambda mdp, key: mirror_learning_run(mdp, key, drift_fn, config))(mdps, keys)


# ---------------------------------------------------------------------------------------
# Checks on the runs
# ---------------------------------------------------------------------------------------

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
        return {**{k: _json_float(v) if isinstance(v, float) else v for k, v in dataclasses.asdict(self).items()},
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
        return {**{k: _json_float(v) if isinstance(v, float) else v for k, v in dataclasses.asdict(self).items()},
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
                "max_kl": _json_float(self.max_kl), "seconds": self.seconds, "config": self.config.to_dict()}


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


# ---------------------------------------------------------------------------------------
# The `discover verify` command
# ---------------------------------------------------------------------------------------

def add_verify_command(sub) -> argparse.ArgumentParser:
    """Register `discover verify DRIFT [--option k=v ...] [--set k=v ...] [--out FILE]` on `sub`."""
    from inner_loop import drifts

    parser = sub.add_parser(
        "verify", help="check the mirror-learning theorem on a drift (exact random MDPs)",
        description="Check a drift's axioms on a dense grid and the mirror-learning theorem "
                    "(monotonic improvement, convergence) exactly on a batch of random finite MDPs. "
                    "Exit status 1 if a check fails.")
    parser.add_argument("drift", metavar="DRIFT",
                        help=f"a zoo drift ({', '.join(drifts.names())}), trpo (zero in a KL ball) "
                             "or the path of a drift file")
    parser.add_argument("--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                        help="a zoo drift option (eps=0.1, init_scale=1.0, ...); repeatable")
    parser.add_argument("--set", dest="settings", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override a check setting (num_mdps=64, iterations=20, neighbourhood=kl_ball, "
                             "advantage_scaling=raw, seed=1, ...); several pairs per --set, and --set repeatable")
    parser.add_argument("--out", help="write the verdict as JSON to this file")
    parser.set_defaults(handler=cmd_verify)
    return parser


def apply_verify_overrides(config: VerifyConfig, pairs: list[str]) -> VerifyConfig:
    """`--set key=value` pairs applied to `config`; ConfigError names unknown keys and bad values."""
    from discover.training.settings import parse_value, split_pairs

    types = field_types(VerifyConfig)
    changes: dict[str, Any] = {}
    for key, text in split_pairs(pairs):
        if key not in types:
            raise ConfigError(f"unknown setting {key!r}; allowed: {', '.join(types)}")
        changes[key] = parse_value(key, text, types[key])
    return config.replace(**changes)


def resolve_drift(spec: str, option_pairs: list[str], seed: int) -> tuple[DriftFn, dict]:
    """(drift_fn, description) for a zoo name with options, or a drift file path."""
    import os

    from discover.training.settings import parse_value
    from inner_loop import drifts

    if spec in drifts.names():
        types = drifts.option_types(spec)
        options: dict[str, Any] = {}
        for pair in option_pairs:
            key, sep, text = (s.strip() for s in pair.partition("="))
            if not sep or not key:
                raise ConfigError(f"--option {pair!r} is not of the form key=value")
            if key not in types:
                allowed = ", ".join(types) if types else "none"
                raise ConfigError(f"drift {spec!r} has no option {key!r}; allowed: {allowed}")
            options[key] = parse_value(key, text, types[key])
        drift = drifts.get(spec, **options)
        params = drift.init(jax.random.PRNGKey(seed))

        def drift_fn(ratio, advantage, progress=0.0):
            return drift(params, ratio, advantage, progress)

        return drift_fn, {"drift": spec, "drift_options": drift.options()}
    from discover.files.drift_file import drift_file_path, load_drift, packaged_drifts

    if os.path.exists(spec) or drift_file_path(spec):
        if option_pairs:
            raise ConfigError("--option applies to zoo drifts only; a drift file carries its own options")

        # No axiom gate on loading: checking the axioms (and reporting them) is this command's job.
        loaded = load_drift(spec, check_axioms=False)
        return loaded, {"drift": spec, "drift_file": True,
                        "drift_options": dict(getattr(loaded, "metadata", {}).get("options", {}))}
    raise ConfigError(f"unknown drift {spec!r}; allowed: {', '.join(drifts.names() + packaged_drifts())}, trpo, "
                      "or the path of a drift file")


def cmd_verify(args) -> int:
    from rich.console import Console

    from discover.cli.main import ALGORITHM_ALIASES
    from discover.training.settings import split_pairs

    from discover.files.atomic import write_json_atomic

    config = apply_verify_overrides(VerifyConfig(), args.settings).validate()
    spec = args.drift
    if spec in ALGORITHM_ALIASES:  # as in `discover train` (trpo: the zero drift in a KL ball)
        spec, alias_settings = ALGORITHM_ALIASES[spec]
        for key, _ in split_pairs(args.settings):
            if key in alias_settings:
                raise ConfigError(f"setting {key!r} is fixed by {args.drift} ({alias_settings[key]})")
        config = config.replace(**alias_settings)
    drift_fn, description = resolve_drift(spec, args.options, config.seed)
    if args.out:
        from discover.cli.main import _check_writable

        _check_writable(args.out)
    console = Console(stderr=True)
    console.print(f"verifying [bold]{args.drift}[/]: axioms on {_axiom_point_count(config):,} points, then "
                  f"{config.num_mdps} random MDPs ({config.num_states} states x {config.num_actions} actions) "
                  f"x {config.iterations} mirror-learning updates")
    result = verify_drift(drift_fn, config)
    Console().print(verdict_table(result, args.drift))
    if args.out:
        payload = {**description, **result.to_dict(), "jax": jax.__version__,
                   "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        write_json_atomic(args.out, payload)
        Console().print(f"wrote {args.out}")
    return 0 if result.passed else 1


def verdict_table(result: VerifyResult, drift_label: str):
    """A rich table: one row per check with its verdict and the worst case found."""
    from rich.table import Table

    def verdict(ok: bool) -> str:
        return "[green]pass[/]" if ok else "[bold red]FAIL[/]"

    config = result.config
    table = Table(title=f"mirror-learning verification of {drift_label}")
    table.add_column("check")
    table.add_column("verdict", justify="center")
    table.add_column("worst case / numbers")
    for check in result.axioms.checks:
        table.add_row(f"axiom: {check.name}", verdict(check.passed), check.detail)
    imp = result.improvement
    detail = (f"{imp.violations} violations in {imp.steps:,} updates ({imp.mdps_with_violation} of {config.num_mdps} "
              f"MDPs); worst relative drop {imp.worst_drop:.3g} (tol {config.tol:g}); "
              f"min inner objective {imp.min_inner_objective:.3g}")
    if imp.first_mdp_with_violation is not None:
        detail += f"; first seen in MDP {imp.first_mdp_with_violation}"
    if imp.non_finite_mdps:
        detail += f"; {imp.non_finite_mdps} MDPs non-finite"
    table.add_row("monotonic improvement", verdict(imp.passed), detail, end_section=True)
    conv = result.convergence
    limit = f" (limit {conv.max_final_gap:g})" if conv.max_final_gap > 0 else " (not a pass/fail check)"
    table.add_row("final gap to optimum", verdict(conv.passed) if conv.max_final_gap > 0 else "-",
                  f"normalised median {conv.final_gap_median:.3g}, max {conv.final_gap_max:.3g}{limit}; "
                  f"relative to eta* median {conv.final_relative_gap_median:.3g}, "
                  f"max {conv.final_relative_gap_max:.3g}")
    steps = ("never" if conv.steps_to_near_optimal_median is None
             else f"median {conv.steps_to_near_optimal_median:g}, max {conv.steps_to_near_optimal_max}")
    table.add_row(f"updates to within {conv.near_optimal:.0%}", "-",
                  f"{steps}; {conv.never_near_optimal} of {config.num_mdps} MDPs never")
    s = result.seconds
    table.add_row("run time", "-", f"{s['total']:.1f} s (axioms {s['axioms']:.1f} s, compile {s['compile']:.1f} s, "
                                   f"MDPs {s['run']:.1f} s)", end_section=True)
    table.caption = ("[green]PASSED[/]: the drift satisfies the axioms and improved monotonically on every MDP"
                     if result.passed else "[bold red]FAILED[/]: " + "; ".join(result.failures))
    return table


def _axiom_point_count(config: VerifyConfig) -> int:
    grid = (config.axiom_ratios + 9) * (2 * config.axiom_advantages + 1) * config.axiom_progress
    return grid + config.axiom_random_points


def _fmt(x: float | None) -> str:
    return "none" if x is None else f"{x:.3g}"


def _fmt_point(at: dict) -> str:
    return f"r={at['ratio']:.6g}, A={at['advantage']:.3g}, progress={at['progress']:.3g}"


def _json_float(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None  # JSON has no NaN / inf
