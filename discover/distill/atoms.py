"""The atoms of distillation: small formulas over (r, A, p), each a valid drift by itself.

Every atom is >= 0, zero at r = 1 and flat there (zero r-slope) for every A and progress p in
[0, 1], so every non-negative combination of atoms is a valid drift (docs/design.md,
Distillation). Each atom's text is in the grammar of `inner_loop/expression.py` and binds at
least as tightly as `*` (a product, power or call), so `w*atom` and `p*atom` read as meant.

    quadratic      (r - 1)**2, log(r)**2, each also times |A|, relu(A) and relu(-A)
    KL             relu(r - 1 - log(r))
    PPO            relu((r - clip(r, 1 - eps, 1 + eps))*A)                 eps in EPS
    PPO pieces     relu(r - (1 + eps))*relu(+-A), relu((1 - eps) - r)*relu(+-A)
    DPO pieces     relu(x - a*tanh(x/a)), x = (r - 1)*relu(A)               a in DPO_ALPHAS
                   relu(y - b*tanh(y/b)), y = log(r)*minimum(A, 0)          b in DPO_BETAS
    progress       p*atom and (1 - p)*atom of each of the above (time-aware targets only)

The PPO atom at eps 0.2 is exactly the `ppo` zoo drift, and the two DPO pieces at a = 2,
b = 0.6 sum to exactly the `dpo` zoo drift (`inner_loop/drifts.py`): relu(A) and
minimum(A, 0) select DPO's A >= 0 and A < 0 branches without a conditional.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

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


def library(time_aware: bool) -> list[Atom]:
    """Every atom: the base atoms, and for a time-aware target their p- and (1 - p)-weighted copies."""
    atoms = base_atoms()
    if not time_aware:
        return atoms
    return atoms + [Atom(f"p*{a.text}", f"p * {a.family}") for a in atoms] + \
        [Atom(f"(1 - p)*{a.text}", f"(1-p) * {a.family}") for a in atoms]
