"""Figures: drift landscapes over (log r, A), drawn with matplotlib (Agg, no display)."""

from __future__ import annotations

import io
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from discover.files.atomic import write_bytes_atomic

DriftFn = Callable[..., jax.Array]  # drift_fn(ratio, advantage, progress) -> per-sample drift


def drift_grid(drift_fn: DriftFn, log_ratio_range=(-1.0, 1.0), advantage_range=(-3.0, 3.0),
               progress: float = 0.0, size: int = 121):
    """(log r values, A values, drift values (A, log r)) on a regular grid."""
    log_r = jnp.linspace(*log_ratio_range, size)
    adv = jnp.linspace(*advantage_range, size)
    lr, a = jnp.meshgrid(log_r, adv)
    values = jax.jit(lambda r, a: drift_fn(r, a, progress))(jnp.exp(lr), a)
    return np.asarray(log_r), np.asarray(adv), np.asarray(values)


def drift_landscapes_png(panels: Sequence[tuple[str, DriftFn]], path: str | None = None,
                         progress: float = 0.0, suptitle: str | None = None) -> bytes:
    """Side-by-side heat maps of each (title, drift_fn) over (log r, A); PNG bytes (and file).

    All panels share one colour scale, so their magnitudes can be compared.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grids = [(title, *drift_grid(fn, progress=progress)) for title, fn in panels]
    finite = [g[3][np.isfinite(g[3])] for g in grids]
    vmax = max([float(np.percentile(f, 99)) for f in finite if f.size] + [1e-6])
    fig, axes = plt.subplots(1, len(grids), figsize=(4.2 * len(grids), 3.6), squeeze=False, sharey=True)
    for ax, (title, log_r, adv, values) in zip(axes[0], grids):
        image = ax.pcolormesh(log_r, adv, values, shading="auto", cmap="viridis", vmin=0.0, vmax=vmax)
        ax.axvline(0.0, color="white", lw=0.6, ls="--")
        ax.set_title(title)
        ax.set_xlabel("log r")
    axes[0][0].set_ylabel("advantage A")
    fig.colorbar(image, ax=axes[0].tolist(), label="drift d(r, A)")
    if suptitle:
        fig.suptitle(suptitle)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = buffer.getvalue()
    if path is not None:
        write_bytes_atomic(path, data)
    return data
