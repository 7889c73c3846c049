"""`discover train` from two checkouts in paired alternations: does a change move the command's speed
or its results?

    python scripts/bench_cli.py --baseline-repo /path/to/other/checkout --pairs 5 -- \\
        --env Breakout-MinAtar --drift ppo --seeds 8 --set total_timesteps=1e6

Each run is a fresh `python -m discover train ... --out FILE` process with the checkout first on
PYTHONPATH, so everything the command does before jax starts (its XLA flags) counts. Pairs
alternate their order (A B, B A, ...) against drift in the host's speed. Reported: each side's
median `env_steps_per_second` (compilation excluded), the median and range of the per-pair ratios
(this checkout over the baseline), and whether both sides' per-seed final returns are identical.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_train(repo: str, train_args: list[str]) -> dict:
    """One `discover train` in a fresh process from `repo`; its --out JSON."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "train.json")
        env = {**os.environ, "PYTHONPATH": repo}
        subprocess.run([sys.executable, "-m", "discover", "train", *train_args, "--out", out], check=True, env=env,
                       cwd=repo, stdout=subprocess.DEVNULL)
        with open(out) as f:
            return json.load(f)


def commit_of(repo: str) -> str:
    """The checkout's commit, with `+changes` when its tracked files differ from it."""
    head = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", repo, "diff", "--quiet", "HEAD"]).returncode != 0
    return (head.stdout.strip() or "unknown") + ("+changes" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-repo", required=True, help="another checkout of this project")
    parser.add_argument("--pairs", type=int, default=5, help="paired alternations (default 5)")
    parser.add_argument("--out", help="write every run's numbers as JSON here")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="after --: the arguments of discover train")
    args = parser.parse_args(argv)
    train_args = [a for a in args.train_args if a != "--"]
    sides = {"this": REPO, "baseline": os.path.abspath(args.baseline_repo)}
    runs: dict[str, list[dict]] = {"this": [], "baseline": []}
    for pair in range(args.pairs):
        for side in (("this", "baseline") if pair % 2 == 0 else ("baseline", "this")):
            result = run_train(sides[side], train_args)
            runs[side].append(result)
            print(f"pair {pair + 1}/{args.pairs} {side:8s} {result['env_steps_per_second']:,.0f} steps/s", flush=True)
    speed = {side: [r["env_steps_per_second"] for r in rs] for side, rs in runs.items()}
    ratios = [a / b for a, b in zip(speed["this"], speed["baseline"])]
    identical = all(a["final_return"] == b["final_return"] for a, b in zip(runs["this"], runs["baseline"]))
    summary = {"train_args": train_args, "pairs": args.pairs,
               "commits": {side: commit_of(repo) for side, repo in sides.items()}, "ratio_median": statistics.median(ratios),
               "ratio_range": [min(ratios), max(ratios)], "identical_final_returns": identical,
               "steps_per_second_median": {side: statistics.median(v) for side, v in speed.items()},
               "steps_per_second": speed}
    print(f"this / baseline: median {summary['ratio_median']:.3f} (range {min(ratios):.3f}-{max(ratios):.3f}); "
          f"medians {summary['steps_per_second_median']['this']:,.0f} vs "
          f"{summary['steps_per_second_median']['baseline']:,.0f} steps/s; identical final returns: {identical}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
