"""Figures: drift landscapes over (log r, A), and a comparison's learning curves and final returns."""

from __future__ import annotations

import io
import os
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

from discover.report import stats

matplotlib.use("Agg")  # files only, never a display
import matplotlib.pyplot as plt  # noqa: E402

from discover.files.atomic import write_bytes_atomic
from discover.training.comparison import Entry
from inner_loop import drifts

DriftFn = Callable[..., jax.Array]  # drift_fn(ratio, advantage, progress) -> per-sample drift


def drift_grid(drift_fn: DriftFn, log_ratio_range=(-1.0, 1.0), advantage_range=(-3.0, 3.0),
               progress: float = 0.0, size: int = 121):
    """(log r values, A values, drift values (A, log r)) on a regular grid."""
    log_r = jnp.linspace(*log_ratio_range, size)
    adv = jnp.linspace(*advantage_range, size)
    lr, a = jnp.meshgrid(log_r, adv)
    values = jax.jit(lambda r, a: drift_fn(r, a, progress))(jnp.exp(lr), a)
    return np.asarray(log_r), np.asarray(adv), np.asarray(values)


_REFERENCE_TITLES = {"ppo": "PPO (eps 0.2)", "dpo": "DPO"}


def reference_panels(*names: str) -> list[tuple[str, DriftFn]]:
    """Heat-map panels of zoo drifts (ppo, dpo) at their default options, to set beside a learned one."""
    return [(_REFERENCE_TITLES[name], (lambda d: lambda r, a, p: d({}, r, a, p))(drifts.get(name)))
            for name in names]


def drift_landscapes_png(panels: Sequence[tuple[str, DriftFn]], path: str | None = None,
                         progress: float = 0.0, suptitle: str | None = None) -> bytes:
    """Side-by-side heat maps of each (title, drift_fn) over (log r, A); PNG bytes (and file).

    All panels share one colour scale, so their magnitudes can be compared.
    """
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


def draw_figures(folder: str, runs: dict, entries: list[Entry], envs: list[str], points: list, configs: dict,
                 results: dict, seed: int) -> dict:
    """The comparison's PNGs in `folder`: learning curves and final returns (a row per grid point),
    robustness over the grid, drift landscapes; {title: file name}."""
    figures = {}
    names = [p.name for p in points]
    fig, axes = plt.subplots(len(names), len(envs), figsize=(5 * len(envs), 3.6 * len(names)), squeeze=False)
    for row, point in zip(axes, names):
        for ax, env in zip(row, envs):
            config = configs[(env, point)]
            steps = np.arange(1, config.num_updates + 1) * config.batch_size
            for entry in entries:
                mean, lo, hi = stats.curve_band(runs[(entry.label, env, point)]["curve"], seed=seed)
                ax.plot(steps, mean, label=entry.label)
                ax.fill_between(steps, lo, hi, alpha=0.25)
            ax.set_title(env if len(names) == 1 else f"{env}, {point}")
            ax.set_xlabel("env steps")
            ax.set_ylabel("episodic return")
    axes[0][0].legend(fontsize=8)
    _save(fig, folder, "curves.png")
    figures["Learning curves (mean, 95 % bootstrap band)"] = "curves.png"

    fig, axes = plt.subplots(len(names), len(envs), figsize=(5 * len(envs), 3.6 * len(names)), squeeze=False)
    for row, point in zip(axes, names):
        for ax, env in zip(row, envs):
            for i, entry in enumerate(entries):
                final = np.asarray(runs[(entry.label, env, point)]["final_return"], np.float64)
                ok = final[np.isfinite(final)]
                if ok.size:  # no bar for a drift whose every seed failed: a bar at 0 would read as measured
                    ax.bar(i, np.mean(ok), color=f"C{i}", alpha=0.5)
                ax.scatter(np.full(ok.size, i), ok, color=f"C{i}", s=10)
            ax.set_xticks(range(len(entries)), [e.label for e in entries], rotation=20, fontsize=8)
            ax.set_title(env if len(names) == 1 else f"{env}, {point}")
            ax.set_ylabel("final return")
    _save(fig, folder, "final_returns.png")
    figures["Final returns of finished runs (bars: mean; dots: seeds)"] = "final_returns.png"

    if len(points) > 1:
        robustness_figure(folder, results, [e.label for e in entries], envs, points)
        figures["Robustness over the grid: IQM per grid point with its 95 % CI (normalised score, 1 = PPO's mean "
                "over the grid; the return where the env cannot normalise)"] = "robustness.png"

    panels = [(e.label, (lambda d, p: (lambda r, a, pr: d(p, r, a, pr)))(e.drift, e.params)) for e in entries]
    drift_landscapes_png(panels, os.path.join(folder, "landscapes.png"))
    figures["Drift landscapes over (log r, A), progress 0"] = "landscapes.png"
    return figures


def robustness_figure(folder: str, results: dict, labels: list[str], envs: list[str], points: list) -> None:
    """Per env: each label's IQM normalised score (the IQM return where the env cannot normalise)
    against the grid point, with its CI band. One grid field: its values on the x axis (log scale
    if positive and spanning 10x); several: the points."""
    normalised = results.get("normalised_iqm", {})
    one_field = len(points[0].values) == 1
    x = np.array([p.values[0] for p in points], np.float64) if one_field else np.arange(len(points))
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.6), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for i, label in enumerate(labels):
            cells = [normalised[env][p.name][label] if env in normalised else
                     {"value": results["returns"][env][p.name][label]["iqm"],
                      "ci": results["returns"][env][p.name][label]["iqm_ci"]} for p in points]
            value = np.array([np.nan if c["value"] is None else c["value"] for c in cells])
            lo = np.array([np.nan if c["ci"][0] is None else c["ci"][0] for c in cells])
            hi = np.array([np.nan if c["ci"][1] is None else c["ci"][1] for c in cells])
            ax.plot(x, value, marker="o", color=f"C{i}", label=label)
            ax.fill_between(x, lo, hi, color=f"C{i}", alpha=0.2)
        if env in normalised:
            ax.axhline(1.0, color="grey", lw=0.6, ls="--")
        if one_field and np.all(x > 0) and x.max() >= 10 * x.min():
            ax.set_xscale("log")
        if one_field:
            ax.set_xlabel(points[0].name.split("=")[0])
        else:
            ax.set_xticks(x, [p.name for p in points], rotation=30, fontsize=7)
        ax.set_title(env)
        ax.set_ylabel("normalised score (IQM)" if env in normalised else "final return (IQM)")
    axes[0][0].legend(fontsize=8)
    _save(fig, folder, "robustness.png")


def _save(fig, folder: str, name: str) -> None:
    fig.tight_layout()
    fig.savefig(os.path.join(folder, name), dpi=90)
    plt.close(fig)
