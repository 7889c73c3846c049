"""A small, safe grammar of closed-form drift formulas over (r, A, p), read without eval.

    fn = compile_expression("0.5*relu(r - 1.2)*relu(A) + (1 - p)*(log(r))**2")
    fn(ratio, advantage, progress)  # a jnp array

The text is checked in three passes (docs/design.md, Distillation: the grammar):

1. *Before* `ast.parse` (deep nesting or long unary chains crash it): at most MAX_LENGTH
   characters, a scan of the tokens (names, numbers, `+ - * / **`, parentheses, commas;
   any other character is refused), bracket depth at most MAX_DEPTH, at most
   MAX_OPERATOR_RUN operators in a row, and every name one of the variables or functions.
2. `ast.parse(text, mode="eval")`, then a walk over a whitelist of node types: numeric
   constants (int/float within float32's range), the names `r`, `A`, `p`, unary `-`/`+`, binary
   `+ - * / **` (the exponent a numeric literal with |value| <= MAX_EXPONENT), and calls
   of FUNCTIONS by name with their number of positional arguments; at most MAX_NODES
   nodes and an AST depth of at most MAX_AST_DEPTH.
3. The tree is turned into nested Python closures over jnp functions, every constant a
   float32 number like the values it meets. A constant sub-expression (`2**-1`, `0**-1`) is
   computed once, here, in float32: one that is not finite (inf, or NaN as `(-1)**0.5`) is
   refused. Nothing is ever eval'd or exec'd.

Every violation is one `ConfigError` line naming the offending token and what is allowed.
Whether the formula is a valid drift (finite, non-negative, zero and flat at r = 1 on the
domain training reaches) is the axiom check's business.
"""

from __future__ import annotations

import ast
import functools
import math
import re
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from inner_loop.errors import ConfigError

MAX_LENGTH = 4000  # characters
MAX_DEPTH = 32  # bracket nesting
MAX_OPERATOR_RUN = 3  # operators in a row ("r * -1" has 2); long unary chains crash ast.parse
MAX_NODES = 1000  # AST nodes
MAX_AST_DEPTH = 64  # AST depth (a chain r + r + ... + r nests one level per term)
MAX_EXPONENT = 8  # |exponent| of **
FLOAT32_MAX = float(np.finfo(np.float32).max)  # constants are float32, like the drift's inputs

VARIABLES = ("r", "A", "p")  # ratio, advantage, training progress in [0, 1]


# name -> (number of arguments, jnp function, its source for `jax_source`). relu is jax.nn.relu,
# whose derivative at 0 is 0 (jnp.maximum's is 1/2), as in the zoo's PPO and DPO drifts.
FUNCTIONS: dict[str, tuple[int, Callable, str]] = {
    "relu": (1, jax.nn.relu, "jax.nn.relu"), "abs": (1, jnp.abs, "jnp.abs"), "log": (1, jnp.log, "jnp.log"),
    "exp": (1, jnp.exp, "jnp.exp"), "tanh": (1, jnp.tanh, "jnp.tanh"), "sqrt": (1, jnp.sqrt, "jnp.sqrt"),
    "square": (1, jnp.square, "jnp.square"), "minimum": (2, jnp.minimum, "jnp.minimum"),
    "maximum": (2, jnp.maximum, "jnp.maximum"), "clip": (3, jnp.clip, "jnp.clip"),
}
_BINARY = {ast.Add: ("+", jnp.add), ast.Sub: ("-", jnp.subtract), ast.Mult: ("*", jnp.multiply),
           ast.Div: ("/", jnp.divide), ast.Pow: ("**", None)}
_UNARY = {ast.USub: "-", ast.UAdd: "+"}
_TOKEN = re.compile(r"(?P<space>[ \t]+)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
                    r"|(?P<number>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
                    r"|(?P<op>\*\*|[-+*/])|(?P<open>\()|(?P<close>\))|(?P<comma>,)")
_NODE_NAMES = {ast.Attribute: "attribute access", ast.Subscript: "subscripts", ast.Lambda: "lambdas",
               ast.ListComp: "comprehensions", ast.GeneratorExp: "comprehensions", ast.Compare: "comparisons",
               ast.BoolOp: "boolean operators", ast.IfExp: "conditional expressions"}
