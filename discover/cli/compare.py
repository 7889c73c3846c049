"""`discover compare`: train drifts and baselines on the same seeds, write a readable report.

    discover compare FILE_OR_ZOO [...] --envs ENV,... --seeds 16 [--baselines ppo,dpo]
                     [--set key=value ...] -o reports/<name>

Writes `report.md`, a self-contained `report.html` (PNG figures inlined as base64),
`results.json` (every number behind the tables and figures) and the PNGs, into the output
folder atomically (a temporary folder renamed into place). Statistics follow Agarwal et al.
(2021): mean, median and IQM of final return with 95 % bootstrap CIs over seeds, the
probability that a drift beats PPO per env, and PPO-normalised aggregates with stratified
bootstrap CIs. A failed (NaN) run is reported as failed, never dropped silently.
"""

from __future__ import annotations

import base64
import html
import os
import shutil
import time

import numpy as np

from inner_loop.errors import ConfigError

RESAMPLES = 2000


def add_compare_command(sub) -> None:
    from discover.cli.main import seed_argument

    compare = sub.add_parser("compare", help="compare drifts with PPO/DPO on several envs; write a report",
                             description="Train every drift and baseline on every env with the same seeds; "
                                         "write report.md, report.html and results.json.")
    compare.add_argument("drifts", nargs="+", help="drift files (.drift.npz) or zoo drift names")
    compare.add_argument("--envs", default="CartPole-v1", help="comma-separated gymnax env ids")
    compare.add_argument("--seeds", type=int, default=16, help="seeds per drift and env (default 16)")
    compare.add_argument("--seed", type=seed_argument, default=0, help="base PRNG seed (default 0)")
    compare.add_argument("--baselines", default="ppo,dpo", help="zoo baselines (default ppo,dpo; '' for none)")
    compare.add_argument("--set", dest="settings", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                         help="inner-loop override for every env (total_timesteps=1e5, ...), or for one "
                              "(inner.Acrobot-v1.lr=1e-2, as in sweep)")
    compare.add_argument("-o", "--output", required=True, help="report folder (e.g. reports/<name>)")
    compare.set_defaults(handler=cmd_compare)


def resolve_entries(specs: list[str], baselines: list[str]) -> list[dict]:
    """[{label, drift, params, training_envs, source, baseline}] for drift files and zoo names,
    baselines last. `baseline` marks a zoo drift named in `baselines`: a reference, not a drift
    under test (a zoo drift given as a drift to compare has no training envs either)."""
    import jax

    from discover.files.drift_file import drift_file_path, load_drift
    from inner_loop import drifts

    entries, seen = [], set()
    for spec in specs + [b for b in baselines if b not in specs]:
        if drift_file_path(spec):
            loaded = load_drift(spec)
            label = os.path.basename(spec).removesuffix(".npz").removesuffix(".drift")
            envs = loaded.metadata.get("provenance", {}).get("training_envs", [])
            entries.append({"label": label, "drift": loaded.drift, "params": loaded.params,
                            "training_envs": list(envs), "source": spec, "baseline": False})
        else:
            drift = drifts.get(spec)
            label = spec
            entries.append({"label": label, "drift": drift, "params": drift.init(jax.random.PRNGKey(0)),
                            "training_envs": None, "source": f"zoo:{spec}", "baseline": spec in baselines})
        if label in seen:
            raise ConfigError(f"drift {spec!r} appears twice (label {label!r}); give each drift once")
        seen.add(label)
    return entries


def env_configs(envs: list[str], settings: list[str]):
    from discover.training.settings import apply_train_overrides
    from inner_loop import preset
    from inner_loop.envs import make_env

    if any(s.startswith("drift.") for s in settings):
        raise ConfigError("--set drift.<option> is not allowed in compare; pass a drift file or zoo name")
    shared, per_env = [], {}
    for pair in settings:  # inner.<env>.<field>=value: one env's setting, as in sweep (env ids have no dots)
        key = pair.partition("=")[0].strip()
        if key.startswith("inner.") and key.count(".") >= 2:
            env = key[len("inner."):].rsplit(".", 1)[0]
            if env not in envs:
                raise ConfigError(f"--set {key}: {env!r} is not one of --envs ({', '.join(envs)})")
            per_env.setdefault(env, []).append(pair.strip()[len(f"inner.{env}."):])
        else:
            shared.append(pair.removeprefix("inner."))
    configs = []
    for env in envs:
        make_env(env)
        config, _ = apply_train_overrides(preset(env), "zero", shared + per_env.get(env, []), fixed=("env_id",))
        configs.append(config.validate())
    return configs


