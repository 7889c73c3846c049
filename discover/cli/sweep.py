"""`discover sweep`: command-line front end of `discover.sweep.loop` (progress bar, Ctrl-C, errors).

    discover sweep [--preset NAME] [--config FILE] [--set key=value ...] [--name NAME]
                   [--runs-dir DIR] [--wandb online|offline|disabled] [--resume RUN_DIR]
                   [--distributed]

Ctrl-C once: the current generation finishes, a checkpoint is written, exit status 130;
`--resume` continues from it. Ctrl-C twice: stop at once (the last finished generation is
still checkpointed).
"""

from __future__ import annotations

import math
import os
import signal
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from discover.cli.args import EXIT_INTERRUPTED, add_settings_argument
from discover.cli.progress import progress_display
from discover.files.atomic import ensure_writable_dir
from discover.sweep.config import apply_sweep_overrides, get_preset, load_config_file, preset_names, resume_config
from discover.sweep.distributed import initialize_distributed
from discover.sweep.loop import run_sweep
from discover.sweep.run_folder import RunFolder
from discover.sweep.wandb_run import WANDB_MODES, check_wandb_mode
from inner_loop.errors import ConfigError
from inner_loop.settings import split_pairs


def noise_text(row: dict) -> str:
    """A member's standard error and the generation's SNR, e.g. `0.041 (snr 1.8)`; `-` with one seed."""
    noise, snr = row.get("fitness_noise", math.nan), row.get("fitness_snr", math.nan)
    return f"{noise:.3f} (snr {snr:.1f})" if math.isfinite(noise) and math.isfinite(snr) else "-"


def add_sweep_command(sub) -> None:
    sweep = sub.add_parser(
        "sweep", help="evolve a drift with an evosax strategy (a discovery sweep)",
        description="Evolve a drift (neural or atoms) with evolution strategies; writes a resumable run folder.")
    sweep.add_argument("--preset", help=f"start from a preset: {', '.join(preset_names())} (default quick)")
    sweep.add_argument("--config", help="a TOML config file (may name a preset); --set overrides it")
    add_settings_argument(sweep, "override a setting: generations=, population_size=, seeds_per_member=, "
                            "checkpoint_every=, envs=A,B, strategy=, strategy.std=, drift.hidden_size=, "
                            "or an inner-loop field (total_timesteps=, lr=, ...); several pairs per --set, "
                                 "and --set repeatable")
    sweep.add_argument("--name", help="run name (default: <preset>-<date>-<time>)")
    sweep.add_argument("--runs-dir", default="runs", help="folder of run folders (default runs/)")
    sweep.add_argument("--wandb", default="offline",
                       help=f"wandb mode: {', '.join(WANDB_MODES)} (default offline)")
    sweep.add_argument("--resume", metavar="RUN_DIR", help="continue the sweep in this run folder")
    sweep.add_argument("--distributed", action="store_true",
                       help="call jax.distributed.initialize() first (multi-host; see README)")
    sweep.set_defaults(handler=cmd_sweep)


def resolve_sweep(args):
    """(config, run folder, name, resume) from the command line; ConfigError on bad input."""
    check_wandb_mode(args.wandb)
    if args.resume:
        if args.preset or args.config or args.name:
            raise ConfigError("--resume continues a run with its saved config; it cannot be combined with "
                              "--preset, --config or --name (use --set generations=N to extend it)")
        folder = RunFolder(args.resume)
        saved = folder.read_config()
        config = resume_config(saved, split_pairs(args.settings))
        ensure_writable_dir(folder.path, "run folder")
        # Before compiling anything (run_sweep checks the checkpoint it restores too).
        folder.check_generations(config.generations, folder.latest_generation())
        return config, folder, saved["name"], True
    base = get_preset(args.preset or "quick")
    config = load_config_file(args.config, base) if args.config else base
    config = apply_sweep_overrides(config, args.settings).validate()
    name = args.name or f"{args.preset or 'quick'}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not name or os.sep in name or name in (".", ".."):
        raise ConfigError(f"--name {name!r} is not allowed; use a plain folder name")
    return config, RunFolder.create(args.runs_dir, name), name, False


def cmd_sweep(args) -> int:
    if args.distributed:
        initialize_distributed()  # done already when run as `discover sweep --distributed`
    config, folder, name, resume = resolve_sweep(args)
    run_dir = folder.path
    console = Console(stderr=True)
    console.print(f"sweep [bold]{name}[/] -> {run_dir}: {config.strategy.name}, population "
                  f"{config.population_size} x {config.seeds_per_member} seeds x {', '.join(config.envs)}"
                  f"{' (held out: ' + ', '.join(config.test_envs) + ')' if config.test_envs else ''}, "
                  f"{config.generations} generations, drift {config.drift}, wandb {args.wandb}")

    stop = {"requested": False}

    def on_sigint(signum, frame):
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        console.print("[yellow]Ctrl-C: finishing this generation, then saving a checkpoint "
                      "(Ctrl-C again to stop now)[/]")

    previous = signal.signal(signal.SIGINT, on_sigint)
    progress = progress_display(console, TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("gens  best {task.fields[best]}  mean {task.fields[mean]}"
                                           "  noise {task.fields[noise]}{task.fields[test]}"),
                                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), unit="generations")
    task = progress.add_task("compiling", total=config.generations, best="-", mean="-", noise="-", test="")

    def on_start(done, total):
        progress.update(task, completed=done, total=total)

    def on_generation(row):
        held_out = {"test": f"  held-out {row['test_fitness']:.3f}"} if "test_fitness" in row else {}
        progress.update(task, completed=row["generation"], description="generation",
                        best=f"{row['best_fitness_so_far']:.3f}", mean=f"{row['fitness_mean']:.3f}",
                        noise=noise_text(row), **held_out)

    try:
        with progress:
            outcome = run_sweep(config, run_dir, name=name, resume=resume, wandb_mode=args.wandb,
                                on_start=on_start, on_generation=on_generation,
                                stop_requested=lambda: stop["requested"], log=console.print)
    except BaseException:
        if not resume:
            folder.remove_unstarted()
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    if outcome.interrupted:
        console.print(f"stopped after generation {outcome.generation}; continue with "
                      f"[bold]discover sweep --resume {run_dir}[/]")
        return EXIT_INTERRUPTED
    last = outcome.last_metrics or {}
    held_out = f", held-out fitness {last['test_fitness']:.3f}" if "test_fitness" in last else ""
    console.print(f"done: {outcome.generation} generations; last mean fitness {last.get('fitness_mean', float('nan')):.3f}, "
                  f"mean drift fitness {last.get('mean_drift_fitness', float('nan')):.3f}{held_out}; run folder {run_dir}")
    if "mean_formula" in last:
        console.print(f"mean drift: {last['mean_formula']}")
    if args.wandb == "offline":
        console.print(f"upload the wandb run later with: wandb sync {folder.wandb_dir}/offline-run-*")
    return 0
