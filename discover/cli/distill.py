"""`discover distill`: a drift as a short closed form that is valid by construction.

    discover distill DRIFT [-o FILE] [--set key=value ...]

DRIFT is a drift file, a packaged drift (`transfer-v1`) or a zoo drift (`ppo`, `dpo`, ...).
Prints the size-vs-error Pareto front and the chosen formula (text, LaTeX, a JAX function),
and writes it as a `closed_form` drift file, usable wherever a drift file is (docs/design.md,
Distillation).
"""

from __future__ import annotations

import dataclasses

import jax
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from discover.cli.args import add_settings_argument
from discover.cli.progress import progress_display
from discover.distill.config import SETTINGS, distill_config
from discover.distill.pipeline import DistillResult, distill
from discover.distill.samples import sampling_config, sampling_envs
from discover.files.atomic import check_output_file
from discover.files.drift_file import LoadedDrift, axiom_report, save_drift
from discover.training.resolver import ResolvedDrift, resolve_drift, split_drift_settings

COPIED_PROVENANCE = ("training_envs", "test_envs", "sweep", "sweep_config")  # from the source drift file


def add_distill_command(sub) -> None:
    distill_parser = sub.add_parser(
        "distill", help="distil a drift into a short closed form that is valid by construction",
        description="Fit non-negative sums of valid atoms to a drift where training uses it; print the "
                    "size-vs-error Pareto front and the chosen formula; write it as a closed_form drift file.")
    distill_parser.add_argument("drift", help="a drift file, a packaged drift (transfer-v1) or a zoo drift name")
    distill_parser.add_argument("-o", "--output",
                                help="the drift file to write (default: <name>.distilled.drift.npz here)")
    add_settings_argument(distill_parser, f"{', '.join(SETTINGS)} (e.g. samples.timesteps=8192 max_size=15 "
                                          "tolerance=0.05 env=CartPole-v1,Acrobot-v1), or drift.<option> for a "
                                          "zoo drift")
    distill_parser.set_defaults(handler=cmd_distill)


def cmd_distill(args) -> int:
    drift_pairs, pairs = split_drift_settings(args.settings)
    config = distill_config(pairs)
    resolved = resolve_drift(args.drift, drift_pairs)
    output = args.output or f"{resolved.label}.distilled.drift.npz"
    check_output_file(output, "-o", reads=(resolved.path, "the drift being distilled"))

    console = Console(stderr=True)
    envs = sampling_envs(resolved, config)
    for env in envs:  # every sampling config checked before any work (samples.timesteps too small, ...)
        sampling_config(resolved, env, config)
    console.print(f"distilling [bold]{escape(args.drift)}[/] from {config.seeds} runs per env on "
                  f"{', '.join(envs)}")
    with progress_display(console, TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), unit="stages", every=10.0) as progress:
        task = progress.add_task("starting", total=len(envs) + 1)
        stages = []

        def on_stage(stage: str) -> None:
            if stages:
                progress.advance(task)
            stages.append(stage)
            progress.update(task, description=stage)

        result = distill(resolved, config, jax.random.PRNGKey(config.seed), on_stage=on_stage)
        progress.update(task, completed=len(envs) + 1, description="done")

    out = Console()
    out.print(pareto_table(result))
    formula = result.chosen.formula
    out.print(f"chosen: {formula.size} operations, weighted relative error {100 * result.chosen.error:.2f} %",
              highlight=False)
    out.print(f"formula: {formula.text}", highlight=False, markup=False, soft_wrap=True)
    out.print(f"LaTeX: {formula.latex}", highlight=False, markup=False, soft_wrap=True)
    out.print(f"JAX:\n{formula.jax}", highlight=False, markup=False, soft_wrap=True)
    drift = result.drift()
    report = axiom_report(LoadedDrift(drift, {}, {}))
    if not report["passed"]:  # cannot happen for sums of valid atoms; never written if it did
        console.print(f"[red]the chosen formula fails the axioms ({report['problem']}); nothing written[/]")
        return 1
    save_drift(output, drift, {}, provenance(resolved, config, result), axiom_check=report)
    out.print(f"wrote {output}", highlight=False)
    return 0


def provenance(resolved: ResolvedDrift, config, result: DistillResult) -> dict:
    """The distilled drift's provenance: the source's training envs and sweep, and how it was distilled."""
    source = resolved.metadata.get("provenance", {})
    copied = {key: source[key] for key in COPIED_PROVENANCE if key in source}
    return {**copied, "distill": {"source": resolved.source, "source_parameterisation": resolved.drift.name,
                                  "source_options": resolved.drift.options(), "config": dataclasses.asdict(config),
                                  **result.summary(), "jax": result.chosen.formula.jax}}


def pareto_table(result: DistillResult) -> Table:
    """The size-vs-error Pareto front, the chosen formula marked."""
    data = result.data
    table = Table(title=f"Pareto front: {len(result.front)} formulas from {result.tried} fits of "
                        f"{len(result.atoms)} atoms on {data.run_samples:,} run samples + "
                        f"{data.ratio.size - data.run_samples:,} grid points")
    table.add_column("operations", justify="right")
    table.add_column("error %", justify="right")
    table.add_column("", justify="center")
    table.add_column("formula", overflow="fold")
    for candidate in result.front:
        mark = "<-" if candidate is result.chosen else ""
        table.add_row(str(candidate.formula.size), f"{100 * candidate.error:.2f}", mark,
                      escape(candidate.formula.text))
    table.caption = "error: weighted relative error ||f - d|| / ||d|| on the samples"
    return table
