"""Declarative settings: each config field's check beside its definition, and one way to apply
`key=value` pairs (from `--set`) or typed values (from TOML) to any frozen config dataclass.

A field declared as `name: int = setting(16, positive_int)` carries its check in the field's
metadata; `check_fields(config)` runs every field's check in definition order, and a config's
`validate` adds only the checks that join several fields. Every problem is a one-line
ConfigError naming the key and the value and saying what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from inner_loop.errors import ConfigError

Check = Callable[[str, Any], None]  # check(key, value): ConfigError (one line) if value is not allowed
MAX_SEED = 2**32 - 1  # numpy generators take no negative seeds; PRNGKey none beyond int64
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_KINDS = {"int": int, "float": float, "bool": bool, "str": str, "int | None": int, "tuple[str, ...]": tuple}


def setting(default: Any = dataclasses.MISSING, check: Check | None = None, *, key: str | None = None,
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with its `check`; `key` is its `--set` name where that is not the field's."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"check": check, "key": key})


# Checks: small functions of one signature ----------------------------------------------------

def _refuse(key: str, value: Any, allowed: str):
    raise ConfigError(f"{key}={value!r} is not allowed; {allowed}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(key: str, value: Any) -> None:
    if not _is_int(value) or value < 1:
        _refuse(key, value, "it must be a positive integer")


def count(key: str, value: Any) -> None:
    """An integer >= 0."""
    if not _is_int(value) or value < 0:
        _refuse(key, value, "it must be an integer >= 0")


def int_at_least(low: int) -> Check:
    def check(key: str, value: Any) -> None:
        if not _is_int(value) or value < low:
            _refuse(key, value, f"it must be an integer >= {low}")
    return check


def finite(key: str, value: Any) -> None:
    """A finite number (inf is nonsense as a setting, and not JSON)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _refuse(key, value, "it must be a finite number")


def positive(key: str, value: Any) -> None:
    finite(key, value)
    if not value > 0:
        _refuse(key, value, "it must be > 0")


def non_negative(key: str, value: Any) -> None:
    finite(key, value)
    if not value >= 0:
        _refuse(key, value, "it must be >= 0")


def interval(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Check:
    """A finite number in [low, high], either end open."""
    text = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def check(key: str, value: Any) -> None:
        finite(key, value)
        if value < low or value > high or (low_open and value == low) or (high_open and value == high):
            _refuse(key, value, f"it must be in {text}")
    return check


def one_of(*choices: str) -> Check:
    def check(key: str, value: Any) -> None:
        if value not in choices:
            _refuse(key, value, f"choose one of {', '.join(choices)}")
    return check


def check_seed(value: Any, name: str = "seed") -> int:
    """`value` if it is an integer seed in [0, MAX_SEED], else ConfigError (one line)."""
    if not _is_int(value) or not 0 <= value <= MAX_SEED:
        _refuse(name, value, f"a seed is an integer in [0, {MAX_SEED}]")
    return value


def seed_value(key: str, value: Any) -> None:
    check_seed(value, key)


def check_fields(config: Any, prefix: str = "") -> None:
    """Run each field's check on `config` (a dataclass), in definition order; `prefix` is the
    keys' prefix where `config` is a part of another (`strategy.`)."""
    for f in dataclasses.fields(config):
        if f.metadata.get("check") is not None:
            f.metadata["check"](prefix + setting_key(f), getattr(config, f.name))


# Values: `--set` text or TOML values, typed by the field they set ------------------------------

def setting_key(f: dataclasses.Field) -> str:
    return f.metadata.get("key") or f.name


def field_kind(f: dataclasses.Field) -> Any:
    """The type a field's values are parsed as (the string annotations of `from __future__
    import annotations` resolved for the simple types settings use)."""
    return _KINDS.get(f.type, f.type) if isinstance(f.type, str) else f.type


def field_types(cls) -> dict[str, type]:
    """A dataclass's field names and the types their values are parsed as."""
    return {f.name: field_kind(f) for f in dataclasses.fields(cls)}


def parse_value(key: str, text: str, kind: type) -> Any:
    """`text` as a value of type `kind` (int accepts integral floats such as 1e6; a tuple is
    comma-separated)."""
    try:
        if kind is bool:
            low = text.strip().lower()
            if low in _TRUE or low in _FALSE:
                return low in _TRUE
            raise ValueError
        if kind is int:
            number = float(text)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if kind is float:
            return float(text)
        if kind is tuple:
            return tuple(part.strip() for part in text.split(",") if part.strip())
        return str(text)
    except (ValueError, OverflowError):
        raise ConfigError(f"{key}={text!r} is not a valid {kind.__name__}") from None


def typed(key: str, value: Any, kind: type) -> Any:
    """A TOML value checked against `kind`, or a `--set` string parsed as `kind`."""
    if isinstance(value, str) and kind is not str:
        return parse_value(key, value, kind)
    if kind is tuple and isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    if kind is float and _is_int(value):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{key}={value!r} is not a valid {kind.__name__}")
    return value


def split_pairs(pairs: list[str]) -> list[tuple[str, str]]:
    """`--set` strings as (key, text) pairs."""
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r} is not of the form key=value")
        out.append((key.strip(), value.strip()))
    return out


def settable_fields(cls) -> dict[str, dataclasses.Field]:
    """The fields a pair can set, by their `--set` key: those of a simple type."""
    return {setting_key(f): f for f in dataclasses.fields(cls) if field_kind(f) in (int, float, bool, str, tuple)}


def apply_settings(config: Any, pairs: list[tuple[str, Any]], *, prefix: str = "",
                   fixed: dict[str, str] | None = None, also_allowed: tuple[str, ...] = ()) -> Any:
    """`config` with the (key, value) pairs set (keys with `prefix` where `config` is a part of
    another); `fixed` maps keys the caller sets itself to why. Unknown keys get one line listing
    the allowed ones (and `also_allowed`, which the caller handles before this)."""
    fixed = fixed or {}
    by_key = {prefix + key: f for key, f in settable_fields(type(config)).items()}
    changes: dict[str, Any] = {}
    for key, value in pairs:
        if key in fixed:
            raise ConfigError(f"setting {key!r} is fixed by {fixed[key]} and cannot be set")
        if key not in by_key:
            allowed = [k for k in by_key if k not in fixed] + list(also_allowed)
            raise ConfigError(f"unknown setting {key!r}; allowed: {', '.join(allowed)}")
        changes[by_key[key].name] = typed(key, value, field_kind(by_key[key]))
    return dataclasses.replace(config, **changes)
