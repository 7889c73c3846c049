"""The comparison report as markdown, and as one self-contained HTML page (PNGs inlined)."""

from __future__ import annotations

import base64
import html
import os

from discover.report.paired import MIN_SEEDS_FOR_CI


def _fmt(value, ci=None) -> str:
    if value is None:
        return "failed"
    text = f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"
    if ci and ci[0] is not None:
        lo, hi = ci
        text += f" [{lo:.1f}, {hi:.1f}]" if abs(value) >= 10 else f" [{lo:.3f}, {hi:.3f}]"
    return text


def markdown_report(name: str, meta: dict, results: dict, labels: list[str], envs: list[str],
                    figures: dict[str, str]) -> str:
    points = results["points"]
    grid = f"; grid: {', '.join(meta['grid']['specs'])} ({len(points)} points)" if len(points) > 1 else ""
    lines = [f"# Drift comparison: {name}", "",
             f"{meta['seeds']} seeds per drift, env and grid point (the same seeds for every drift); inner-loop "
             f"settings: {', '.join(meta['settings']) or 'the env presets'}{grid}. IQM = interquartile mean; "
             f"95 % bootstrap confidence intervals in brackets. Generated {meta['created']}.", "",
             "## Method", "", results["method"], ""]
    if results["ci_note"]:
        lines += [f"**No confidence intervals**: {results['ci_note']}.", ""]
    if "ratio_to_ppo" in results:
        lines += _ratio_sections(results, labels, envs, points)
    lines += _shrinkage_table(results.get("shrinkage") or {})
    lines += _failed_seeds_table(results, labels, envs, meta["seeds"] * len(points))
    lines += _return_tables(results, meta, labels, envs, points)
    lines += ["## Figures", ""]
    for title, path in figures.items():
        lines += [f"### {title}", "", f"![{title}]({path})", ""]
    lines += ["## Drifts", "", "| drift | source | training envs |", "|---|---|---|"]
    for label in labels:
        envs_trained = meta["training"][label]
        lines.append(f"| {label} | {meta['sources'][label]} | "
                     f"{', '.join(envs_trained) if envs_trained else '-'} |")
    return "\n".join(lines) + "\n"


def _shrinkage_table(rows: dict) -> list[str]:
    """A sweep's validation score at export beside the same statistic on this report's seeds."""
    if not rows:
        return []
    lines = ["## Shrinkage on fresh seeds", "",
             "The sweep's validation score of each drift at export (the search mean's PPO-normalised fitness, "
             "mean over its training envs, on seeds of the sweep's own) beside the same statistic on this "
             "report's seeds (normalised by this report's PPO runs; 95 % normal interval over seeds). The two "
             "measure the same thing where this report's settings are the sweep's.", "",
             "| drift | generation | validation at export (seeds per env) | here (seeds) | difference |",
             "|---|---|---|---|---|"]
    for label, row in rows.items():
        lines.append(f"| {label} | {row['generation'] if row['generation'] is not None else '-'} | "
                     f"{_fmt(row['validation'])} ({row['validation_seeds_per_env'] or '-'}) | "
                     f"{_fmt(row['fresh'], row['ci'])} ({row['seeds']}) | {_fmt(row['difference'])} |")
    return lines + [""]


def _cell(entry: dict | None) -> str:
    if entry is None or entry["value"] is None:
        return "undefined" if entry is not None else "-"
    text = _fmt(entry["value"], entry["ci"])
    return text + (f" ({entry['undefined_draws']:.1%} of draws undefined)" if "undefined_draws" in entry else "")


def _ratio_sections(results: dict, labels: list[str], envs: list[str], points: list[str]) -> list[str]:
    """The headline (ratio to PPO per env group and env), tuned rows, and P(beats PPO)."""
    groups, untrained = results["ratio_to_ppo"], results["untrained_return"]
    zero = "; ".join(f"{e} " + ", ".join(dict.fromkeys(_fmt(v) if v is not None else "not measured"
                                                       for v in untrained[e].values())) for e in envs)
    lines = ["## Ratio to PPO (PPO = 1)", "", f"Untrained policy's return (the zero point): {zero}.", ""]
    if results["excluded_envs"]:
        lines += ["Left out of every aggregate (no zero and one point): "
                  + "; ".join(f"{e} ({why})" for e, why in results["excluded_envs"].items()) + ".", ""]
    if not groups:
        lines += ["No env is left, so there is no ratio to PPO.", ""]
    else:
        lines += _headline_tables(results, labels, groups)
    lines += ["## Probability of beating PPO (paired by seed)", "",
              "The share of seeds whose run ends above PPO's run with the same seed (ties 1/2).", ""]
    for point in points:
        if len(points) > 1:
            lines += [f"### At {point}", ""]
        lines += ["| drift | " + " | ".join(envs) + " |", "|---|" + "---|" * len(envs)]
        for label, per_env in results["probability_beats_ppo"].items():
            lines.append(f"| {label} | " + " | ".join(_cell(per_env[e][point]) for e in envs) + " |")
        lines.append("")
    return lines


