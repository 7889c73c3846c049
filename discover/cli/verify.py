"""`discover verify DRIFT`: the drift's axioms and the mirror-learning theorem on exact random
MDPs (`discover.theorem`), as a table and optionally JSON; exit status 1 if a check fails."""

from __future__ import annotations

import argparse
import time
import jax
from rich.console import Console
from rich.table import Table

from discover.cli.args import add_settings_argument
from discover.files.atomic import check_output_file, write_json_atomic
from discover.theorem.axioms import axiom_point_count
from discover.theorem.config import VerifyConfig
from discover.theorem.verdict import VerifyResult, verify_drift
from discover.training.resolver import allowed_drifts, resolve_drift, split_drift_settings
from inner_loop.settings import apply_settings, split_pairs


def add_verify_command(sub) -> argparse.ArgumentParser:
    """Register `discover verify DRIFT [--set k=v ...] [--out FILE]` on `sub`."""
    parser = sub.add_parser(
        "verify", help="check the mirror-learning theorem on a drift (exact random MDPs)",
        description="Check a drift's axioms on a dense grid and the mirror-learning theorem "
                    "(monotonic improvement, convergence) exactly on a batch of random finite MDPs. "
                    "Exit status 1 if a check fails.")
    parser.add_argument("drift", metavar="DRIFT",
                        help=f"a zoo drift ({', '.join(allowed_drifts())}; trpo: zero in a KL ball) "
                             "or the path of a drift file")
    add_settings_argument(parser, "override a check setting (num_mdps=64, iterations=20, neighbourhood=kl_ball, "
                                  "advantage_scaling=raw, seed=1, ...) or a zoo drift option (drift.eps=0.1); "
                                  "several pairs per --set, and --set repeatable")
    parser.add_argument("--out", help="write the verdict as JSON to this file")
    parser.set_defaults(handler=cmd_verify)
    return parser


def cmd_verify(args) -> int:
    drift_pairs, check_pairs = split_drift_settings(args.settings)
    # No axiom gate on loading a drift file: checking the axioms (and reporting them) is this command's job.
    resolved = resolve_drift(args.drift, drift_pairs, check_axioms=False)
    # As in `discover train`, what the drift sets is fixed (trpo: the zero drift in a KL ball).
    fixed = {key: f"{args.drift} ({value})" for key, value in resolved.config_changes.items()}
    config = apply_settings(VerifyConfig(), split_pairs(check_pairs), fixed=fixed)
    config = config.replace(**resolved.config_changes).validate()
    drift_fn = resolved.bind(jax.random.PRNGKey(config.seed))
    description = ({"drift": args.drift, "drift_file": True, "drift_options": dict(resolved.metadata.get("options", {}))}
                   if resolved.path else {"drift": resolved.drift.name, "drift_options": resolved.drift.options()})
    if args.out:
        check_output_file(args.out)
    console = Console(stderr=True)
    console.print(f"verifying [bold]{args.drift}[/]: axioms on {axiom_point_count(config):,} points, then "
                  f"{config.num_mdps} random MDPs ({config.num_states} states x {config.num_actions} actions) "
                  f"x {config.iterations} mirror-learning updates")
    result = verify_drift(drift_fn, config)
    Console().print(verdict_table(result, args.drift))
    if args.out:
        payload = {**description, **result.to_dict(), "jax": jax.__version__,
                   "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        write_json_atomic(args.out, payload)
        Console().print(f"wrote {args.out}")
    return 0 if result.passed else 1


def verdict_table(result: VerifyResult, drift_label: str):
    """A rich table: one row per check with its verdict and the worst case found."""
    def verdict(ok: bool) -> str:
        return "[green]pass[/]" if ok else "[bold red]FAIL[/]"

    config = result.config
    table = Table(title=f"mirror-learning verification of {drift_label}")
    table.add_column("check")
    table.add_column("verdict", justify="center")
    table.add_column("worst case / numbers")
    for check in result.axioms.checks:
        table.add_row(f"axiom: {check.name}", verdict(check.passed), check.detail)
    imp = result.improvement
    detail = (f"{imp.violations} violations in {imp.steps:,} updates ({imp.mdps_with_violation} of {config.num_mdps} "
              f"MDPs); worst relative drop {imp.worst_drop:.3g} (tol {config.tol:g}); "
              f"min inner objective {imp.min_inner_objective:.3g}")
    if imp.first_mdp_with_violation is not None:
        detail += f"; first seen in MDP {imp.first_mdp_with_violation}"
    if imp.non_finite_mdps:
        detail += f"; {imp.non_finite_mdps} MDPs non-finite"
    table.add_row("monotonic improvement", verdict(imp.passed), detail, end_section=True)
    conv = result.convergence
    limit = f" (limit {conv.max_final_gap:g})" if conv.max_final_gap > 0 else " (not a pass/fail check)"
    table.add_row("final gap to optimum", verdict(conv.passed) if conv.max_final_gap > 0 else "-",
                  f"normalised median {conv.final_gap_median:.3g}, max {conv.final_gap_max:.3g}{limit}; "
                  f"relative to eta* median {conv.final_relative_gap_median:.3g}, "
                  f"max {conv.final_relative_gap_max:.3g}")
    steps = ("never" if conv.steps_to_near_optimal_median is None
             else f"median {conv.steps_to_near_optimal_median:g}, max {conv.steps_to_near_optimal_max}")
    table.add_row(f"updates to within {conv.near_optimal:.0%}", "-",
                  f"{steps}; {conv.never_near_optimal} of {config.num_mdps} MDPs never")
    s = result.seconds
    table.add_row("run time", "-", f"{s['total']:.1f} s (axioms {s['axioms']:.1f} s, compile {s['compile']:.1f} s, "
                                   f"MDPs {s['run']:.1f} s)", end_section=True)
    table.caption = ("[green]PASSED[/]: the drift satisfies the axioms and improved monotonically on every MDP"
                     if result.passed else "[bold red]FAILED[/]: " + "; ".join(result.failures))
    return table
