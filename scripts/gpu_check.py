"""GPU check: env steps/s of 1, 8, 64 and 512 vmapped PPO runs on Breakout-MinAtar (its preset,
`--updates` updates each, as `discover train` runs them), then two generations of the
`minatar` preset with the real population (64 members x 4 seeds x 4 games), inner runs
shortened so the check takes minutes: the time of each generation, env steps/s, and the peak
accelerator memory. `--out FILE` writes the numbers as JSON.

    bash scripts/gpu_check.sh                      # on a GPU machine (pip install -e ".[cuda]")
    bash scripts/gpu_check.sh --runs 1 2 --set population_size=4 seeds_per_member=1 total_timesteps=2048  # CPU smoke

A full generation's time is extrapolated from the shortened one (inner cost is linear in steps).
"""

from __future__ import annotations

import argparse
import sys
import time

from inner_loop.cpu import configure_cpu

configure_cpu()  # first: gymnax and evosax start jax when imported; a CPU device per core

import jax  # noqa: E402

from discover.files.atomic import write_json_atomic  # noqa: E402
from discover.sweep.config import apply_sweep_overrides, get_preset  # noqa: E402
from discover.sweep.machinery import build_machinery  # noqa: E402
from discover.training.seeds import SeedRunner  # noqa: E402
from inner_loop import drifts, preset  # noqa: E402
from outer_loop import Normalisation  # noqa: E402

SHORT = ["total_timesteps=524288",  # 1/19 of the preset's 1e7 steps per run: two generations in minutes
         "final_window=0.3"]  # 20 of 64 updates, 2560 steps per env: Freeway's 2500-step episodes end there


def peak_memory() -> str:
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return f"{peak / 2**30:.2f} GiB" if peak else "n/a (this backend reports no memory stats)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="settings", action="extend", nargs="+", default=[], metavar="KEY=VALUE")
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 8, 64, 512], help="vmapped run counts to time")
    parser.add_argument("--updates", type=int, default=4, help="Breakout updates per timed run")
    parser.add_argument("--out", default=None, help="write the numbers as JSON")
    args = parser.parse_args()
    results = {"device": str(jax.devices()[0]), "vmapped_runs": [], "generations": []}
    breakout = preset("Breakout-MinAtar")
    breakout = breakout.replace(total_timesteps=breakout.batch_size * args.updates)
    for runs in args.runs:
        runner = SeedRunner(breakout, drifts.get("ppo"), {}, runs)
        runner(jax.random.PRNGKey(0))  # warm-up
        result = runner(jax.random.PRNGKey(1))
        results["vmapped_runs"].append({"runs": runs, "env_steps_per_second": result.env_steps_per_second,
                                        "compile_seconds": runner.compile_seconds})
        print(f"vmapped runs {runs}: {result.env_steps_per_second:,.0f} env steps/s (Breakout-MinAtar, "
              f"{args.updates} updates; compile {runner.compile_seconds:.1f} s)", flush=True)
    full = get_preset("minatar")
    config = apply_sweep_overrides(full, SHORT + args.settings).validate()
    print(f"device: {jax.devices()[0].device_kind} x {jax.device_count()} ({jax.default_backend()}); "
          f"population {config.population_size} x {config.seeds_per_member} seeds x {', '.join(config.envs)}, "
          f"{config.train_configs()[0].total_timesteps:,} steps per run", flush=True)
    # Fitness normalisers do not change the cost; the stored references are for the full runs.
    machinery = build_machinery(config, Normalisation(ppo=[1.0] * len(config.envs), untrained=[0.0] * len(config.envs)))
    state, steps = machinery.initial_state, machinery.env_steps_per_generation
    for generation in (1, 2):
        start = time.perf_counter()
        state, metrics = machinery.run_generations(state, 1)
        jax.block_until_ready((state, metrics))
        seconds = time.perf_counter() - start
        label = "(with compilation)" if generation == 1 else ""
        print(f"generation {generation}: {seconds:.1f} s {label}, {steps / seconds:,.0f} env steps/s, "
              f"mean fitness {float(metrics['fitness_mean'][0]):.3f}, peak memory {peak_memory()}", flush=True)
        results["generations"].append({"generation": generation, "seconds": seconds, "env_steps": steps,
                                       "peak_memory": peak_memory()})
    full_steps = steps * full.train_configs()[0].total_timesteps / config.train_configs()[0].total_timesteps
    results["full_generation_seconds"] = full_steps / (steps / seconds)
    if args.out:
        write_json_atomic(args.out, results)
    print(f"a full minatar generation ({full_steps:,.0f} env steps) at this rate: "
          f"{results['full_generation_seconds']:,.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
