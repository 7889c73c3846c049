"""`--grid FIELD=V1,V2,...`: numeric inner-loop settings a comparison runs at every value of;
several `--grid` make a product. Every problem is a one-line ConfigError naming the value."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from inner_loop.config import TrainConfig
from inner_loop.errors import ConfigError
from inner_loop.settings import field_types, parse_value

AS_SET = "as set"  # the one point of a comparison without a grid: the settings as given


@dataclass(frozen=True)
class GridPoint:
    """One combination of grid values."""

    name: str  # "lr=0.001" (repr of each value; several fields: "lr=0.001, ent_coef=0.01"); AS_SET without a grid
    settings: tuple[str, ...]  # its `field=value` pairs, applied after --set
    values: tuple[float, ...]  # its values, in the order of the grid's fields


def numeric_fields() -> list[str]:
    """The inner-loop fields a grid may vary: the int and float ones."""
    return [name for name, kind in field_types(TrainConfig).items() if kind in (int, float)]


def set_field(pair: str) -> str | None:
    """The config field a --set pair sets (`lr`, `inner.lr` and `inner.<env>.lr` all set lr);
    None for a pair without `=` (refused later with its own message)."""
    key, sep, _ = pair.partition("=")
    return key.strip().rsplit(".", 1)[-1] if sep else None


def parse_grid(specs: list[str], settings: list[str]) -> list[GridPoint]:
    """The grid's points in product order (the last field varies fastest); one AS_SET point
    without `specs`. A field also given by --set, or twice, is refused."""
    if not specs:
        return [GridPoint(AS_SET, (), ())]
    allowed, set_fields, axes = numeric_fields(), {set_field(p) for p in settings}, {}
    for spec in specs:
        field, sep, text = (part.strip() for part in spec.partition("="))
        if not sep or not field:
            raise ConfigError(f"--grid {spec!r} is not of the form field=v1,v2,...")
        if field not in allowed:
            raise ConfigError(f"--grid field {field!r} is not a numeric inner-loop setting; allowed: "
                              f"{', '.join(allowed)}")
        if field in axes:
            raise ConfigError(f"--grid {field} is given twice; give each field once with all its values")
        if field in set_fields:
            raise ConfigError(f"{field} is given by both --grid and --set; give it in one of them")
        texts = [t.strip() for t in text.split(",")]
        if not text or any(not t for t in texts):
            raise ConfigError(f"--grid {spec!r} has an empty value; give comma-separated numbers ({field}=v1,v2)")
        values = [parse_value(f"--grid {field}", t, field_types(TrainConfig)[field]) for t in texts]
        if len(set(values)) < len(values):
            raise ConfigError(f"--grid {spec!r} repeats a value; give each value once")
        axes[field] = values
    return [GridPoint(", ".join(f"{f}={v!r}" for f, v in zip(axes, combo)),  # repr: distinct values, distinct names
                      tuple(f"{f}={v!r}" for f, v in zip(axes, combo)), tuple(combo))
            for combo in itertools.product(*axes.values())]
