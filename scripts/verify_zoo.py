"""Run the exact mirror-learning check (`discover verify`'s API) on every zoo drift, and on
invalid drifts to see how many random MDPs it takes to expose them.

    python scripts/verify_zoo.py [--quick] [--out results/verify_zoo.json]

Part 1, at the default size (256 random MDPs of 20 states x 5 actions, 50 mirror-
learning updates; `VerifyConfig()`'s defaults): every zoo drift, `lpo` / `ta_lpo` with a
random valid network (`init_scale=1`; their default `init_scale=0` is exactly PPO). Prints
the verdict and the wall-clock time per drift (target: under a minute each on 2 CPU cores).

Part 2: drifts that break an axiom, run with 0, 1 and 4 random restarts of the inner
maximisation, reporting how many of the 256 MDPs show a violation of monotonic improvement
and how many MDPs were drawn before the first one did.
"""

from __future__ import annotations

import argparse
import time

from discover.theorem.config import VerifyConfig  # discover first: the XLA CPU flag before jax
from discover.theorem.verdict import verify_drift

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from discover.files.atomic import write_json_atomic  # noqa: E402
from inner_loop import drifts  # noqa: E402
from inner_loop.drifts import ppo_drift  # noqa: E402

ZOO = [("zero", {}), ("kl", {}), ("ppo", {}), ("dpo", {}), ("lpo", {"init_scale": 1.0}),
       ("ta_lpo", {"init_scale": 1.0})]


def ppo_minus_quadratic(r, a, p=0.0):
    return ppo_drift(r, a, 0.2) - 0.1 * (r - 1.0) ** 2


def negative_quadratic(r, a, p=0.0):
    return -2.0 * (r - 1.0) ** 2 * jnp.ones_like(a)


def advantage_slope(r, a, p=0.0):
    return 2.0 * (r - 1.0) * a


AXIOM_LABELS = {"finite": "finite", "non-negative": "d>=0", "zero at identity": "d(1)=0",
                "zero slope at identity": "flat at 1"}

INVALID = {"ppo - 0.1 (r-1)^2": ppo_minus_quadratic, "-2 (r-1)^2": negative_quadratic,
           "2 (r-1) A": advantage_slope}


def number(x):
    """A float for JSON (which has no NaN or infinity), or None."""
    x = float(x)
    return x if x == x and abs(x) != float("inf") else None


def zoo_fn(name: str, options: dict, seed: int):
    drift = drifts.get(name, **options)
    params = drift.init(jax.random.PRNGKey(seed))
    return lambda r, a, p=0.0: drift(params, r, a, p)


def zoo_rows(config: VerifyConfig) -> list[dict]:
    rows = []
    for name, options in ZOO:
        start = time.perf_counter()
        result = verify_drift(zoo_fn(name, options, config.seed), config)
        wall = time.perf_counter() - start
        conv, imp = result.convergence, result.improvement
        rows.append({"drift": name, "options": options, "passed": result.passed, "failures": result.failures,
                     "axioms_passed": result.axioms.passed, "violations": imp.violations,
                     "worst_drop": number(imp.worst_drop), "min_inner_objective": number(imp.min_inner_objective),
                     "final_gap_median": number(conv.final_gap_median), "final_gap_max": number(conv.final_gap_max),
                     "steps_to_1pct_median": conv.steps_to_near_optimal_median,
                     "steps_to_1pct_max": conv.steps_to_near_optimal_max, "never_within_1pct": conv.never_near_optimal,
                     "seconds": result.seconds, "wall_seconds": wall})
        print(f"{name}: {'pass' if result.passed else 'FAIL'} in {wall:.1f} s", flush=True)
    return rows


def invalid_rows(config: VerifyConfig, restarts: list[int]) -> list[dict]:
    rows = []
    for label, fn in INVALID.items():
        for r in restarts:
            start = time.perf_counter()
            result = verify_drift(fn, config.replace(inner_restarts=r))
            imp = result.improvement
            first = imp.first_mdp_with_violation
            rows.append({"drift": label, "inner_restarts": r,
                         "failed_axioms": [AXIOM_LABELS[c.name] for c in result.axioms.checks if not c.passed],
                         "violations": imp.violations, "mdps_with_violation": imp.mdps_with_violation,
                         "mdps_drawn_until_first_violation": None if first is None else first + 1,
                         "worst_drop": number(imp.worst_drop),
                         "final_gap_median": number(result.convergence.final_gap_median),
                         "wall_seconds": time.perf_counter() - start})
            print(f"{label} (restarts {r}): {imp.mdps_with_violation} MDPs with a violation", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 MDPs of 8 states x 3 actions, 20 updates")
    parser.add_argument("--out", help="write the numbers as JSON to this file")
    args = parser.parse_args()
    config = VerifyConfig()
    if args.quick:
        config = config.replace(num_mdps=16, num_states=8, num_actions=3, iterations=20)
    restarts = [0, 1, 4]

    zoo = zoo_rows(config)
    invalid = invalid_rows(config, restarts)

    console = Console(width=150)  # wide tables; the numbers matter more than a narrow terminal
    table = Table(title=f"zoo drifts: {config.num_mdps} MDPs x {config.num_states} states x "
                        f"{config.num_actions} actions, {config.iterations} updates, "
                        f"{config.inner_restarts} inner restart(s)")
    for col in ("drift", "verdict", "violations", "final gap med / max", "updates to 1% med / max",
                "never 1%", "axioms s", "compile s", "MDPs s", "total s"):
        table.add_column(col, justify="right")
    for row in zoo:
        s = row["seconds"]
        steps = ("-" if row["steps_to_1pct_median"] is None
                 else f"{row['steps_to_1pct_median']:g} / {row['steps_to_1pct_max']}")
        gaps = (row["final_gap_median"], row["final_gap_max"])
        gap_text = " / ".join("-" if g is None else f"{g:.2g}" for g in gaps)
        table.add_row(row["drift"], "pass" if row["passed"] else "FAIL", str(row["violations"]), gap_text, steps,
                      str(row["never_within_1pct"]), f"{s['axioms']:.1f}", f"{s['compile']:.1f}",
                      f"{s['run']:.1f}", f"{s['total']:.1f}")
    console.print(table)

    table = Table(title="invalid drifts: monotonic improvement over the same MDPs")
    for col in ("drift", "failed axioms", "restarts", "violations", "MDPs with one",
                "MDPs drawn to the first", "worst relative drop", "s"):
        table.add_column(col, justify="right")
    for row in invalid:
        table.add_row(row["drift"], ", ".join(row["failed_axioms"]), str(row["inner_restarts"]),
                      str(row["violations"]), f"{row['mdps_with_violation']} / {config.num_mdps}",
                      "none" if row["mdps_drawn_until_first_violation"] is None
                      else str(row["mdps_drawn_until_first_violation"]),
                      "-" if row["worst_drop"] is None else f"{row['worst_drop']:.3g}", f"{row['wall_seconds']:.1f}")
    console.print(table)
    if args.out:
        write_json_atomic(args.out, {"config": config.to_dict(), "zoo": zoo, "invalid": invalid,
                                     "jax": jax.__version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
