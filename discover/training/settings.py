"""`--set key=value` settings: parsing values by the type of the field they set.

Values are parsed by the type of the field they set; every problem is a one-line
ConfigError naming the key or value and what is allowed.
"""

from __future__ import annotations

from typing import Any

from inner_loop.config import TrainConfig, field_types
from inner_loop.errors import ConfigError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def parse_value(key: str, text: str, kind: type) -> Any:
    """`text` as a value of type `kind` (int accepts integral floats such as 1e6)."""
    try:
        if kind is bool:
            low = text.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError
        if kind is int:
            number = float(text)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if kind is float:
            return float(text)
        return str(text)
    except (ValueError, OverflowError):
        raise ConfigError(f"{key}={text!r} is not a valid {kind.__name__}") from None


def split_pairs(pairs: list[str]) -> list[tuple[str, str]]:
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r} is not of the form key=value")
        out.append((key.strip(), value.strip()))
    return out


def apply_train_overrides(config: TrainConfig, pairs: list[str], fixed: tuple[str, ...] = ()) -> TrainConfig:
    """Apply `--set` pairs of config fields by name; `fixed` names fields the command sets itself.
    (Drift options, `drift.<option>`, are the drift resolver's.)"""
    config_types = field_types(TrainConfig)
    changes: dict[str, Any] = {}
    for key, text in split_pairs(pairs):
        if key in fixed:
            raise ConfigError(f"setting {key!r} is fixed by the command line (--env / --drift) and cannot be set")
        if key not in config_types:
            allowed = [k for k in config_types if k not in fixed] + ["drift.<option>"]
            raise ConfigError(f"unknown setting {key!r}; allowed: {', '.join(allowed)}")
        changes[key] = parse_value(key, text, config_types[key])
    return config.replace(**changes)
