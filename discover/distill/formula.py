"""A fitted combination of atoms as a formula: canonical text, operation count, LaTeX, JAX.

    formula = Formula(((0.93, atom_a), (0.12, atom_b)))
    formula.text    # "0.93*relu((r - clip(r, 0.8, 1.2))*A) + 0.12*log(r)**2"  (stored in the drift file)
    formula.size    # operations (inner_loop.expression.operation_count)
    formula.latex   # via sympy, from an expression built node by node from the checked tree
    formula.jax     # the source of a standalone JAX function

The text is the one canonical form (`inner_loop.drifts.atoms.weighted_sum_text`: weights
with WEIGHT_DIGITS significant digits, a weight that prints as 1 left out). LaTeX is printed
by sympy from a sympy expression built from the grammar's own checked syntax tree
(`inner_loop.expression.parse`) -- never by sympy's parse_expr or sympify, which eval
their input.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy

from inner_loop.drifts.atoms import WEIGHT_DIGITS, Atom, weighted_sum_text
from inner_loop.expression import compile_expression, jax_source, operation_count, parse

_SYMBOLS = {"r": sympy.Symbol("r", positive=True), "A": sympy.Symbol("A", real=True),
            "p": sympy.Symbol("p", nonnegative=True)}
_FUNCTIONS = {"relu": sympy.Function("relu"), "clip": sympy.Function("clip"), "abs": sympy.Abs,
              "log": sympy.log, "exp": sympy.exp, "tanh": sympy.tanh, "sqrt": sympy.sqrt,
              "square": lambda x: x ** 2, "minimum": sympy.Min, "maximum": sympy.Max}


@dataclass(frozen=True)
class Formula:
    """Non-negative weights times atoms, summed."""

    terms: tuple[tuple[float, Atom], ...]  # (weight > 0, atom) in the order they were selected

    @cached_property
    def text(self) -> str:
        return weighted_sum_text(self.terms)

    @cached_property
    def size(self) -> int:
        return operation_count(self.text)

    @cached_property
    def latex(self) -> str:
        return sympy.latex(to_sympy(self.text))

    @cached_property
    def jax(self) -> str:
        return jax_source(self.text)

    def values(self, ratio, advantage, progress) -> np.ndarray:
        """The formula (its text, as stored) at every sample, as float64."""
        return np.asarray(compile_expression(self.text)(ratio, advantage, progress), np.float64)


def to_sympy(text: str) -> sympy.Expr:
    """The sympy expression of a formula, built node by node from its checked syntax tree."""
    return _sympy_node(parse(text).body)


def _sympy_node(node: ast.AST) -> sympy.Expr:
    if isinstance(node, ast.Constant):
        value = float(node.value)
        return sympy.Integer(int(value)) if value.is_integer() else sympy.Float(f"{value:.{WEIGHT_DIGITS + 2}g}")
    if isinstance(node, ast.Name):
        return _SYMBOLS[node.id]
    if isinstance(node, ast.UnaryOp):
        operand = _sympy_node(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _sympy_node(node.left), _sympy_node(node.right)
        ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
               ast.Div: _divide, ast.Pow: lambda a, b: a ** b}
        return ops[type(node.op)](left, right)
    return _FUNCTIONS[node.func.id](*(_sympy_node(a) for a in node.args))


def _divide(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    """`a / b` kept as a fraction (sympy would turn `x / 0.6` into `1.66666666666667 x`)."""
    return sympy.Mul(a, sympy.Pow(b, -1, evaluate=False), evaluate=False)


def weighted_error(values: np.ndarray, target: np.ndarray, weight: np.ndarray) -> float:
    """`||sqrt(w)(f - y)|| / ||sqrt(w) y||`: the weighted relative error of `values`."""
    return float(np.sqrt(np.sum(weight * (values - target) ** 2) / np.sum(weight * target ** 2)))
