"""`discover train`: one drift on one env over N vmapped seeds.

    discover train --env CartPole-v1 --drift ppo --seeds 4 [--set key=value ...] [--out FILE]
"""

from __future__ import annotations

import time

import jax
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from discover.cli.args import add_settings_argument, check_count, seed_argument
from discover.cli.progress import progress_display
from discover.cli.tables import curve_table, summary_table
from discover.files.atomic import check_output_file, package_versions, write_json_atomic
from discover.theorem.text import json_number
from discover.training.resolver import ResolvedDrift, allowed_drifts, resolve_drift, split_drift_settings
from discover.training.seeds import train_seeds
from inner_loop import TrainConfig
from inner_loop.envs import make_env
from inner_loop.episodes import check_final_window


def add_train_command(sub) -> None:
    train = sub.add_parser("train", help="train one drift on one env over vmapped seeds",
                           description="Train one drift on one gymnax env over N vmapped seeds.")
    train.add_argument("--env", default="CartPole-v1", help="gymnax env id (default CartPole-v1)")
    train.add_argument("--drift", default="ppo",
                       help=f"zoo drift: {', '.join(allowed_drifts())} (trpo: zero drift in a KL ball); "
                            "or a drift file (.drift.npz)")
    train.add_argument("--seeds", type=int, default=4, help="number of vmapped seeds (default 4)")
    train.add_argument("--seed", type=seed_argument, default=0, help="base PRNG seed (default 0)")
    add_settings_argument(train, "override a config field (num_envs=64, total_timesteps=1e6, lr=3e-4, ...) "
                                 "or a drift option (drift.eps=0.1); several pairs per --set, and --set repeatable")
    train.add_argument("--out", help="write the results as JSON to this file")
    train.set_defaults(handler=cmd_train)


def resolve_train(env_id: str, drift_spec: str, settings: list[str]) -> tuple[TrainConfig, ResolvedDrift]:
    """(config, resolved drift) for `discover train`, validated; ConfigError on bad input."""
    make_env(env_id)  # unknown env ids fail here, with the allowed list
    drift_pairs, config_pairs = split_drift_settings(settings)
    resolved = resolve_drift(drift_spec, drift_pairs)
    config = resolved.train_config(env_id, config_pairs)
    check_final_window(config)  # a run with no final return at all is refused before training
    return config, resolved


def cmd_train(args) -> int:
    check_count("--seeds", args.seeds)
    config, resolved = resolve_train(args.env, args.drift, args.settings)
    if args.out:
        check_output_file(args.out)

    console = Console(stderr=True)
    drift_key, run_key = jax.random.split(jax.random.PRNGKey(args.seed))
    drift, drift_params = resolved.drift, resolved.init_params(drift_key)
    console.print(f"[bold]{args.drift}[/] on [bold]{config.env_id}[/]: {args.seeds} seeds x "
                  f"{config.env_steps:,} env steps ({config.num_updates} updates of {config.batch_size})")
    with progress_display(console, TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("updates"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                          unit="updates") as progress:
        task = progress.add_task("compiling", total=config.num_updates)

        def on_progress(done, total):
            progress.update(task, completed=done, description="training")

        result = train_seeds(config, drift, drift_params, args.seeds, run_key, on_progress=on_progress)

    out = Console()
    out.print(curve_table(result.curve, config.batch_size))
    out.print(summary_table(result.final_return, result.compile_seconds, result.env_steps_per_second))
    if args.out:
        payload = {
            "env": config.env_id, "drift": args.drift, "drift_options": drift.options(),
            "config": config.to_dict(), "seeds": args.seeds, "seed": args.seed,
            "final_return": [json_number(x) for x in result.final_return],
            "curve": [[json_number(x) for x in row] for row in result.curve],
            "env_steps_per_update": config.batch_size, "env_steps": config.env_steps,
            "compile_seconds": result.compile_seconds, "run_seconds": result.run_seconds,
            "env_steps_per_second": result.env_steps_per_second,
            "versions": package_versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_json_atomic(args.out, payload)
        out.print(f"wrote {args.out}")
    if not np.all(np.isfinite(result.final_return)):
        console.print("[yellow]warning:[/] some seeds have no finished episode in the final window (NaN)")
    return 0
