"""The run folder of a sweep: every path and name in it, and its metrics log.

    config.json         the resolved sweep config (and each env's inner-loop config)
    references.json     PPO's and the untrained policy's return on each training env (`references`)
                        and held-out env (`test_references`): the fitness normalisers
    metrics.jsonl       one line per generation: fitness statistics and the search noise
                        (`fitness_noise`, `fitness_snr`), env steps, wall seconds,
                        and at checkpoints `mean_drift_fitness` and, with test_envs,
                        `test_fitness` and `test_fitness/<env>` -- the source of truth
    checkpoints/        gen_NNNNNN.npz: the sweep state, every K generations and on Ctrl-C
    drifts/             gen_NNNNNN_{mean,best}.drift.npz at each checkpoint (drift file format)
    heatmaps/           gen_NNNNNN.png: the mean drift over (log r, A) beside PPO's
    wandb/              the wandb run (offline by default; `wandb sync` uploads it)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re

from discover.files.atomic import ensure_writable_dir, write_json_atomic, write_text_atomic
from discover.sweep.config import SweepConfig
from inner_loop.errors import ConfigError

_CHECKPOINT = re.compile(r"^gen_(\d{6})\.npz$")
_DRIFT = re.compile(r"^gen_(\d{6})_(mean|best)\.drift\.npz$")
DRIFT_KINDS = ("mean", "best")


def _numbers(values) -> bool:
    """Whether `values` is a list of plain numbers (per-seed returns)."""
    return isinstance(values, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


class RunFolder:
    """One sweep's run folder (`<runs-dir>/<name>/`)."""

    def __init__(self, path: str):
        self.path = path.rstrip("/") or path

    def __repr__(self) -> str:
        return f"RunFolder({self.path!r})"

    # Paths -------------------------------------------------------------------------------

    def file(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    @property
    def config_path(self) -> str:
        return self.file("config.json")

    @property
    def references_path(self) -> str:
        return self.file("references.json")

    @property
    def metrics_path(self) -> str:
        return self.file("metrics.jsonl")

    @property
    def checkpoints_dir(self) -> str:
        return self.file("checkpoints")

    @property
    def wandb_dir(self) -> str:
        return self.file("wandb")

    def checkpoint_path(self, generation: int) -> str:
        return self.file("checkpoints", f"gen_{generation:06d}.npz")

    def drift_path(self, generation: int, which: str) -> str:
        return self.file("drifts", f"gen_{generation:06d}_{which}.drift.npz")

    def heatmap_path(self, generation: int) -> str:
        return self.file("heatmaps", f"gen_{generation:06d}.png")

    # Creating and reading ----------------------------------------------------------------

    @classmethod
    def create(cls, runs_dir: str, name: str) -> "RunFolder":
        """A new run folder `runs_dir/name`; ConfigError if one holds a sweep already."""
        folder = cls(os.path.join(runs_dir, name))
        if os.path.exists(folder.config_path):
            raise ConfigError(f"run folder {folder.path!r} already holds a sweep; pick another --name or "
                              f"continue it with --resume {folder.path}")
        ensure_writable_dir(folder.path, "run folder")
        return folder

    def read_config(self, label: str = "--resume") -> dict:
        """The saved `config.json`; ConfigError (naming `label`, the argument the user gave the
        folder with) if this is not a complete sweep run folder."""
        if not os.path.isdir(self.path):
            raise ConfigError(f"{label} {self.path!r}: no such folder")
        try:
            with open(self.config_path) as f:
                saved = json.load(f)
            SweepConfig.from_dict(saved["sweep"])
            if not isinstance(saved["name"], str) or not isinstance(saved["wandb_run_id"], str):
                raise TypeError
        except FileNotFoundError:
            raise ConfigError(f"{label} {self.path!r} is not a sweep run folder (no config.json)") from None
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as err:
            raise ConfigError(f"{label} {self.path!r}: config.json is corrupt ({type(err).__name__})") from None
        except OSError as err:
            raise ConfigError(f"{label} {self.path!r}: cannot read config.json ({err.strerror})") from None
        self.read_references(label)  # written before config.json, so present unless damaged
        return saved

    def write_config(self, saved: dict) -> None:
        write_json_atomic(self.config_path, saved)

    def read_references(self, label: str = "--resume") -> tuple[list[dict], list[dict]]:
        """(training envs' references, held-out envs' references) from references.json."""
        try:
            with open(self.references_path) as f:
                stored = json.load(f)
            references, test_references = stored["references"], stored.get("test_references", [])
            if not all(isinstance(r["ppo_reference_return"], (int, float))
                       and isinstance(r.get("untrained_return", 0.0), (int, float))
                       and all(_numbers(r.get(k, [])) for k in ("final_returns", "untrained_returns"))
                       for r in references + test_references):
                raise TypeError
        except FileNotFoundError:
            raise ConfigError(f"{label} {self.path!r}: references.json is missing, so fitness cannot be "
                              "computed as before; start a new sweep") from None
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise ConfigError(f"{label} {self.path!r}: references.json is corrupt ({type(err).__name__})") from None
        return references, test_references

    def write_references(self, references: list[dict], test_references: list[dict]) -> None:
        write_json_atomic(self.references_path, {"references": references, "test_references": test_references})

    def remove_unstarted(self) -> None:
        """Remove what a new sweep that failed before writing config.json left (references.json
        and the folder, if then empty; never anything else), so its --name can be used again."""
        if os.path.exists(self.config_path):
            return
        with contextlib.suppress(OSError):
            os.remove(self.references_path)
        with contextlib.suppress(OSError):
            os.rmdir(self.path)

    # metrics.jsonl -----------------------------------------------------------------------

    def read_metrics(self) -> list[dict]:
        """Every row of metrics.jsonl up to the first line a crash cut (it and all after are
        redone on resume, so every reader stops there); [] if there is none."""
        rows = []
        with open(self.metrics_path, errors="replace") as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break
        return rows

    def append_metrics(self, row: dict) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def truncate_metrics(self, generation: int) -> list[dict]:
        """Keep the rows of generations <= `generation` (drop what came after a checkpoint)."""
        rows = self.read_metrics() if os.path.exists(self.metrics_path) else []
        kept = [row for row in rows if row.get("generation", 0) <= generation]
        write_text_atomic(self.metrics_path, "".join(json.dumps(row) + "\n" for row in kept))
        return kept

    # Checkpoints and drift files ---------------------------------------------------------

    def checkpoints(self) -> list[tuple[int, str]]:
        """[(generation, path)] of the checkpoints, oldest first."""
        folder = self.checkpoints_dir
        names = os.listdir(folder) if os.path.isdir(folder) else []
        return sorted((int(m.group(1)), os.path.join(folder, n)) for n in names if (m := _CHECKPOINT.match(n)))

    def latest_generation(self) -> int:
        """The generation of the newest checkpoint's name (0 if none yet)."""
        found = self.checkpoints()
        return found[-1][0] if found else 0

    def check_generations(self, generations: int, done: int) -> None:
        """ConfigError (one line) unless a sweep of `generations` reaches the `done` this folder has."""
        if done > generations:
            raise ConfigError(f"generations={generations} is less than the {done} generations "
                              f"{self.path!r} has done; set generations >= {done}")

    def best_validated_generation(self, files: dict[int, str]) -> int:
        """Of the checkpoints in `files`, the one whose mean drift has the highest validation
        score (`mean_drift_fitness` in metrics.jsonl); the newest if none has one. No fallback
        when metrics.jsonl cannot be read: "best" would then name a drift nobody ranked."""
        try:
            rows = self.read_metrics()
        except FileNotFoundError:
            raise ConfigError(f"run folder {self.path!r} has no metrics.jsonl, so the best generation is unknown; "
                              f"give --generation last or a number") from None
        except OSError as err:
            raise ConfigError(f"cannot read {self.metrics_path!r}: {err.strerror}; give --generation last or a "
                              "number") from None
        scores = {}
        for row in rows:
            if not isinstance(row, dict):
                continue
            generation, fitness = row.get("generation"), row.get("mean_drift_fitness")
            if isinstance(generation, int) and generation in files and isinstance(fitness, (int, float)) \
                    and math.isfinite(fitness):  # a NaN fitness (failed evaluation) ranks nowhere
                scores[generation] = fitness
        return max(scores, key=lambda g: (scores[g], g)) if scores else max(files)

    def drift_files(self, which: str) -> dict[int, str]:
        """{generation: drift file} of `which` (mean or best)."""
        folder = self.file("drifts")
        found = {}
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            m = _DRIFT.match(name)
            if m and m.group(2) == which:
                found[int(m.group(1))] = os.path.join(folder, name)
        return found