def _headline_tables(results: dict, labels: list[str], groups: dict) -> list[str]:
    """The ratio to PPO per env group (the whole grid first, then each point) and the tuned rows."""
    lines = []
    names = list(next(iter(groups.values()))["by_points"])
    for point in names[-1:] + names[:-1] if len(names) > 1 else names:  # the whole grid first
        if len(names) > 1:
            lines += [f"### {'Over the whole grid' if point == 'whole grid' else 'At ' + point}", ""]
        lines += _group_table(labels, groups, lambda g, label: groups[g]["by_points"][point][label], "")
    if "tuned" in results:
        tuned = results["tuned"]
        lines += [f"## Tuned (best grid point per env, chosen on {_seeds(tuned['choose_seeds'])}, scored on "
                  f"{_seeds(tuned['score_seeds'])})", "", "Ratio to PPO (tuned):", ""]
        if len(tuned["score_seeds"]) < MIN_SEEDS_FOR_CI:
            lines += [f"No confidence intervals: {len(tuned['score_seeds'])} scoring seeds, fewer than "
                      f"{MIN_SEEDS_FOR_CI}.", ""]
        lines += _group_table(labels, groups, lambda g, label: tuned["ratio_to_ppo_tuned"][g][label], " (tuned)")
        kept = list(next(iter(tuned["chosen"].values())))
        lines += ["Chosen grid point:", "", "| drift | " + " | ".join(kept) + " |", "|---|" + "---|" * len(kept)]
        lines += [f"| {label} | " + " | ".join(tuned["chosen"][label][e] for e in kept) + " |" for label in labels]
        lines.append("")
    return lines


def _seeds(indices: list[int]) -> str:
    return f"seed {indices[0]}" if len(indices) == 1 else f"seeds {indices[0]}-{indices[-1]}"


def _group_table(labels: list[str], groups: dict, entry, suffix: str) -> list[str]:
    lines = ["| drift | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    lines += [f"| {label}{suffix} | " + " | ".join(_cell(entry(g, label)) for g in groups) + " |" for label in labels]
    return lines + [""]


def _failed_seeds_table(results: dict, labels: list[str], envs: list[str], runs: int) -> list[str]:
    lines = ["## Failed seeds", "", f"Runs with no finite final return, of {runs} per drift and env; each is "
             f"scored as {results['failed_seed_score']}.", "",
             "| drift | " + " | ".join(envs) + " |", "|---|" + "---|" * len(envs)]
    lines += [f"| {label} | " + " | ".join(str(results["failed_seeds"][label][e]) for e in envs) + " |"
              for label in labels]
    return lines + [""]


def _return_tables(results: dict, meta: dict, labels: list[str], envs: list[str], points: list[str]) -> list[str]:
    lines = ["## Final return per environment", "",
             f"Failed seeds scored as {results['failed_seed_score']} (\"failed\" where neither exists).", ""]
    point_column = len(points) > 1
    for env in envs:
        lines += [f"### {env}", "", "| drift | " + ("grid point | " if point_column else "")
                  + "mean | median | IQM | failed seeds | env |", "|---|" + "---|" * (5 + point_column)]
        for label in labels:
            for point in points:
                row = results["returns"][env][point][label]
                status = ("held out" if row["held_out"] else "training" if meta["training"][label]
                          else "baseline" if label in meta["baselines"] else "zoo drift")
                lines.append(f"| {label} | " + (f"{point} | " if point_column else "")
                             + f"{_fmt(row['mean'], row['mean_ci'])} | {_fmt(row['median'], row['median_ci'])} "
                             f"| {_fmt(row['iqm'], row['iqm_ci'])} | {row['failed_seeds']} | {status} |")
        lines.append("")
    return lines


def html_report(markdown: str, folder: str) -> str:
    """A self-contained HTML page of the markdown report (tables, headings, inlined PNGs)."""
    body, table = [], []

    def flush_table():
        if not table:
            return
        rows = [r.strip().strip("|").split("|") for r in table if not set(r.replace("|", "").strip()) <= set("-")]
        head, rest = rows[0], rows[1:]
        body.append("<table><thead><tr>" + "".join(f"<th>{html.escape(c.strip())}</th>" for c in head)
                    + "</tr></thead><tbody>" + "".join(
                        "<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r) + "</tr>" for r in rest)
                    + "</tbody></table>")
        table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line[level:].strip())}</h{level}>")
        elif line.startswith("!["):
            alt, path = line[2:].split("](")
            with open(os.path.join(folder, path.rstrip(")")), "rb") as f:
                data = base64.b64encode(f.read()).decode()
            body.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    flush_table()
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 8px;"
             "text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>drift comparison</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")
