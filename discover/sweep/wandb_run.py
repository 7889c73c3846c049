"""The wandb mirror of a sweep: login check, the run (offline by default), images and artifacts."""

from __future__ import annotations

import os

from discover.sweep.config import SweepConfig
from discover.sweep.run_folder import RunFolder
from inner_loop.errors import ConfigError

WANDB_MODES = ("online", "offline", "disabled")


def check_wandb_mode(mode: str) -> None:
    if mode not in WANDB_MODES:
        raise ConfigError(f"--wandb {mode!r} is not allowed; choose one of {', '.join(WANDB_MODES)}")


def require_wandb_login() -> None:
    """ConfigError (one line) unless wandb has credentials (WANDB_API_KEY, settings, .netrc)."""
    import wandb  # only when wandb is used: it is slow to import

    if not wandb.login(prompt=False, verify=False):
        raise ConfigError("--wandb online needs a wandb login (run `wandb login` or set WANDB_API_KEY); "
                          "or run with --wandb offline and `wandb sync` the run later")


def start_wandb(mode: str, folder: RunFolder, name: str, run_id: str, config: SweepConfig, resume: bool):
    """The wandb run of this sweep (None when disabled)."""
    if mode == "disabled":
        return None
    import wandb  # only when wandb is used: it is slow to import

    # Artifact staging would otherwise go under the home folder.
    os.environ.setdefault("WANDB_DATA_DIR", os.path.join(folder.wandb_dir, "data"))
    os.environ.setdefault("WANDB_CACHE_DIR", os.path.join(folder.wandb_dir, "cache"))
    return wandb.init(project=os.environ.get("WANDB_PROJECT", "drift-discovery"), name=name, id=run_id,
                      dir=folder.path, mode=mode, config=config.to_dict(), resume="allow" if resume else None,
                      settings=wandb.Settings(silent=True, console="off", save_code=False,
                                              x_disable_stats=True))


def log_checkpoint(wandb_run, name: str, generation: int, heatmap: str, mean_path: str, mean_fitness: float,
                   formula: str | None = None) -> None:
    """The checkpoint's heat map as an image, its mean drift file as an artifact, and the mean
    drift's formula (atoms drifts) in the run summary."""
    import wandb  # only when wandb is used: it is slow to import

    wandb_run.log({"drift_heatmap": wandb.Image(heatmap)}, step=generation, commit=False)
    artifact = wandb.Artifact(f"{name}-mean-drift".replace("/", "-"), type="drift",
                              metadata={"generation": generation, "mean_drift_fitness": mean_fitness,
                                        **({"formula": formula} if formula else {})})
    if formula:
        wandb_run.summary["mean_formula"] = formula
    artifact.add_file(mean_path)
    wandb_run.log_artifact(artifact)
