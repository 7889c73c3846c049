"""`discover compare`: train drifts and baselines on the same seeds, write a readable report.

    discover compare FILE_OR_ZOO [...] --envs ENV,... --seeds 16 [--baselines ppo,dpo]
                     [--set key=value ...] -o reports/<name>

Writes `report.md`, a self-contained `report.html` (PNG figures inlined as base64),
`results.json` (every number behind the tables and figures) and the PNGs into the output
folder atomically (`discover.report`). A drift is anything the drift resolver takes: a drift
file, a packaged drift, a zoo name, or `trpo`. A failed (NaN) run is reported as failed,
never dropped silently.
"""

from __future__ import annotations

import time

import jax
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from discover.cli.args import add_settings_argument, check_count, seed_argument
from discover.cli.progress import progress_display
from discover.report.folder import check_report_folder, write_report_folder
from discover.report.summary import summarize
from discover.training.references import untrained_returns
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


def entry_configs(entries: list[dict], envs: list[str], settings: dict[str, list[str]]) -> dict:
    """{(label, env): the inner config that drift trains with}: the env's preset, the drift's own
    fields (trpo: a KL ball), then the --set pairs."""
    return {(e["label"], env): e["resolved"].train_config(env, settings[env]) for e in entries for env in envs}


def cmd_compare(args) -> int:
    check_count("--seeds", args.seeds, 2, "a comparison needs at least 2 seeds")
    envs = [e.strip() for e in args.envs.split(",") if e.strip()]
    if not envs:
        raise ConfigError("--envs is empty; name at least one gymnax env id")
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    entries = resolve_entries(args.drifts, baselines)
    settings = env_settings(envs, args.settings)
    configs = entry_configs(entries, envs, settings)
    # The env's config with no drift-specific fields: the untrained policy's and results.json's.
    env_configs = [resolve_drift("zero").train_config(env, settings[env]) for env in envs]
    for config in [*configs.values(), *env_configs]:
        check_final_window(config)  # else every seed fails (NaN) only after all the training
    output = check_report_folder(args.output, args.output)

    runs, untrained = train_all(entries, envs, configs, env_configs, args.seeds, args.seed)
    labels = [e["label"] for e in entries]
    training = {e["label"]: e["training_envs"] for e in entries}
    results = summarize(runs, labels, envs, training, args.seed, untrained or None)
    meta = {"seeds": args.seeds, "seed": args.seed, "settings": args.settings, "envs": envs,
            "created": time.strftime("%Y-%m-%d %H:%M:%S"), "training": training,
            "baselines": [e["label"] for e in entries if e["baseline"]],
            "sources": {e["label"]: e["source"] for e in entries}}
    changed = {f"{label}|{env}": config.to_dict() for (label, env), config in configs.items()
               if config != env_configs[envs.index(env)]}
    if changed:  # a drift that trains with its own fields (trpo): its configs, beside the env's
        meta["drift_configs"] = changed
    markdown = write_report_folder(output, meta, results, runs, entries, envs, env_configs, args.seed)
    Console().print(markdown.split("## Figures")[0])
    Console().print(f"wrote {output}/report.md, report.html, results.json")
    return 0


def train_all(entries: list[dict], envs: list[str], configs: dict, env_configs: list, seeds: int,
              seed: int) -> tuple[dict, dict]:
    """({(label, env): {final_return, curve}}, {env: untrained return}), every drift on every env
    with the same seeds; the untrained policy's return (learning rate ~0, same seeds) is the
    zero point of the PPO-normalised scores, measured when PPO is among the drifts."""
    console = Console(stderr=True)
    runs, untrained = {}, {}
    key = jax.random.PRNGKey(seed)
    with progress_display(console, TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), unit="runs") as progress:
        task = progress.add_task("training", total=len(entries) * len(envs))  # + untrained runs (untimed)
        for env in envs:
            env_key = jax.random.fold_in(key, envs.index(env))
            for entry in entries:
                progress.update(task, description=f"{entry['label']} on {env}")
                result = train_seeds(configs[(entry["label"], env)], entry["drift"], entry["params"], seeds, env_key)
                runs[(entry["label"], env)] = {"final_return": result.final_return, "curve": result.curve}
                progress.advance(task)
        if any(e["label"] == "ppo" for e in entries):
            for env, config in zip(envs, env_configs):
                progress.update(task, description=f"untrained policy on {env}")
                finite = untrained_returns(config, seeds, jax.random.fold_in(key, envs.index(env)))
                untrained[env] = float(np.mean(finite)) if finite.size else None  # not measured: never a made-up 0
    return runs, untrained
