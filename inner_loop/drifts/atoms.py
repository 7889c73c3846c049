"""The atoms: small formulas over (r, A, p), each a valid drift by itself, and `atoms`, the
drift family of their non-negative weighted sums.

Every atom is >= 0, zero at r = 1 and flat there (zero r-slope) for every A and progress p in
[0, 1], so every non-negative combination of atoms is a valid drift (docs/design.md,
Distillation): `discover distill` fits such combinations, and `AtomsDrift` (the zoo's
`atoms`) evolves one. Each atom's text is in the grammar of `inner_loop/expression.py` and
binds at least as tightly as `*` (a product, power or call), so `w*atom` and `p*atom` read
as meant.

    quadratic      (r - 1)**2, log(r)**2, each also times |A|, relu(A) and relu(-A)
    KL             relu(r - 1 - log(r))
    PPO            relu((r - clip(r, 1 - eps, 1 + eps))*A)                 eps in EPS
    PPO pieces     relu(r - (1 + eps))*relu(+-A), relu((1 - eps) - r)*relu(+-A)
    DPO pieces     relu(x - a*tanh(x/a)), x = (r - 1)*relu(A)               a in DPO_ALPHAS
                   relu(y - b*tanh(y/b)), y = log(r)*minimum(A, 0)          b in DPO_BETAS
    progress       p*atom and (1 - p)*atom of each of the above (time-aware targets only)

The PPO atom at eps 0.2 is exactly the `ppo` zoo drift, and the two DPO pieces at a = 2,
b = 0.6 sum to exactly the `dpo` zoo drift (`closed_form.py`): relu(A) and
minimum(A, 0) select DPO's A >= 0 and A < 0 branches without a conditional.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from inner_loop.drifts.base import Drift
from inner_loop.errors import ConfigError
from inner_loop.expression import compile_expression, operation_count

EPS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)  # PPO clip ranges (0.2 is PPO's default)
DPO_ALPHAS = (0.5, 1.0, 2.0, 4.0)  # DPO's alpha (2 is its default)
DPO_BETAS = (0.2, 0.4, 0.6, 1.0)  # DPO's beta (0.6 is its default)


@dataclass(frozen=True)
class Atom:
    """One valid drift in the grammar: its text and a short description."""

    text: str  # the formula (a product, power or call: binds at least as tightly as *)
    family: str  # what it is, for tables: "quadratic", "ppo", "dpo+", ...

    @cached_property
    def size(self) -> int:
        """Operations of the text (inner_loop.expression.operation_count)."""
        return operation_count(self.text)

    def values(self, ratio: np.ndarray, advantage: np.ndarray, progress: np.ndarray) -> np.ndarray:
        """The atom at every sample, as float64."""
        return np.asarray(compile_expression(self.text)(ratio, advantage, progress), np.float64)


def _number(x: float) -> str:
    return f"{x:g}"


def base_atoms() -> list[Atom]:
    """The atoms that do not read the progress."""
    atoms = []
    for u, u_name in (("(r - 1)**2", "(r-1)^2"), ("log(r)**2", "(log r)^2")):
        atoms.append(Atom(u, f"quadratic {u_name}"))
        for a_text, a_name in (("abs(A)", "|A|"), ("relu(A)", "A+"), ("relu(-A)", "A-")):
            atoms.append(Atom(f"{a_text}*{u}", f"quadratic {a_name} {u_name}"))
    atoms.append(Atom("relu(r - 1 - log(r))", "KL"))
    for eps in EPS:
        lo, hi = _number(1 - eps), _number(1 + eps)
        atoms.append(Atom(f"relu((r - clip(r, {lo}, {hi}))*A)", f"ppo eps={eps:g}"))
        for side, piece in (("A+", "relu(A)"), ("A-", "relu(-A)")):
            atoms.append(Atom(f"relu(r - {hi})*{piece}", f"ppo piece r>{hi} {side}"))
            atoms.append(Atom(f"relu({lo} - r)*{piece}", f"ppo piece r<{lo} {side}"))
    for a in DPO_ALPHAS:
        x, a_text = "(r - 1)*relu(A)", _number(a)
        atoms.append(Atom(f"relu({x} - {a_text}*tanh({x}/{a_text}))", f"dpo A>=0 alpha={a:g}"))
    for b in DPO_BETAS:
        y, b_text = "log(r)*minimum(A, 0)", _number(b)
        atoms.append(Atom(f"relu({y} - {b_text}*tanh({y}/{b_text}))", f"dpo A<0 beta={b:g}"))
    return atoms


@functools.cache
def library(time_aware: bool) -> tuple[Atom, ...]:
    """Every atom: the base atoms, and for a time-aware target their p- and (1 - p)-weighted copies."""
    atoms = base_atoms()
    if not time_aware:
        return tuple(atoms)
    return tuple(atoms + [Atom(f"p*{a.text}", f"p * {a.family}") for a in atoms]
                 + [Atom(f"(1 - p)*{a.text}", f"(1-p) * {a.family}") for a in atoms])


WEIGHT_DIGITS = 4  # significant digits of a weight in a formula's text


def weighted_sum_text(terms) -> str:
    """The canonical text of `sum w * atom` over (weight > 0, Atom) pairs: weights with
    WEIGHT_DIGITS significant digits (a weight that prints as 1 is left out), terms joined
    by " + "; "0" for no terms."""
    parts = []
    for weight, atom in terms:
        shown = f"{weight:.{WEIGHT_DIGITS}g}"
        parts.append(atom.text if shown == "1" else f"{shown}*{atom.text}")
    return " + ".join(parts) or "0"


# The atoms that sum to each start drift, exactly (see the module docstring).
START_ATOMS = {"none": (), "ppo": ("ppo eps=0.2",), "dpo": ("dpo A>=0 alpha=2", "dpo A<0 beta=0.6")}


@dataclass(frozen=True)
class AtomsDrift(Drift):
    """`d(r, A, p) = sum_i w_i atom_i(r, A, p)` with `w_i = relu(s_i + theta_i)`: a drift
    readable as a formula at every parameter value (`formula(params)`), with one number per
    atom (52, or 156 time-aware) where `lpo` has thousands.

    Valid for every `theta`: each atom is a valid drift and every weight is >= 0. `s` is the
    start's indicator (PPO's eps = 0.2 atom, or DPO's two pieces), so `theta = 0` is exactly
    the start drift. Why relu, not softplus: it reaches exactly 0 (softplus would put every
    atom in the drift), and an antithetic pair +-eps on a weight at 0 still differs to first
    order (relu(x) - relu(-x) = x), so the search sees the direction of adding an atom.
    """

    name: ClassVar[str] = "atoms"
    start: str = "ppo"  # the drift at theta = 0: none, ppo (eps 0.2) or dpo (alpha 2, beta 0.6)
    time_aware: bool = False  # also the p- and (1 - p)-weighted copies of every atom

    @property
    def atoms(self) -> tuple[Atom, ...]:
        return library(self.time_aware)

    @property
    def start_weights(self) -> np.ndarray:
        """`s`: 1 for each atom of the start drift, else 0."""
        families = START_ATOMS[self.start]
        return np.array([1.0 if atom.family in families else 0.0 for atom in self.atoms], np.float32)

    def init(self, key):
        return {"theta": jnp.zeros(len(self.atoms), jnp.float32)}

    def feature_names(self) -> list[str]:
        return [atom.text for atom in self.atoms]  # theta's order

    def architecture(self) -> dict:
        return {"kind": "d = sum_i w_i atom_i, w_i = relu(s_i + theta_i), s the start's atoms; "
                        "the atoms are listed in `features`, in the order of theta",
                "start": self.start, "time_aware": self.time_aware, "atoms": len(self.atoms)}

    def weights(self, params) -> jax.Array:
        """The atoms' weights, all >= 0."""
        return jax.nn.relu(self.start_weights + params["theta"])

    def __call__(self, params, ratio, advantage, progress=0.0):
        dtype = jnp.result_type(ratio, advantage, jnp.float32)
        ratio, advantage = jnp.broadcast_arrays(jnp.asarray(ratio, dtype), jnp.asarray(advantage, dtype))
        weights = self.weights(params).astype(dtype)
        total = jnp.zeros_like(ratio)
        for i, atom in enumerate(self.atoms):
            total = total + weights[i] * compile_expression(atom.text)(ratio, advantage, progress)
        return total

    def formula(self, params) -> str:
        """The drift as a formula in the grammar of `inner_loop/expression.py`, weights rounded."""
        weights = np.asarray(self.weights(params), np.float64)
        return weighted_sum_text([(w, a) for w, a in zip(weights, self.atoms) if w > 0])

    def _check(self):
        if self.start not in START_ATOMS:
            raise ConfigError(f"drift option start={self.start!r} is not allowed for 'atoms'; "
                              f"choose {', '.join(START_ATOMS)}")
