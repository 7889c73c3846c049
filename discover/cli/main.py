"""The `discover` command.

    discover train --env CartPole-v1 --drift ppo --seeds 4 [--set key=value ...] [--out FILE]

Bad input (unknown env or drift, a bad option or size) is one line on stderr and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import inner_loop  # noqa: F401  (XLA flag before jax)
from inner_loop.errors import ConfigError

EXIT_USAGE = 2

# Algorithms that are a zoo drift in a neighbourhood other than "all policies".
ALGORITHM_ALIASES = {"trpo": ("zero", {"neighbourhood": "kl_ball"})}

# Per-env defaults of an alias over the env's preset, which --set may still change. TRPO on
# CartPole-v1: in a KL ball Adam trains the critic alone, and with the preset's (PPO's) lr
# of 2.5e-4 one seed in 8 lost its policy mid-run as its value loss grew (8 seeds, root
# seeds 0/1/2: 455/500/454); with 1e-3 (Spinning Up's TRPO vf_lr) all 24 seeds ended at 500.
ALIAS_ENV_DEFAULTS = {("trpo", "CartPole-v1"): {"lr": 1e-3}}


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (and exit status 2)."""

    def error(self, message):  # noqa: D401
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def seed_argument(text: str) -> int:
    """argparse type of a --seed: an integer in [0, MAX_SEED] (a one-line usage error if not)."""
    from inner_loop.config import check_seed

    try:
        return check_seed(int(text))
    except (ValueError, ConfigError) as err:
        raise argparse.ArgumentTypeError(str(err) if isinstance(err, ConfigError) else f"{text!r} is not an integer")


def build_parser() -> argparse.ArgumentParser:
    from inner_loop import drifts

    parser = _Parser(prog="discover", description="Discover drift functions for mirror learning.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    train = sub.add_parser("train", help="train one drift on one env over vmapped seeds",
                           description="Train one drift on one gymnax env over N vmapped seeds.")
    train.add_argument("--env", default="CartPole-v1", help="gymnax env id (default CartPole-v1)")
    train.add_argument("--drift", default="ppo",
                       help=f"zoo drift: {', '.join(drifts.names())}; trpo (zero drift in a KL ball); "
                            "or a drift file (.drift.npz)")
    train.add_argument("--seeds", type=int, default=4, help="number of vmapped seeds (default 4)")
    train.add_argument("--seed", type=seed_argument, default=0, help="base PRNG seed (default 0)")
    train.add_argument("--set", dest="settings", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                       help="override a config field (num_envs=64, total_timesteps=1e6, lr=3e-4, ...) "
                            "or a drift option (drift.eps=0.1); several pairs per --set, and --set repeatable")
    train.add_argument("--out", help="write the results as JSON to this file")
    train.set_defaults(handler=cmd_train)

    from discover.cli.sweep import add_sweep_command
    from discover.cli.compare import add_compare_command
    from discover.cli.export import add_export_commands
    from discover.theorem.verify import add_verify_command

    add_sweep_command(sub)
    add_verify_command(sub)
    add_export_commands(sub)
    add_compare_command(sub)
    return parser


def initialize_distributed() -> None:
    """`jax.distributed.initialize()`, once: coordinator, process count and id from the cluster
    environment (SLURM, ...), or from JAX_COORDINATOR_ADDRESS (which JAX reads itself),
    JAX_NUM_PROCESSES and JAX_PROCESS_ID (which it does not). ConfigError (one line) when it
    cannot start."""
    import jax

    if jax.distributed.is_initialized():
        return
    counts = {}
    for name, var in (("num_processes", "JAX_NUM_PROCESSES"), ("process_id", "JAX_PROCESS_ID")):
        if os.environ.get(var, "").strip():
            try:
                counts[name] = int(os.environ[var])
            except ValueError:
                raise ConfigError(f"{var}={os.environ[var]!r} is not allowed; it must be an integer") from None
    try:
        jax.distributed.initialize(**counts)
    except (ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"--distributed: jax.distributed.initialize() failed: {first} (set the cluster "
                          "environment, e.g. SLURM, or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and "
                          "JAX_PROCESS_ID)") from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sweep"] and "--distributed" in argv:
        # Before the parser: building it imports evosax, which starts JAX's backend, and
        # jax.distributed.initialize() must come first.
        try:
            initialize_distributed()
        except ConfigError as err:
            print(f"discover sweep: error: {err}", file=sys.stderr)
            return EXIT_USAGE
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args) or 0
    except ConfigError as err:
        print(f"discover {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"discover {args.command}: interrupted", file=sys.stderr)
        return 130


def resolve_train(env_id: str, drift_name: str, settings: list[str]):
    """(config, drift) for `discover train`, validated; ConfigError on bad input."""
    from discover.training.settings import apply_train_overrides
    from inner_loop import drifts, preset
    from inner_loop.envs import make_env

    make_env(env_id)  # unknown env ids fail here, with the allowed list
    name, alias_settings = ALGORITHM_ALIASES.get(drift_name, (drift_name, {}))
    if name not in drifts.names():
        from discover.files.drift_file import packaged_drifts

        allowed = ", ".join(drifts.names() + list(ALGORITHM_ALIASES) + packaged_drifts())
        raise ConfigError(f"unknown drift {drift_name!r}; allowed: {allowed}")
    config = preset(env_id).replace(**ALIAS_ENV_DEFAULTS.get((drift_name, env_id), {}), **alias_settings)
    config, drift_options = apply_train_overrides(config, name, settings,
                                                  fixed=("env_id",) + tuple(alias_settings))
    return config.validate(), drifts.get(name, **drift_options)


def cmd_train(args) -> int:
    import jax
    import numpy as np
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from discover.files.atomic import package_versions, write_json_atomic
    from discover.cli.progress import progress_display
    from discover.cli.tables import curve_table, summary_table
    from discover.training.seeds import train_seeds

    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds} is not allowed; it must be a positive integer")
    drift_params = None
    from discover.files.drift_file import drift_file_path, load_drift

    if drift_file_path(args.drift):
        loaded = load_drift(args.drift)  # a drift file: its drift and stored params
        if any(s.startswith("drift.") for s in args.settings):
            raise ConfigError(f"--set drift.<option> cannot change the drift stored in {args.drift!r}")
        config, _ = resolve_train(args.env, loaded.name, args.settings)
        drift, drift_params = loaded.drift, loaded.params
    else:
        config, drift = resolve_train(args.env, args.drift, args.settings)
    if args.out:
        _check_writable(args.out)

    console = Console(stderr=True)
    drift_key, run_key = jax.random.split(jax.random.PRNGKey(args.seed))
    if drift_params is None:
        drift_params = drift.init(drift_key)
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
            "final_return": [_num(x) for x in result.final_return],
            "curve": [[_num(x) for x in row] for row in result.curve],
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


def _num(x) -> float | None:
    x = float(x)
    return x if x == x and abs(x) != float("inf") else None  # JSON has no NaN


def _check_writable(path: str) -> None:
    from discover.files.atomic import check_output_file

    check_output_file(path)


if __name__ == "__main__":
    sys.exit(main())
