"""Benchmark of the outer loop: what the evolution machinery costs on top of the inner loop.

For a sweep preset (default `quick`) it times, after compilation:
  * a whole generation (ask, evaluate population x seeds x envs, tell), jitted as in the sweep;
  * the same population evaluated by the inner loop alone (the vmapped trainers, no ES);
and reports env steps per second of both, their ratio (target: the machinery costs <= 5%),
seconds per generation, compile seconds, XLA's memory analysis and the process's peak RSS.

    python scripts/bench_outer.py [--preset quick] [--generations 5] [--set key=value ...] [--out FILE]
"""

from __future__ import annotations

import argparse
from inner_loop.cpu import configure_cpu

configure_cpu()  # first: gymnax and evosax start jax when imported; a CPU device per core

import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from discover.files.atomic import package_versions, write_json_atomic  # noqa: E402
from discover.training.references import find_reference  # noqa: E402
from discover.sweep.machinery import build_machinery, normalisation, strong_types  # noqa: E402
from discover.sweep.config import apply_sweep_overrides, get_preset  # noqa: E402
from inner_loop import make_train  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--generations", type=int, default=5, help="timed generations (default 5)")
    parser.add_argument("--set", dest="settings", action="append", default=[])
    parser.add_argument("--out", default=None, help="write the numbers as JSON")
    args = parser.parse_args()

    config = apply_sweep_overrides(get_preset(args.preset), args.settings).validate()
    train_configs = config.train_configs()
    entries = [find_reference(c) or {"ppo_reference_return": 1.0} for c in train_configs]
    machinery = build_machinery(config, normalisation(entries))
    steps = machinery.env_steps_per_generation

    # A whole generation, as the sweep runs it.
    start = time.perf_counter()
    state, _ = machinery.run_generations(machinery.initial_state, 1)
    jax.block_until_ready(state)
    generation_compile = time.perf_counter() - start
    per_generation = []
    for _ in range(args.generations):
        start = time.perf_counter()
        state, metrics = machinery.run_generations(state, 1)
        jax.block_until_ready((state, metrics))
        per_generation.append(time.perf_counter() - start)

    # The same population through the inner loop alone: trainers vmapped over members x seeds.
    population, _ = machinery.strategy.ask(jax.random.PRNGKey(1), strong_types(state).es_state,
                                           machinery.es_params)
    trainers = [make_train(c, machinery.drift) for c in train_configs]
    keys = jax.random.split(jax.random.PRNGKey(2), config.seeds_per_member)

    def inner_only(population, keys):
        return [jax.vmap(lambda p: jax.vmap(lambda k: t(k, p)["final_return"])(keys))(population)
                for t in trainers]

    start = time.perf_counter()
    inner = jax.jit(inner_only).lower(population, keys).compile()
    inner_compile = time.perf_counter() - start
    memory = inner.memory_analysis()
    inner_times = []
    for i in range(args.generations):
        keys_i = jax.random.split(jax.random.PRNGKey(100 + i), config.seeds_per_member)
        start = time.perf_counter()
        jax.block_until_ready(inner(population, keys_i))
        inner_times.append(time.perf_counter() - start)

    generation_s, inner_s = float(np.median(per_generation)), float(np.median(inner_times))
    results = {
        "preset": args.preset, "config": config.to_dict(), "devices": [str(d) for d in jax.devices()],
        "env_steps_per_generation": steps,
        "generation_seconds_median": generation_s, "generation_seconds": per_generation,
        "inner_only_seconds_median": inner_s, "inner_only_seconds": inner_times,
        "generation_env_steps_per_second": steps / generation_s,
        "inner_only_env_steps_per_second": steps / inner_s,
        "machinery_overhead": generation_s / inner_s - 1.0,
        "generation_compile_seconds": generation_compile, "inner_only_compile_seconds": inner_compile,
        "xla_temp_bytes_inner": getattr(memory, "temp_size_in_bytes", None),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "versions": package_versions(),
    }
    table = Table(title=f"outer loop, preset {args.preset}: {config.population_size} members x "
                        f"{config.seeds_per_member} seeds x {len(train_configs)} env(s), {steps:,} env steps/generation")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in [
        ("generation (ask+eval+tell), s", f"{generation_s:.2f}"),
        ("inner loop alone, s", f"{inner_s:.2f}"),
        ("generation env steps/s", f"{steps / generation_s:,.0f}"),
        ("inner loop alone env steps/s", f"{steps / inner_s:,.0f}"),
        ("evolution machinery overhead", f"{100 * (generation_s / inner_s - 1):+.1f}%"),
        ("compile: generation / inner alone, s", f"{generation_compile:.1f} / {inner_compile:.1f}"),
        ("XLA temp memory (inner), MiB", f"{(results['xla_temp_bytes_inner'] or 0) / 2**20:.1f}"),
        ("peak RSS, MiB", f"{results['peak_rss_mib']:.0f}"),
    ]:
        table.add_row(label, value)
    Console().print(table)
    if args.out:
        write_json_atomic(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
