"""How noisy is a sweep's search? A member's fitness standard error beside the population's spread.

    python scripts/search_noise.py --preset quick --seeds 2 4 8 --generations 6
    python scripts/search_noise.py --preset transfer --seeds 2 4 --set population_size=32

For each `seeds_per_member` value, runs the preset's first generations (the same sweep seed,
so the same start and ES draws) and reports per generation the root-mean-square standard error
of a member's fitness over its seeds (`fitness_noise`), the population's spread (`fitness_std`),
their ratio (`fitness_snr`) and the seconds a generation takes after compilation. An SNR near 1
means a generation's ranking is mostly the seeds' noise; the ES's step then follows the noise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from inner_loop.cpu import configure_cpu

configure_cpu()  # first: gymnax and evosax start jax when imported; a CPU device per core

import jax  # noqa: E402

from discover.sweep.config import apply_sweep_overrides, get_preset  # noqa: E402
from discover.sweep.machinery import build_machinery, normalisation, resolve_references  # noqa: E402


def measure(config, generations: int) -> dict:
    """Per-generation noise, spread and SNR of `config`'s first `generations` generations."""
    references, test_references = resolve_references(config, log=lambda line: print(line, file=sys.stderr))
    machinery = build_machinery(config, normalisation(references), normalisation(test_references))
    state, rows, seconds = machinery.initial_state, [], []
    for generation in range(generations + 1):  # the first call compiles and is not timed
        start = time.perf_counter()
        state, metrics = machinery.run_generations(state, 1)
        metrics = jax.device_get(metrics)
        seconds.append(time.perf_counter() - start)
        rows.append({k: float(metrics[k][0]) for k in ("fitness_mean", "fitness_std", "fitness_noise", "fitness_snr")})
    return {"rows": rows, "seconds_per_generation": statistics.median(seconds[1:]),
            **{f"median_{k}": statistics.median(r[k] for r in rows) for k in ("fitness_std", "fitness_noise",
                                                                              "fitness_snr")}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 4, 8], help="seeds_per_member values")
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--set", nargs="+", default=[], dest="settings", help="sweep overrides, key=value")
    parser.add_argument("--out", help="write the measurements as JSON here")
    args = parser.parse_args(argv)
    base = apply_sweep_overrides(get_preset(args.preset), args.settings)
    results = {}
    for seeds in args.seeds:
        config = apply_sweep_overrides(base, [f"seeds_per_member={seeds}"]).validate()
        results[seeds] = measure(config, args.generations)
        r = results[seeds]
        print(f"{args.preset} seeds_per_member={seeds} population={config.population_size}: noise "
              f"{r['median_fitness_noise']:.3f}, spread {r['median_fitness_std']:.3f}, SNR {r['median_fitness_snr']:.2f}, "
              f"{r['seconds_per_generation']:.1f} s per generation (medians of {args.generations + 1})", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"preset": args.preset, "settings": args.settings, "generations": args.generations + 1,
                       "by_seeds_per_member": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
