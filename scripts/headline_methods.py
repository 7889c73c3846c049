"""The old and the new compare headline on the same runs, from a report's results.json (schema 2).

Old (until issue 24): per env (return - untrained) / (PPO's mean - untrained), pooled over the
group's envs, IQM, CI by an unpaired stratified bootstrap; PPO scores itself by the same rule,
so its own score is not 1. New: `ratio_to_ppo` of results.json (PPO = 1 by construction).
Prints a markdown table per env group of the report.

    python scripts/headline_methods.py docs/results/transfer/transfer/results.json
"""

from __future__ import annotations

import json
import sys

import numpy as np

from discover.report.paired import iqm

RESAMPLES = 2000


def old_headline(scores: list[np.ndarray], seed: int = 0) -> tuple[float, float, float]:
    """IQM of the pooled per-env scores and its 95 % CI, each env's seeds resampled on their own."""
    rng = np.random.default_rng(seed)
    draws = [iqm(np.concatenate([s[rng.integers(0, s.size, s.size)] for s in scores])) for _ in range(RESAMPLES)]
    return float(iqm(np.concatenate(scores))), *np.quantile(draws, [0.025, 0.975])


def main(path: str) -> int:
    results = json.load(open(path))
    point = results["points"][0]
    labels = list(results["returns"][results["envs"][0]][point])
    print("| env group | drift | old: IQM of PPO-mean-normalised scores | new: ratio to PPO |\n|---|---|---|---|")
    for group, entry in results["ratio_to_ppo"].items():
        if entry["kind"] == "env":
            continue
        for label in labels:
            scores = []
            for env in entry["envs"]:
                zero = results["untrained_return"][env][point]
                table = results["returns"][env][point]
                ppo = np.mean([zero if v is None else v for v in table["ppo"]["final_returns"]])
                runs = np.array([zero if v is None else v for v in table[label]["final_returns"]])
                scores.append((runs - zero) / (ppo - zero))
            value, lo, hi = old_headline(scores)
            new = entry["by_points"][point][label]
            print(f"| {group} | {label} | {value:.3f} [{lo:.3f}, {hi:.3f}] | {new['value']:.3f} "
                  f"[{new['ci'][0]:.3f}, {new['ci'][1]:.3f}] |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
