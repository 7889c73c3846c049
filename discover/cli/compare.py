"""`discover compare`: train drifts and baselines on the same seeds, write a readable report.

    discover compare FILE_OR_ZOO [...] --envs ENV,... --seeds 16 [--baselines ppo,dpo]
                     [--set key=value ...] [--grid lr=1e-3,1e-2 ...] -o reports/<name>

Writes `report.md`, a self-contained `report.html` (PNG figures inlined as base64),
`results.json` (every number behind the tables and figures) and the PNGs into the output
folder atomically (`discover.report`). A drift is anything the drift resolver takes: a drift
file, a packaged drift, a zoo name, or `trpo`. A failed (NaN) run is counted in every
statistic with a defined score (`report.summary.FAILED_SCORE`), never dropped.
"""

from __future__ import annotations

import time

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from discover.cli.args import add_settings_argument, check_count, seed_argument
from discover.cli.progress import progress_display
from discover.report.folder import check_report_folder, write_report_folder
from discover.report.summary import shrinkage, summarize
from discover.training.comparison import Entry, entry_configs, env_configs, resolve_entries, run_count, train_all
from discover.sweep.config import inner_target
from discover.training.grid import parse_grid
from discover.training.resolver import split_drift_settings
from inner_loop.envs import make_env
from inner_loop.episodes import check_final_window
from inner_loop.errors import ConfigError
from inner_loop.settings import split_pairs


def add_compare_command(sub) -> None:
    compare = sub.add_parser("compare", help="compare drifts with PPO/DPO on several envs; write a report",
                             description="Train every drift and baseline on every env with the same seeds; "
                                         "write report.md, report.html and results.json.")
    compare.add_argument("drifts", nargs="+", help="drift files (.drift.npz), packaged drifts, zoo drift names "
                                                   "or trpo")
    compare.add_argument("--envs", default="CartPole-v1", help="comma-separated gymnax env ids")
    compare.add_argument("--seeds", type=int, default=16, help="seeds per drift and env (default 16)")
    compare.add_argument("--seed", type=seed_argument, default=0, help="base PRNG seed (default 0)")
    compare.add_argument("--baselines", default="ppo,dpo", help="zoo baselines (default ppo,dpo; '' for none)")
    add_settings_argument(compare, "inner-loop override for every env (total_timesteps=1e5, ...), or for one "
                                   "(inner.Acrobot-v1.lr=1e-2, as in sweep)")
    compare.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2,...",
                         help="run every drift at every value of a numeric inner-loop setting, with the same "
                              "seeds (lr=1e-3,3e-3,1e-2); several --grid make a product")
    compare.add_argument("-o", "--output", required=True, help="report folder (e.g. reports/<name>)")
    compare.set_defaults(handler=cmd_compare)


def env_settings(envs: list[str], settings: list[str]) -> dict[str, list[str]]:
    """{env: its --set pairs}: `inner.<env>.<field>=value` for one env (as in sweep; env ids
    have no dots), any other pair (`inner.` optional) for every env."""
    drift_pairs, settings = split_drift_settings(settings)
    if drift_pairs:
        raise ConfigError("--set drift.<option> is not allowed in compare; pass a drift file or zoo name")
    shared, per_env = [], {}
    for key, text in split_pairs(settings):
        env, name = inner_target(key)
        if env and env not in envs:
            raise ConfigError(f"--set {key}: {env!r} is not one of --envs ({', '.join(envs)})")
        (per_env.setdefault(env, []) if env else shared).append(f"{name}={text}")
    for env in envs:
        make_env(env)
    return {env: shared + per_env.get(env, []) for env in envs}


def check_grid_is_read(specs: list[str], configs: dict) -> None:
    """ConfigError unless some drift reads each grid field on some env (kl_delta for PPO only
    would give identical runs at every point, and a tuned row chosen among ties)."""
    for spec in specs:
        field = spec.partition("=")[0].strip()
        if not any(field in config.fields_read() for config in configs.values()):
            raise ConfigError(f"--grid {field}: no drift of this comparison reads {field} (it trains the same at "
                              "every value); grid a field they use")


def cmd_compare(args) -> int:
    check_count("--seeds", args.seeds, 2, "a comparison needs at least 2 seeds")
    envs = [e.strip() for e in args.envs.split(",") if e.strip()]
    if not envs:
        raise ConfigError("--envs is empty; name at least one gymnax env id")
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    entries = resolve_entries(args.drifts, baselines)
    settings = env_settings(envs, args.settings)
    points = parse_grid(args.grid, args.settings)
    configs = entry_configs(entries, envs, settings, points)
    check_grid_is_read(args.grid, configs)
    plain_configs = env_configs(envs, settings, points)
    for config in [*configs.values(), *plain_configs.values()]:
        check_final_window(config)  # else every seed fails (NaN) only after all the training
    output = check_report_folder(args.output, args.output)

    labels = [e.label for e in entries]
    names = [p.name for p in points]
    runs = _train_with_progress(entries, envs, names, configs, plain_configs, args.seeds, args.seed)
    training = {e.label: e.training_envs for e in entries}
    finals = np.stack([[[runs[(label, env, p)]["final_return"] for p in names] for env in envs] for label in labels])
    zero = np.array([[runs[(None, env, p)]["mean"] for p in names] for env in envs])
    zero_se = np.array([[runs[(None, env, p)]["se"] for p in names] for env in envs])
    results = summarize(finals, zero, labels, envs, names, training, args.seed, zero_se)
    validation = {e.label: record for e in entries if (record := e.resolved.validation)}
    if validation and len(points) == 1:  # a grid's normaliser pools its points: not the sweep's
        results["shrinkage"] = shrinkage(finals, zero, labels, envs, training, validation)
    meta = {"seeds": args.seeds, "seed": args.seed, "settings": args.settings, "envs": envs,
            "grid": {"specs": args.grid, "points": {p.name: list(p.settings) for p in points}},
            "created": time.strftime("%Y-%m-%d %H:%M:%S"), "training": training,
            "baselines": [e.label for e in entries if e.baseline],
            "sources": {e.label: e.source for e in entries}}
    changed = {f"{label}|{env}|{p}": config.to_dict() for (label, env, p), config in configs.items()
               if config != plain_configs[(env, p)]}
    if changed:  # a drift that trains with its own fields (trpo): its configs, beside the env's
        meta["drift_configs"] = changed
    markdown = write_report_folder(output, meta, results, runs, entries, envs, points, plain_configs, args.seed)
    Console().print(markdown.split("## Figures")[0])
    Console().print(f"wrote {output}/report.md, report.html, results.json")
    return 0


def _train_with_progress(entries: list[Entry], envs: list[str], points: list[str], configs: dict,
                         plain_configs: dict, seeds: int, seed: int) -> dict:
    """`train_all` with a progress display (a bar in a terminal, plain lines in a log)."""
    total = run_count(entries, envs, points, plain_configs)
    with progress_display(Console(stderr=True), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), unit="runs") as display:
        task = display.add_task("training", total=total)
        runs = train_all(entries, envs, points, configs, plain_configs, seeds, seed,
                         lambda description, done: display.update(task, description=description, completed=done))
        display.update(task, completed=total)
    return runs
