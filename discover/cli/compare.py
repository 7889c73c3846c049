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

import json
import time

import jax
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from discover.cli.args import add_settings_argument, check_count, seed_argument
from discover.cli.progress import progress_display
from discover.report.folder import check_report_folder, write_report_folder
from discover.report.summary import shrinkage, summarize
from discover.training.grid import AS_SET, GridPoint, parse_grid
from discover.training.references import UNTRAINED_LR, standard_error, untrained_returns
from discover.training.resolver import resolve_drift, split_drift_settings
from discover.training.seeds import train_seeds
from inner_loop.envs import make_env
from inner_loop.episodes import check_final_window
from inner_loop.errors import ConfigError


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


def resolve_entries(specs: list[str], baselines: list[str]) -> list[dict]:
    """[{label, resolved, drift, params, training_envs, source, baseline}] for every drift the
    resolver takes, baselines last. `baseline` marks a zoo drift named in `baselines`: a
    reference, not a drift under test (a zoo drift given as a drift to compare has no
    training envs either)."""
    entries, seen = [], set()
    for spec in specs + [b for b in baselines if b not in specs]:
        resolved = resolve_drift(spec)
        label = resolved.label
        if label in seen:
            raise ConfigError(f"drift {spec!r} appears twice (label {label!r}); give each drift once")
        seen.add(label)
        entries.append({"label": label, "resolved": resolved, "drift": resolved.drift,
                        "params": resolved.init_params(jax.random.PRNGKey(0)),
                        "training_envs": resolved.training_envs, "source": resolved.source,
                        "baseline": resolved.path is None and spec in baselines})
    return entries


def env_settings(envs: list[str], settings: list[str]) -> dict[str, list[str]]:
    """{env: its --set pairs}: `inner.<env>.<field>=value` for one env (as in sweep; env ids
    have no dots), any other pair (`inner.` optional) for every env."""
    drift_pairs, settings = split_drift_settings(settings)
    if drift_pairs:
        raise ConfigError("--set drift.<option> is not allowed in compare; pass a drift file or zoo name")
    shared, per_env = [], {}
    for pair in settings:
        key = pair.partition("=")[0].strip()
        if key.startswith("inner.") and key.count(".") >= 2:
            env = key[len("inner."):].rsplit(".", 1)[0]
            if env not in envs:
                raise ConfigError(f"--set {key}: {env!r} is not one of --envs ({', '.join(envs)})")
            per_env.setdefault(env, []).append(pair.strip()[len(f"inner.{env}."):])
        else:
            shared.append(pair.removeprefix("inner."))
    for env in envs:
        make_env(env)
    return {env: shared + per_env.get(env, []) for env in envs}


def entry_configs(entries: list[dict], envs: list[str], settings: dict[str, list[str]],
                  points: list[GridPoint]) -> dict:
    """{(label, env, point name): the inner config that drift trains with}: the env's preset, the
    drift's own fields (trpo: a KL ball), the --set pairs, then the grid point's values."""
    configs = {}
    for point in points:
        for env in envs:
            for e in entries:
                try:
                    configs[(e["label"], env, point.name)] = e["resolved"].train_config(env, settings[env] + list(
                        point.settings))
                except ConfigError as err:
                    raise ConfigError(f"--grid {point.name}: {err}" if point.settings else str(err)) from None
    return configs


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
    # The env's config with no drift-specific fields: the untrained policy's and results.json's.
    env_configs = entry_configs([{"label": None, "resolved": resolve_drift("zero")}], envs, settings, points)
    env_configs = {(env, p): config for (_, env, p), config in env_configs.items()}
    for config in [*configs.values(), *env_configs.values()]:
        check_final_window(config)  # else every seed fails (NaN) only after all the training
    output = check_report_folder(args.output, args.output)

    labels = [e["label"] for e in entries]
    names = [p.name for p in points]
    runs = train_all(entries, envs, names, configs, env_configs, args.seeds, args.seed)
    training = {e["label"]: e["training_envs"] for e in entries}
    finals = np.stack([[[runs[(label, env, p)]["final_return"] for p in names] for env in envs] for label in labels])
    zero = np.array([[runs[(None, env, p)]["mean"] for p in names] for env in envs])
    zero_se = np.array([[runs[(None, env, p)]["se"] for p in names] for env in envs])
    results = summarize(finals, zero, labels, envs, names, training, args.seed, zero_se)
    validation = {e["label"]: record for e in entries if (record := e["resolved"].validation)}
    if validation and len(points) == 1:  # a grid's normaliser pools its points: not the sweep's
        results["shrinkage"] = shrinkage(finals, zero, labels, envs, training, validation)
    meta = {"seeds": args.seeds, "seed": args.seed, "settings": args.settings, "envs": envs,
            "grid": {"specs": args.grid, "points": {p.name: list(p.settings) for p in points}},
            "created": time.strftime("%Y-%m-%d %H:%M:%S"), "training": training,
            "baselines": [e["label"] for e in entries if e["baseline"]],
            "sources": {e["label"]: e["source"] for e in entries}}
    changed = {f"{label}|{env}|{p}": config.to_dict() for (label, env, p), config in configs.items()
               if config != env_configs[(env, p)]}
    if changed:  # a drift that trains with its own fields (trpo): its configs, beside the env's
        meta["drift_configs"] = changed
    markdown = write_report_folder(output, meta, results, runs, entries, envs, points, env_configs, args.seed)
    Console().print(markdown.split("## Figures")[0])
    Console().print(f"wrote {output}/report.md, report.html, results.json")
    return 0


def train_all(entries: list[dict], envs: list[str], points: list[str], configs: dict, env_configs: dict,
              seeds: int, seed: int) -> dict:
    """{(label, env, point): {final_return, curve}} for every drift on every env and grid point
    with the same seeds, and {(None, env, point): {mean, se}}: the untrained policy's return
    (learning rate ~0, same seeds), the zero point of the normalised scores and a bound on a
    failed run's score; NaN where no untrained seed ended an episode (never a made-up 0)."""
    console = Console(stderr=True)
    runs, untrained = {}, {}
    key = jax.random.PRNGKey(seed)
    total = len(entries) * len(envs) * len(points) + len({_untrained_key(c) for c in env_configs.values()})
    with progress_display(console, TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), unit="runs") as progress:
        task = progress.add_task("training", total=total)
        for env in envs:
            env_key = jax.random.fold_in(key, envs.index(env))  # the same seeds at every point
            for point in points:
                at = "" if point == AS_SET else f" at {point}"
                for entry in entries:
                    progress.update(task, description=f"{entry['label']} on {env}{at}")
                    result = train_seeds(configs[(entry["label"], env, point)], entry["drift"], entry["params"],
                                         seeds, env_key)
                    runs[(entry["label"], env, point)] = {"final_return": result.final_return, "curve": result.curve}
                    progress.advance(task)
                config = env_configs[(env, point)]
                if _untrained_key(config) not in untrained:  # an lr grid: one untrained run per env
                    progress.update(task, description=f"untrained policy on {env}{at}")
                    finite = untrained_returns(config, seeds, env_key)
                    se = standard_error(finite)
                    untrained[_untrained_key(config)] = {"mean": float(np.mean(finite)) if finite.size else float("nan"),
                                                         "se": float("nan") if se is None else se}
                    progress.advance(task)
                runs[(None, env, point)] = untrained[_untrained_key(config)]
    return runs


def _untrained_key(config) -> str:
    """What the untrained run depends on: every field it reads except the learning rate (~0)."""
    return json.dumps(config.replace(lr=UNTRAINED_LR).fields_read(), sort_keys=True)
