"""`discover export` and `discover inspect`: drift files out of a sweep, and a look inside one.

    discover export runs/<name> [--generation N|best|last] [--which mean|best] -o FILE
    discover inspect FILE [--png FILE]

Export copies a checkpoint's drift out of a run folder into a standalone drift file
(`discover.files.drift_file`), adding provenance and the verdict of `discover verify` (axioms and
the theorem on random MDPs) at export time.
"""

from __future__ import annotations

import json
import os
import re

from rich.console import Console
from rich.table import Table

from discover.files.atomic import check_output_file
from discover.files.drift_file import LoadedDrift, axiom_report, read_drift_file, save_drift
from discover.report.figures import drift_landscapes_png, reference_panels
from discover.sweep.run_folder import DRIFT_KINDS, RunFolder
from discover.theorem.config import VerifyConfig
from discover.theorem.verdict import verify_drift
from inner_loop import drifts
from inner_loop.errors import ConfigError

EXPORT_VERIFY_MDPS = 64  # random MDPs of the theorem check recorded at export


def add_export_commands(sub) -> None:
    export = sub.add_parser("export", help="export a drift from a sweep's run folder to a drift file",
                            description="Export the mean or best drift of a sweep checkpoint as a drift file.")
    export.add_argument("run_dir", help="a sweep run folder (runs/<name>)")
    export.add_argument("--generation", default="best",
                        help="a checkpoint generation N, 'last', or 'best' (highest recorded fitness; default)")
    export.add_argument("--which", default="mean", help="mean (the search mean, default) or best (best member)")
    export.add_argument("-o", "--output", required=True, help="the drift file to write (.drift.npz)")
    export.set_defaults(handler=cmd_export)

    inspect = sub.add_parser("inspect", help="show a drift file: metadata, axioms, landscape",
                             description="Metadata, axiom check and a heat map of a drift file.")
    inspect.add_argument("file", help="a drift file")
    inspect.add_argument("--png", help="heat-map PNG to write (default: FILE with .png)")
    inspect.set_defaults(handler=cmd_inspect)


def choose_drift_file(run_dir: str, generation: str, which: str) -> tuple[int, str]:
    """(generation, drift file) of the checkpoint `generation` names (N, last or best)."""
    if which not in DRIFT_KINDS:
        raise ConfigError(f"--which {which!r} is not allowed; choose mean or best")
    folder = RunFolder(run_dir)
    folder.read_config(label="run folder")  # a sweep run folder, or a one-line error
    files = folder.drift_files(which)
    if not files:
        raise ConfigError(f"run folder {run_dir!r} has no {which} drift files yet (none until the first checkpoint)")
    if generation == "last":
        chosen = max(files)
    elif generation == "best":
        chosen = max(files) if which == "best" else folder.best_validated_generation(files)
    else:
        try:
            chosen = int(generation)
        except ValueError:
            raise ConfigError(f"--generation {generation!r} is not allowed; give a number, last or best") from None
        if chosen not in files:
            raise ConfigError(f"--generation {chosen} has no checkpoint in {run_dir!r}; "
                              f"available: {', '.join(map(str, sorted(files)))}")
    return chosen, files[chosen]


def cmd_export(args) -> int:
    run_dir = args.run_dir.rstrip("/")
    generation, source = choose_drift_file(run_dir, args.generation, args.which)
    check_output_file(args.output)
    console = Console(stderr=True)
    loaded = read_drift_file(source)
    console.print(f"checking the {args.which} drift of generation {generation} against the theorem "
                  f"({EXPORT_VERIFY_MDPS} random MDPs)")
    verdict = verify_drift(loaded, VerifyConfig(num_mdps=EXPORT_VERIFY_MDPS))
    provenance = {**loaded.metadata.get("provenance", {}), "exported_from": os.path.abspath(source),
                  "run_dir": os.path.abspath(run_dir), "export_generation_choice": args.generation}
    provenance.pop("versions", None)  # save_drift records the exporting versions
    provenance["sweep_versions"] = loaded.metadata.get("provenance", {}).get("versions")
    verdict_dict = verdict.to_dict()
    axioms = {**verdict_dict.get("axioms", {}), "problem": "; ".join(verdict.failures) or None}
    save_drift(args.output, loaded.drift, loaded.params, provenance,
               axiom_check={**axioms, "theorem": {k: v for k, v in verdict_dict.items() if k != "axioms"}})
    status = "passed" if verdict.passed else "FAILED"
    Console().print(f"wrote {args.output}: {args.which} drift of generation {generation} "
                    f"(fitness {provenance.get('fitness', float('nan')):.3f}); verify {status}")
    return 0


def _formula_rows(loaded: LoadedDrift, provenance: dict) -> list[tuple[str, str]]:
    """The formula of an atoms or closed-form drift, and where `discover distill` got it from."""
    drift = loaded.drift
    if isinstance(drift, drifts.AtomsDrift):
        return [("formula", drift.formula(loaded.params))]
    if drift.name != "closed_form":
        return []
    rows = [("expression", drift.expression)]
    distill = provenance.get("distill")
    if isinstance(distill, dict):
        rows += [("LaTeX", str(distill.get("latex", "-"))),
                 ("distilled from", str(distill.get("source", "-"))),
                 ("distill error", f"{100 * error:.2f} % (weighted relative)"
                  if isinstance(error := distill.get("error"), (int, float)) else "-"),
                 ("operations", str(distill.get("size", "-")))]
    return rows


def cmd_inspect(args) -> int:
    loaded = read_drift_file(args.file, check_axioms=False)
    # The PNG path is checked (its folder created, as for train --out) before the axiom check
    # and the table, so a bad --png is one line rather than an error after the output.
    png = args.png or re.sub(r"(\.drift)?\.npz$", "", args.file) + ".png"
    check_output_file(png, "--png", reads=(args.file, "the drift file itself"))
    report = axiom_report(loaded)
    meta = loaded.metadata
    provenance = meta.get("provenance", {})
    table = Table(title=f"drift file {args.file}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    rows = [("format", f"{meta['format']} v{meta['format_version']}"),
            ("parameterisation", meta["parameterisation"]),
            ("options", json.dumps(meta.get("options", {}))),
            ("architecture", json.dumps(meta.get("architecture", {}))),
            *_formula_rows(loaded, provenance),
            ("parameters", ", ".join(f"{k} {v}" for k, v in meta.get("param_shapes", {}).items()) or "none"),
            ("sweep", str(provenance.get("sweep", "-"))),
            ("generation", str(provenance.get("generation", "-"))),
            ("fitness", str(provenance.get("fitness", "-"))),
            ("training envs", ", ".join(provenance.get("training_envs", [])) or "-"),
            ("held-out envs", ", ".join(provenance.get("test_envs", [])) or "-"),
            ("held-out fitness", str(provenance.get("test_fitness", "-"))),
            ("evaluation", str(provenance.get("evaluation", "-"))),
            ("versions", json.dumps(provenance.get("versions", {}))),
            ("axioms at write time", "pass" if meta.get("axiom_check", {}).get("passed") else
             f"FAIL: {meta.get('axiom_check', {}).get('problem')}"),
            ("axioms now", "pass" if report["passed"] else f"FAIL: {report['problem']}")]
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    drift_landscapes_png([(os.path.basename(args.file), loaded), *reference_panels("ppo", "dpo")], png)
    Console().print(f"wrote {png}")
    return 0 if report["passed"] else 1
