"""Numbers of a verdict as text and as JSON (which has no NaN or infinity)."""

from __future__ import annotations

import math


def json_number(x) -> float | None:
    """`x` as a JSON number, or None for a missing, NaN or infinite value."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def fmt(x: float | None) -> str:
    return "none" if x is None else f"{x:.3g}"


def fmt_point(at: dict) -> str:
    return f"r={at['ratio']:.6g}, A={at['advantage']:.3g}, progress={at['progress']:.3g}"
