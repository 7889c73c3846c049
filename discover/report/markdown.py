"""The comparison report as markdown, and as one self-contained HTML page (PNGs inlined)."""

from __future__ import annotations

import base64
import html
import os

from discover.report.summary import RESAMPLES


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
    lines = [f"# Drift comparison: {name}", "",
             f"{meta['seeds']} seeds per drift and env (the same seeds for every drift); "
             f"inner-loop settings: {', '.join(meta['settings']) or 'the env presets'}. "
             f"95 % bootstrap confidence intervals in brackets ({RESAMPLES} resamples). "
             f"IQM = interquartile mean. Generated {meta['created']}.", "",
             "## Final return per environment", ""]
    for env in envs:
        lines += [f"### {env}", "", "| drift | mean | median | IQM | failed seeds | env |", "|---|---|---|---|---|---|"]
        for label in labels:
            row = results["per_env"][env][label]
            status = ("held out" if row["held_out"] else "training" if meta["training"][label]
                      else "baseline" if label in meta["baselines"] else "zoo drift")
            lines.append(f"| {label} | {_fmt(row['mean'], row['mean_ci'])} | {_fmt(row['median'], row['median_ci'])} "
                         f"| {_fmt(row['iqm'], row['iqm_ci'])} | {row['failed_seeds']} | {status} |")
        lines.append("")
    if results["probability_beats_ppo"]:
        lines += ["## Probability of beating PPO", "",
                  "P(final return of a run of the drift > that of a PPO run), per env.", "",
                  "| drift | " + " | ".join(envs) + " |", "|---|" + "---|" * len(envs)]
        for label, per_env in results["probability_beats_ppo"].items():
            lines.append(f"| {label} | " + " | ".join(_fmt(per_env[e]["p"], per_env[e]["ci"]) for e in envs) + " |")
        # A return that was not measured is said so, never shown as a number (0 would read as measured).
        untrained = ", ".join(f"{e} {_fmt(results['untrained_return'][e])}"
                              if results["untrained_return"][e] is not None
                              else f"{e} not measured (every untrained seed's return was NaN)" for e in envs)
        excluded = results["aggregate_excluded_envs"]
        lines += ["", "## PPO-normalised aggregate over envs", "",
                  "Per env, (final return - untrained policy's) / (PPO's mean - untrained policy's): 0 is no "
                  "learning, 1 is PPO; pooled over envs (stratified bootstrap). Untrained policy's return: "
                  f"{untrained}.", ""]
        if excluded:
            lines += ["Left out of the aggregate (no zero or one point): "
                      + "; ".join(f"{e} ({why})" for e, why in excluded.items()) + ".", ""]
        if len(excluded) == len(envs):
            lines += ["No env is left, so there is no PPO-normalised score.", ""]
        else:
            lines += _aggregate_table(results["aggregate"])
            for name, group in results.get("aggregate_groups", {}).items():
                lines += [f"### Envs {name}: {', '.join(group['envs'])}", ""] + _aggregate_table(group["by_drift"])
    lines += ["## Figures", ""]
    for title, path in figures.items():
        lines += [f"### {title}", "", f"![{title}]({path})", ""]
    lines += ["## Drifts", "", "| drift | source | training envs |", "|---|---|---|"]
    for label in labels:
        envs_trained = meta["training"][label]
        lines.append(f"| {label} | {meta['sources'][label]} | "
                     f"{', '.join(envs_trained) if envs_trained else '-'} |")
    return "\n".join(lines) + "\n"


def _aggregate_table(by_drift: dict) -> list[str]:
    lines = ["| drift | mean | IQM |", "|---|---|---|"]
    for label, agg in by_drift.items():
        lines.append(f"| {label} | {_fmt(agg['mean'], agg['mean_ci'])} | {_fmt(agg['iqm'], agg['iqm_ci'])} |")
    return lines + [""]


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