ALLOWED = (f"allowed: numbers, the variables {', '.join(VARIABLES)}, + - * / ** (exponent a number with "
           f"|value| <= {MAX_EXPONENT}), parentheses and the functions {', '.join(FUNCTIONS)}")


def _fail(message: str) -> ConfigError:
    return ConfigError(f"expression: {message}; {ALLOWED}")


def scan(text: str) -> None:
    """Pass 1, before ast.parse: length, characters, names, bracket depth, operator runs."""
    if not isinstance(text, str):
        raise ConfigError(f"expression must be a string, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ConfigError(f"expression has {len(text)} characters; at most {MAX_LENGTH} are allowed")
    if not text.strip():
        raise ConfigError("expression is empty; give a formula over r, A and p, e.g. (r - 1)**2")
    depth, run, pos = 0, 0, 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _fail(f"character {text[pos]!r} at position {pos} is not allowed")
        kind, token = match.lastgroup, match.group()
        pos = match.end()
        if kind == "space":
            continue
        if kind == "name" and token not in VARIABLES and token not in FUNCTIONS:
            raise _fail(f"name {token!r} is not allowed")
        depth += {"open": 1, "close": -1}.get(kind, 0)
        if depth > MAX_DEPTH:
            raise ConfigError(f"expression nests brackets deeper than {MAX_DEPTH} levels at position {pos - 1}")
        if depth < 0:
            raise ConfigError(f"expression has an unmatched ')' at position {pos - 1}")
        run = run + 1 if kind == "op" else 0
        if run > MAX_OPERATOR_RUN:
            raise ConfigError(f"expression has more than {MAX_OPERATOR_RUN} operators in a row at position "
                              f"{pos - 1}")


def parse(text: str) -> ast.Expression:
    """Passes 1 and 2: the checked syntax tree of `text` (ConfigError, one line, if not allowed)."""
    scan(text)
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        reason = getattr(err, "msg", None) or type(err).__name__
        raise ConfigError(f"expression {text[:60]!r} is not a valid formula ({reason})") from None
    _check_tree(tree, text)
    return tree


def _source(text: str, node: ast.AST) -> str:
    """The text of `node`, shortened for a message (not `ast.unparse`, which recurses and
    overflows the stack on a long chain before the depth limit is reached)."""
    segment = ast.get_source_segment(text, node) or type(node).__name__
    return segment if len(segment) <= 40 else segment[:37] + "..."


def _check_tree(tree: ast.Expression, text: str) -> None:
    """The whitelist walk (iterative, so a deep tree cannot exhaust the stack)."""
    stack, count = [(tree.body, 1)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ConfigError(f"expression has more than {MAX_NODES} nodes; simplify it")
        if depth > MAX_AST_DEPTH:
            raise ConfigError(f"expression nests deeper than {MAX_AST_DEPTH} operations; add fewer terms in a chain")
        children = _check_node(node, text)
        stack.extend((child, depth + 1) for child in children)


def _check_node(node: ast.AST, text: str) -> list[ast.AST]:
    """The children of an allowed node; ConfigError for any other."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(f"constant {_source(text, node)} is not allowed")
        try:
            finite = math.isfinite(float(value)) and abs(float(value)) <= FLOAT32_MAX
        except OverflowError:  # an integer literal beyond float range
            finite = False
        if not finite:
            raise ConfigError(f"expression: constant {_source(text, node)} is not finite in float32 "
                              f"(|x| <= {FLOAT32_MAX:.4g})")
        return []
    if isinstance(node, ast.Name):
        if node.id not in VARIABLES:
            raise _fail(f"name {node.id!r} is not a variable" +
                        (" (a function must be called)" if node.id in FUNCTIONS else ""))
        return []
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return [node.operand]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        if isinstance(node.op, ast.Pow):
            exponent = literal_number(node.right)
            if exponent is None:
                raise _fail("the exponent of ** must be a number")
            if abs(exponent) > MAX_EXPONENT:
                raise _fail(f"exponent {exponent:.10g} is too large")
            return [node.left]
        return [node.left, node.right]
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS:
            raise _fail(f"call of {_source(text, node.func)!r} is not allowed")
        arity = FUNCTIONS[name][0]
        if node.keywords or len(node.args) != arity or any(isinstance(a, ast.Starred) for a in node.args):
            raise _fail(f"{name} takes {arity} positional argument{'s' if arity > 1 else ''}")
        return list(node.args)
    what = _NODE_NAMES.get(type(node), type(node).__name__)
    raise _fail(f"{what} ({_source(text, node)!r}) is not allowed")


def literal_number(node: ast.AST) -> float | None:
    """The value of a numeric literal, optionally signed (`2`, `-0.5`); None for anything else."""
    sign = 1.0
    while isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return sign * float(node.value)
    return None


def _build(node: ast.AST, text: str) -> tuple[Callable, bool]:
    """Pass 3: the checked node as a closure `f(env) -> jnp value` (env: {"r", "A", "p"}),
    and whether it is constant (no variable in it). A constant part is computed now."""
    fn, constant = _closure(node, text)
    if not constant or isinstance(node, ast.Constant):
        return fn, constant
    with jax.ensure_compile_time_eval():  # computed now, even if the formula is first built under jit
        value = np.asarray(fn({}), np.float32)
    if not np.isfinite(value):
        raise ConfigError(f"expression: the constant part {_source(text, node)!r} is {value} in float32, "
                          "not a finite number")
    return (lambda env: value), True


def _closure(node: ast.AST, text: str) -> tuple[Callable, bool]:
    if isinstance(node, ast.Constant):
        value = np.float32(node.value)
        return (lambda env: value), True
    if isinstance(node, ast.Name):
        name = node.id
        return (lambda env: env[name]), False
    if isinstance(node, ast.UnaryOp):
        operand, constant = _build(node.operand, text)
        if isinstance(node.op, ast.USub):
            return (lambda env: -operand(env)), constant
        return operand, constant
    if isinstance(node, ast.BinOp):
        left, left_constant = _build(node.left, text)
        if isinstance(node.op, ast.Pow):
            exponent = literal_number(node.right)
            power = int(exponent) if exponent.is_integer() else exponent  # integer powers of negatives are fine
            return (lambda env: jnp.asarray(left(env)) ** power), left_constant
        (right, right_constant), op = _build(node.right, text), _BINARY[type(node.op)][1]
        return (lambda env: op(left(env), right(env))), left_constant and right_constant
    _, fn, _ = FUNCTIONS[node.func.id]
    built = [_build(a, text) for a in node.args]
    args = [a for a, _ in built]
    return (lambda env: fn(*(a(env) for a in args))), all(c for _, c in built)


@functools.lru_cache(maxsize=256)
def compile_expression(text: str) -> Callable:
    """`f(r, A, p=0.0)`: the formula `text` evaluated with jnp (broadcast to the shape of r and A).

    ConfigError (one line) if `text` is not in the grammar."""
    body, _ = _build(parse(text).body, text)

    def formula(r, A, p=0.0):
        r, A = jnp.asarray(r), jnp.asarray(A)
        out = jnp.asarray(body({"r": r, "A": A, "p": p}))
        shape = jnp.broadcast_shapes(jnp.shape(r), jnp.shape(A), jnp.shape(out))
        dtype = jnp.result_type(r, A, out)
        return jnp.broadcast_to(out.astype(dtype), shape)

    return formula


def operation_count(text: str) -> int:
    """The size of a formula: its operations (unary and binary operators, function calls)."""
    return sum(isinstance(n, (ast.UnaryOp, ast.BinOp, ast.Call)) for n in ast.walk(parse(text)))


def jax_source(text: str, name: str = "drift") -> str:
    """The formula as the source of a standalone JAX function `name(r, A, p=0.0)`."""
    body = _to_jax(parse(text).body)
    return (f"import jax\nimport jax.numpy as jnp\n\n\ndef {name}(r, A, p=0.0):\n"
            f"    return {body}\n")


def _to_jax(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        return f"{FUNCTIONS[node.func.id][2]}({', '.join(_to_jax(a) for a in node.args)})"
    if isinstance(node, ast.BinOp):
        return f"({_to_jax(node.left)} {_BINARY[type(node.op)][0]} {_to_jax(node.right)})"
    if isinstance(node, ast.UnaryOp):
        return f"({_UNARY[type(node.op)]}{_to_jax(node.operand)})"
    return ast.unparse(node)


__all__ = ["compile_expression", "operation_count", "jax_source", "parse", "VARIABLES", "FUNCTIONS"]
