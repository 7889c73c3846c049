"""Reproduce the inner loop's returns: mean over seeds of final return.

    python scripts/returns.py                # CartPole-v1 (PPO, DPO, TRPO) and Breakout (PPO, DPO)
    python scripts/returns.py --only cartpole --seeds 8 --out results/returns.json

Targets: PPO on CartPole-v1 >= 475 within 5e5 steps; DPO and TRPO on CartPole-v1 >= 450;
PPO on Breakout-MinAtar within 1e7 steps >= 40; DPO on Breakout >= PPO's minus one
standard error. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from inner_loop.cpu import configure_cpu

configure_cpu()  # first: gymnax and evosax start jax when imported; a CPU device per core

import jax  # noqa: E402
import numpy as np  # noqa: E402

from discover.cli.train import resolve_train  # noqa: E402
from discover.files.atomic import write_json_atomic  # noqa: E402
from discover.training.seeds import train_seeds  # noqa: E402

RUNS = {
    "cartpole": [("CartPole-v1", "ppo"), ("CartPole-v1", "dpo"), ("CartPole-v1", "trpo")],
    "breakout": [("Breakout-MinAtar", "ppo"), ("Breakout-MinAtar", "dpo")],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=list(RUNS), action="append")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="root PRNG seed")
    parser.add_argument("--out", default="results/returns.json")
    args = parser.parse_args()

    rows = []
    for group in args.only or list(RUNS):
        for env_id, name in RUNS[group]:
            config, resolved = resolve_train(env_id, name, [])  # the preset; trpo = zero drift in a KL ball
            drift = resolved.drift
            t0 = time.time()
            drift_key, run_key = jax.random.split(jax.random.PRNGKey(args.seed))
            res = train_seeds(config, drift, drift.init(drift_key), args.seeds, run_key)
            final = res.final_return
            row = {"env": env_id, "algorithm": name, "seeds": args.seeds,
                   "total_timesteps": config.env_steps, "mean": float(np.mean(final)),
                   "stderr": float(np.std(final, ddof=1) / np.sqrt(len(final))),
                   "final_return": final.tolist(), "env_steps_per_second": res.env_steps_per_second,
                   "wall_seconds": time.time() - t0}
            rows.append(row)
            print(f"{env_id:18s} {name:5s} mean {row['mean']:8.2f} ± {row['stderr']:.2f} (stderr)  "
                  f"{res.env_steps_per_second:,.0f} steps/s  {row['wall_seconds']:.0f}s", flush=True)

    checks = _checks(rows)
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_json_atomic(args.out, {"runs": rows, "checks": [{"check": t, "pass": ok} for t, ok in checks]})
    sys.exit(0 if all(ok for _, ok in checks) else 1)


def _checks(rows):
    by = {(r["env"], r["algorithm"]): r for r in rows}
    checks = []
    if ("CartPole-v1", "ppo") in by:
        checks.append(("PPO CartPole-v1 >= 475", by["CartPole-v1", "ppo"]["mean"] >= 475))
    for algo in ("dpo", "trpo"):
        if ("CartPole-v1", algo) in by:
            checks.append((f"{algo.upper()} CartPole-v1 >= 450", by["CartPole-v1", algo]["mean"] >= 450))
    if ("Breakout-MinAtar", "ppo") in by:
        ppo = by["Breakout-MinAtar", "ppo"]
        checks.append(("PPO Breakout-MinAtar >= 40", ppo["mean"] >= 40))
        if ("Breakout-MinAtar", "dpo") in by:
            dpo = by["Breakout-MinAtar", "dpo"]
            checks.append(("DPO Breakout-MinAtar >= PPO - 1 stderr", dpo["mean"] >= ppo["mean"] - ppo["stderr"]))
    return checks


if __name__ == "__main__":
    main()