def summarize(runs: dict, labels: list[str], envs: list[str], training: dict, seed: int,
              untrained: dict | None = None) -> dict:
    """Every number of the report from raw runs {(label, env): {"final_return", "curve"}}.

    PPO-normalised score = (return - untrained) / (PPO mean - untrained), where `untrained`
    is the env's return of the initial (untrained) policy: 0 = no learning, 1 = PPO. A plain
    ratio to PPO would flip sign on envs with negative returns (Acrobot). An env whose
    untrained return is None (not measured: every untrained seed gave NaN) or whose PPO runs
    all failed has no zero or one point, so it is left out of the aggregate and named in
    `aggregate_excluded_envs` with the reason.
    """
    from discover.report import stats

    untrained = untrained or {env: 0.0 for env in envs}
    results = {"per_env": {}, "aggregate": {}, "probability_beats_ppo": {}, "untrained_return": dict(untrained),
               "aggregate_excluded_envs": {}}
    for env in envs:
        results["per_env"][env] = {}
        for label in labels:
            final = np.asarray(runs[(label, env)]["final_return"], np.float64)
            ok = final[np.isfinite(final)]
            row = {"final_returns": [None if not np.isfinite(v) else float(v) for v in final],
                   "failed_seeds": int((~np.isfinite(final)).sum()),
                   "held_out": training[label] is not None and env not in training[label]}
            for name in stats.STATISTICS:
                fn = stats.statistic(name)
                row[name] = fn(ok) if ok.size else None
                lo, hi = stats.bootstrap_ci(ok, fn, resamples=RESAMPLES, seed=seed) if ok.size else (None, None)
                row[f"{name}_ci"] = [lo, hi]
            results["per_env"][env][label] = row
    if "ppo" in labels:
        for label in labels:
            if label == "ppo":
                continue
            results["probability_beats_ppo"][label] = {}
            for env in envs:
                x = np.asarray(runs[(label, env)]["final_return"], np.float64)
                y = np.asarray(runs[("ppo", env)]["final_return"], np.float64)
                x, y = x[np.isfinite(x)], y[np.isfinite(y)]
                p = stats.probability_of_improvement(x, y) if x.size and y.size else None
                ci = stats.probability_of_improvement_ci(x, y, resamples=RESAMPLES, seed=seed) if p is not None \
                    else (None, None)
                results["probability_beats_ppo"][label][env] = {"p": p, "ci": list(ci)}
        spans = {}
        for env in envs:
            ppo_mean = results["per_env"][env]["ppo"]["mean"]
            if untrained[env] is None:
                results["aggregate_excluded_envs"][env] = "untrained return not measured"
            elif ppo_mean is None:
                results["aggregate_excluded_envs"][env] = "every PPO seed failed"
            elif ppo_mean == untrained[env]:
                results["aggregate_excluded_envs"][env] = "PPO's mean equals the untrained return"
            else:
                spans[env] = ppo_mean - untrained[env]
        results["aggregate"] = _aggregates(runs, labels, spans, untrained, seed)
        # The same aggregate over each drift's training envs and over its held-out envs alone
        # (every drift scored on the same env group), so transfer is read directly.
        groups: dict[tuple, dict] = {}
        for label in labels:
            if training[label] is None:
                continue
            for kind, group in (("training", [e for e in envs if e in training[label]]),
                                ("held out", [e for e in envs if e not in training[label]])):
                group = tuple(e for e in group if e in spans)
                if group:
                    groups.setdefault(group, {}).setdefault(kind, []).append(label)
        results["aggregate_groups"] = {
            "; ".join(f"{kind} by {', '.join(owners)}" for kind, owners in kinds.items()): {
                "envs": list(group), "by_drift": _aggregates(runs, labels, {e: spans[e] for e in group}, untrained, seed)}
            for group, kinds in groups.items()}
    return results


def _aggregates(runs: dict, labels: list[str], spans: dict, untrained: dict, seed: int) -> dict:
    """{label: {mean, iqm, and their CIs}} of PPO-normalised scores pooled over `spans`' envs."""
    from discover.report import stats

    out = {}
    for label in labels:
        strata = []
        for env, span in spans.items():
            x = np.asarray(runs[(label, env)]["final_return"], np.float64)
            strata.append((x[np.isfinite(x)] - untrained[env]) / span)
        pooled = np.concatenate(strata) if strata else np.zeros(0)
        agg = {}
        for name in ("mean", "iqm"):
            fn = stats.statistic(name)
            agg[name] = fn(pooled) if pooled.size else None
            agg[f"{name}_ci"] = list(stats.stratified_bootstrap_ci(strata, fn, resamples=RESAMPLES, seed=seed)) \
                if pooled.size else [None, None]
        out[label] = agg
    return out


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


