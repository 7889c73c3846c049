"""Terminal tables: the learning curve and the summary of a multi-seed run."""

from __future__ import annotations

import warnings

import numpy as np
from rich.table import Table

_BAR_WIDTH = 30


def curve_table(curve: np.ndarray, steps_per_update: int, rows: int = 10) -> Table:
    """Mean episodic return over seeds at ~`rows` points of training, with a bar."""
    num_updates = curve.shape[1]
    points = sorted({min(num_updates - 1, round(i * (num_updates - 1) / (rows - 1))) for i in range(rows)})
    # An update with no finished episode in any seed is all NaN and shown as "-". nanmean warns
    # about it through `warnings` (np.errstate does not reach that), so silence it here only.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(curve, axis=0) if np.isfinite(curve).any() else np.full(num_updates, np.nan)
    finite = mean[np.isfinite(mean)]
    top = float(np.max(np.abs(finite))) if finite.size else 1.0
    table = Table(title="learning curve (mean episodic return over seeds)")
    table.add_column("env steps", justify="right")
    table.add_column("return", justify="right")
    table.add_column("", justify="left")
    for u in points:
        value = mean[u]
        bar = "" if not np.isfinite(value) or top == 0 else "█" * int(round(_BAR_WIDTH * abs(value) / top))
        table.add_row(f"{(u + 1) * steps_per_update:,}", "-" if not np.isfinite(value) else f"{value:.2f}", bar)
    return table


def summary_table(final_return: np.ndarray, compile_seconds: float, steps_per_second: float) -> Table:
    table = Table(title="final return (last 5% of training)", min_width=56)
    table.add_column("seed", justify="right")
    table.add_column("final return", justify="right")
    for i, value in enumerate(final_return):
        table.add_row(str(i), f"{value:.2f}")
    finite = final_return[np.isfinite(final_return)]
    if finite.size:
        stderr = finite.std(ddof=1) / np.sqrt(finite.size) if finite.size > 1 else float("nan")
        table.add_row("mean", f"{finite.mean():.2f} ± {stderr:.2f}", end_section=True)
        table.add_row("median", f"{np.median(finite):.2f}")
    table.caption = f"compile {compile_seconds:.1f} s · {steps_per_second:,.0f} env steps/s (excl. compile)"
    return table
