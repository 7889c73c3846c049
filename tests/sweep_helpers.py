"""Shared pieces of the sweep tests: the tiny config, its command line, reading metrics."""

import json
import os

TINY = ["population_size=4", "seeds_per_member=2", "checkpoint_every=2", "mean_drift_seeds=2",
        "total_timesteps=512", "num_envs=4", "num_steps=32", "update_epochs=1", "num_minibatches=2",
        "final_window=0.5",  # 2 of the 4 updates: every seed finishes an episode there
        "test_envs="]  # quick's held-out Catch is not learnable in 512 steps (tests/test_sweep_envs.py)
FITNESS_KEYS = ("generation", "fitness_mean", "fitness_max", "fitness_min", "fitness_std", "fitness_noise",
                "fitness_snr", "env_steps", "mean_drift_fitness", "best_fitness_so_far", "nonfinite_returns")


def sweep_args(runs_dir, name, generations, extra=(), wandb="disabled"):
    settings = [f"generations={generations}", *TINY, *extra]
    return ["sweep", "--name", name, "--runs-dir", str(runs_dir), "--wandb", wandb,
            *[x for s in settings for x in ("--set", s)]]


def read_metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def numbers(rows):
    """The deterministic part of the metrics (not wall-clock seconds)."""
    return [{k: row[k] for k in FITNESS_KEYS if k in row} for row in rows]