def draw_figures(folder: str, runs: dict, entries: list[dict], envs: list[str], configs, seed: int) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from discover.report import stats
    from discover.report.figures import drift_landscapes_png

    figures = {}
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.6), squeeze=False)
    for ax, env, config in zip(axes[0], envs, configs):
        steps = np.arange(1, config.num_updates + 1) * config.batch_size
        for entry in entries:
            mean, lo, hi = stats.curve_band(runs[(entry["label"], env)]["curve"], seed=seed)
            ax.plot(steps, mean, label=entry["label"])
            ax.fill_between(steps, lo, hi, alpha=0.25)
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel("episodic return")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "curves.png"), dpi=90)
    plt.close(fig)
    figures["Learning curves (mean, 95 % bootstrap band)"] = "curves.png"

    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.6), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for i, entry in enumerate(entries):
            final = np.asarray(runs[(entry["label"], env)]["final_return"], np.float64)
            ok = final[np.isfinite(final)]
            if ok.size:  # no bar for a drift whose every seed failed: a bar at 0 would read as measured
                ax.bar(i, np.mean(ok), color=f"C{i}", alpha=0.5)
            ax.scatter(np.full(ok.size, i), ok, color=f"C{i}", s=10)
        ax.set_xticks(range(len(entries)), [e["label"] for e in entries], rotation=20, fontsize=8)
        ax.set_title(env)
        ax.set_ylabel("final return")
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "final_returns.png"), dpi=90)
    plt.close(fig)
    figures["Final returns per env (bars: mean; dots: seeds)"] = "final_returns.png"

    panels = [(e["label"], (lambda d, p: (lambda r, a, pr: d(p, r, a, pr)))(e["drift"], e["params"])) for e in entries]
    drift_landscapes_png(panels, os.path.join(folder, "landscapes.png"))
    figures["Drift landscapes over (log r, A), progress 0"] = "landscapes.png"
    return figures


def cmd_compare(args) -> int:
    import jax
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from discover.files.atomic import ensure_writable_dir, package_versions, write_json_atomic
    from discover.cli.progress import progress_display
    from discover.training.references import untrained_returns
    from discover.training.seeds import train_seeds

    if args.seeds < 2:
        raise ConfigError(f"--seeds {args.seeds} is not allowed; a comparison needs at least 2 seeds")
    envs = [e.strip() for e in args.envs.split(",") if e.strip()]
    if not envs:
        raise ConfigError("--envs is empty; name at least one gymnax env id")
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    entries = resolve_entries(args.drifts, baselines)
    configs = env_configs(envs, args.settings)
    output = args.output.rstrip("/")
    if not output:
        raise ConfigError(f"-o {args.output!r} is not allowed; give a new folder name")
    if os.path.exists(output) and not os.path.isdir(output):
        raise ConfigError(f"output folder {output!r} is an existing file; -o takes a new (or empty) folder")
    try:
        if os.path.isdir(output) and os.listdir(output):
            raise ConfigError(f"output folder {output!r} exists and is not empty; choose a new one")
    except OSError as err:
        raise ConfigError(f"cannot read output folder {output!r}: {err.strerror}") from None
    ensure_writable_dir(os.path.dirname(os.path.abspath(output)))

    console = Console(stderr=True)
    runs = {}
    key = jax.random.PRNGKey(args.seed)
    with progress_display(console, TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), unit="runs") as progress:
        task = progress.add_task("training", total=len(entries) * len(envs))  # + untrained runs (untimed)
        for env, config in zip(envs, configs):
            env_key = jax.random.fold_in(key, envs.index(env))
            for entry in entries:
                progress.update(task, description=f"{entry['label']} on {env}")
                result = train_seeds(config, entry["drift"], entry["params"], args.seeds, env_key)
                runs[(entry["label"], env)] = {"final_return": result.final_return, "curve": result.curve}
                progress.advance(task)

        # The untrained policy's return per env (learning rate ~0, same seeds): the zero
        # point of the PPO-normalised scores.
        untrained = {}
        ppo = next((e for e in entries if e["label"] == "ppo"), None)
        for env, config in zip(envs, configs):
            if ppo is None:
                break
            progress.update(task, description=f"untrained policy on {env}")
            finite = untrained_returns(config, args.seeds, jax.random.fold_in(key, envs.index(env)))
            untrained[env] = float(np.mean(finite)) if finite.size else None  # not measured: never a made-up 0

    labels = [e["label"] for e in entries]
    training = {e["label"]: e["training_envs"] for e in entries}
    results = summarize(runs, labels, envs, training, args.seed, untrained or None)
    meta = {"seeds": args.seeds, "seed": args.seed, "settings": args.settings, "envs": envs,
            "created": time.strftime("%Y-%m-%d %H:%M:%S"), "training": training,
            "baselines": [e["label"] for e in entries if e["baseline"]],
            "sources": {e["label"]: e["source"] for e in entries}}
    staging = f"{output}.tmp{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        figures = draw_figures(staging, runs, entries, envs, configs, args.seed)
        name = os.path.basename(output)
        markdown = markdown_report(name, meta, results, labels, envs, figures)
        with open(os.path.join(staging, "report.md"), "w") as f:
            f.write(markdown)
        with open(os.path.join(staging, "report.html"), "w") as f:
            f.write(html_report(markdown, staging))
        curves = {f"{label}|{env}": [[None if not np.isfinite(v) else float(v) for v in row]
                                     for row in np.asarray(runs[(label, env)]["curve"])]
                  for label in labels for env in envs}
        write_json_atomic(os.path.join(staging, "results.json"),
                          {**meta, "configs": {env: c.to_dict() for env, c in zip(envs, configs)},
                           **results, "curves": curves, "versions": package_versions()})
        if os.path.isdir(output):
            os.rmdir(output)  # empty (checked above)
        os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    Console().print(markdown.split("## Figures")[0])
    Console().print(f"wrote {output}/report.md, report.html, results.json")
    return 0
