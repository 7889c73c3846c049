"""The reach table: how closely the `lpo` family fits DPO (from start "ppo") and PPO (from
start "none") on the (r, A) samples of real PPO runs, by gradient descent.

    python scripts/reach.py                       # CartPole-v1 at lr 1e-2 and Acrobot-v1 at lr 3e-3
    python scripts/reach.py --steps 5000 --out results/reach.json

Relative error = ||d_fit - d_target|| / ||d_target|| over the samples (target < 5 %, docs/design.md section 3).
"""

from __future__ import annotations

import argparse
import sys
import time

from inner_loop.cpu import configure_cpu

configure_cpu()  # first: gymnax and evosax start jax when imported; a CPU device per core

import jax  # noqa: E402

from discover.files.atomic import write_json_atomic  # noqa: E402
from discover.training.reach import collect_samples, fit_family  # noqa: E402
from inner_loop import drifts  # noqa: E402
from inner_loop.config import preset  # noqa: E402

# Learning rates where the policy moves far in an update, so the ratio leaves PPO's clip range.
RUNS = [("CartPole-v1", dict(total_timesteps=32_768, lr=1e-2)),
        ("Acrobot-v1", dict(total_timesteps=65_536, lr=3e-3))]
FITS = [("ppo", "dpo"), ("none", "ppo"), ("dpo", "ppo")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="Adam steps per fit (default 3000)")
    parser.add_argument("--hidden-size", type=int, default=64, help="width of the family's net (default 64)")
    parser.add_argument("--out", default=None, help="also write the table as JSON")
    args = parser.parse_args()
    rows = []
    print("| samples from | family start | target | samples | r 1-99 % | relative error |\n|---|---|---|---|---|---|")
    for env, changes in RUNS:
        config = preset(env).replace(**changes)
        samples = collect_samples(config, drifts.get("ppo"), {}, jax.random.PRNGKey(0), every=4)
        low, high = (float(jax.numpy.percentile(samples.ratio, q)) for q in (1, 99))
        for start, target in FITS:
            began = time.perf_counter()
            family = drifts.get("lpo", start=start, hidden_size=args.hidden_size)
            _, error = fit_family(family, drifts.get(target), samples, jax.random.PRNGKey(1), steps=args.steps)
            rows.append({"env": env, **changes, "start": start, "target": target, "samples": int(samples.ratio.size),
                         "ratio_1_99": [low, high], "relative_error": error,
                         "seconds": time.perf_counter() - began})
            print(f"| {env} ({changes['total_timesteps']:,} steps, lr {changes['lr']:g}) PPO run | {start} | {target} "
                  f"| {samples.ratio.size:,} | {low:.2f}-{high:.2f} | {100 * error:.1f} % |", flush=True)
    if args.out:
        write_json_atomic(args.out, {"steps": args.steps, "hidden_size": args.hidden_size, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
