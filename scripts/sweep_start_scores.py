"""Did a sweep beat the drift it started from? Score the start on each checkpoint's own seeds.

At each checkpoint a sweep scores its search mean on validation seeds (training envs) and
held-out seeds that are new at every checkpoint. This script scores the start drift (the
family's `init`, e.g. exactly PPO or DPO for `atoms`) with those very keys, so the two are
paired: same seeds, same drawn learning rates. It prints, per checkpoint, the mean's score,
the start's, and their difference; and writes them as JSON lines.

    python scripts/sweep_start_scores.py RUN_DIR [--held-out-at 100 ...] [--out FILE]

Validation at every checkpoint (cheap); held out only at the generations named (MinAtar
runs are the expensive part).
"""

from __future__ import annotations

import argparse
import json

from inner_loop.cpu import configure_cpu

configure_cpu()  # first, as the discover command does: a CPU device per core, as the sweep had

import numpy as np  # noqa: E402

from discover.sweep.config import SweepConfig  # noqa: E402
from discover.sweep.machinery import build_machinery, checkpoint_key, normalisation, sweep_keys  # noqa: E402
from discover.sweep.run_folder import RunFolder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--held-out-at", type=int, nargs="*", default=[], help="generations to score held out at")
    parser.add_argument("--out", help="write the rows as JSON lines here")
    args = parser.parse_args()
    folder = RunFolder(args.run_dir)
    config = SweepConfig.from_dict(folder.read_config("run folder")["sweep"])
    references, test_references = folder.read_references("run folder")
    machinery = build_machinery(config, normalisation(references), normalisation(test_references))
    start = machinery.drift.init(sweep_keys(config.seed).init)
    keys = sweep_keys(config.seed)
    rows = []
    for row in folder.read_metrics():
        generation = row["generation"]
        if "mean_drift_fitness" not in row:
            continue
        fitness, _ = machinery.mean_fitness(checkpoint_key(keys.validation, generation), start)
        out = {"generation": generation, "validation_mean": row["mean_drift_fitness"],
               "validation_start": float(fitness[0])}
        out["validation_difference"] = out["validation_mean"] - out["validation_start"]
        if generation in args.held_out_at and machinery.test_fitness is not None:
            test, _ = machinery.test_fitness(checkpoint_key(keys.held_out, generation), start)
            out.update(held_out_mean=row["test_fitness"], held_out_start=float(test[0]),
                       held_out_difference=row["test_fitness"] - float(test[0]))
        rows.append(out)
        print("  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in out.items()), flush=True)
    differences = np.array([r["validation_difference"] for r in rows])
    print(f"validation, mean minus start over {len(rows)} checkpoints: {differences.mean():+.3f} "
          f"(sd {differences.std(ddof=1) if len(rows) > 1 else float('nan'):.3f})")
    if args.out:
        with open(args.out, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()
