"""Paired throughput benchmark: our inner loop against peer PPO code, its progress display, and
a sweep generation against the inner loop alone.

    python scripts/bench_inner.py [--pairs 5] [--updates 10] [--rejax-python PATH] [--only NAME ...]
                                  [--out docs/results/throughput/bench.json]

Every comparison compiles its two sides, runs each once (warm-up), then alternates their timed
calls, A B, B A, A B, ... (`--pairs` pairs; one A B alternation cannot resolve 5 % on a host
whose speed drifts 10 % from run to run). Per pair: the speed ratio A / B (same env steps per
call on both sides). Reported: the median of the pair ratios, their min and max, and each
side's median env steps/s. Compilation is never timed.

Comparisons (Breakout-MinAtar: 64 envs x 128 steps, 4 epochs, 8 minibatches, 64x64 ReLU MLP,
lr 1e-2, as the issue's measurements; `--updates` updates per call):
  * `peer-1`, `peer-8`: ours as `discover train` runs it (`SeedRunner` with the progress display,
    seeds split over the local devices) against `peer_ppo.py`, a single-file PPO built as
    purejaxrl builds it (one vmap on one device), 1 and 8 seeds;
  * `rejax-1`, `rejax-8`: the same against rejax 0.1.3's PPO, run by `rejax_peer.py` in its own
    venv (`--rejax-python`; skipped without it);
  * `progress-8`: ours with the progress display (chunks sized by time) against ours as one
    compiled call, 8 seeds: the display's cost;
  * `generation`: a `quick` sweep generation (ask, evaluate, tell) against the same population
    evaluated by the inner loop alone (`make_population_fitness`): the ES machinery's cost;
  * `baseline-1`, `baseline-8`, `baseline-generation`: ours (or a `quick` generation) against the
    same in another checkout (`--baseline-repo`, e.g. a
    `git worktree` of the commit before a change), that checkout's copy of this script serving
    its side in a subprocess.
Also: XLA's buffer sizes of the compiled trainer for 10x more updates (flat = memory does not
grow with run length).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

from inner_loop.cpu import configure_cpu

configure_cpu()  # first: gymnax and evosax start jax when imported; a CPU device per core

import jax  # noqa: E402
from rich.console import Console  # noqa: E402

from discover.files.atomic import package_versions, write_json_atomic  # noqa: E402
from discover.sweep.config import get_preset  # noqa: E402
from discover.sweep.machinery import build_machinery, normalisation, strong_types  # noqa: E402
from discover.training.references import find_reference  # noqa: E402
from discover.training.seeds import SeedRunner  # noqa: E402
from inner_loop import drifts, make_train, preset  # noqa: E402
from inner_loop.parallel import pad_runs, padded_size, runs_mesh, shard_runs  # noqa: E402
from outer_loop import make_population_fitness  # noqa: E402
from outer_loop.sharding import member_mesh  # noqa: E402
from peer_ppo import make_peer_train  # noqa: E402

ENV_ID = "Breakout-MinAtar"


def breakout(updates: int):
    config = preset(ENV_ID)
    return config.replace(total_timesteps=config.batch_size * updates)


class Ours:
    """`discover train`'s path: a SeedRunner, with the progress display (chunks by time) or in one call."""

    def __init__(self, updates: int, seeds: int, progress: bool = True):
        config = breakout(updates)
        self.runner = SeedRunner(config, drifts.get("ppo"), {}, seeds)
        self.progress, self.steps = progress, seeds * config.env_steps
        self.devices = 1 if self.runner.mesh is None else self.runner.mesh.size

    def __call__(self) -> float:
        return self.runner(jax.random.PRNGKey(1), (lambda done, total: None) if self.progress else None).run_seconds


class OneCall:
    """Ours as one compiled function: init, every update and the summary in one program."""

    def __init__(self, updates: int, seeds: int):
        config = breakout(updates)
        train, mesh = make_train(config, drifts.get("ppo")), runs_mesh(seeds)
        self.keys = pad_runs(jax.random.split(jax.random.PRNGKey(1), seeds), padded_size(seeds, mesh))
        self.fn = jax.jit(shard_runs(lambda keys: jax.vmap(train, in_axes=(0, None))(keys, {}), mesh)).lower(
            self.keys).compile()
        self.steps, self.devices = seeds * config.env_steps, 1 if mesh is None else mesh.size

    def __call__(self) -> float:
        start = time.perf_counter()
        jax.block_until_ready(self.fn(self.keys))
        return time.perf_counter() - start


class Peer:
    """`peer_ppo.py` (purejaxrl's design): one vmap over seeds on one device."""

    def __init__(self, updates: int, seeds: int):
        c = breakout(updates)
        train = make_peer_train(ENV_ID, c.num_envs, c.num_steps, c.update_epochs, c.num_minibatches,
                                c.num_updates, c.hidden_size, c.activation)
        self.keys = jax.random.split(jax.random.PRNGKey(1), seeds)
        self.fn = jax.jit(jax.vmap(train, in_axes=(0, None))).lower(self.keys, c.lr).compile()
        self.lr, self.steps, self.devices = c.lr, seeds * c.env_steps, 1

    def __call__(self) -> float:
        start = time.perf_counter()
        jax.block_until_ready(self.fn(self.keys, self.lr))
        return time.perf_counter() - start


class _Subprocess:
    """A side timed in another process: one timed call per line sent, its seconds read back."""

    def _start(self, argv: list[str], **popen) -> list[str]:
        """Start the process; the words of its `ready ...` line after `ready`."""
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **popen)
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError(f"{' '.join(argv)} did not start (said {line!r})")
        return line[1:]

    def __call__(self) -> float:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


class Rejax(_Subprocess):
    """rejax's PPO in its own venv (`rejax_peer.py`)."""

    def __init__(self, python: str, updates: int, seeds: int):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rejax_peer.py")
        self._start([python, script, ENV_ID, str(seeds), str(updates)], env={**os.environ, "XLA_FLAGS": ""})
        self.steps, self.devices = seeds * breakout(updates).env_steps, 1


class Served(_Subprocess):
    """One side run by another checkout's copy of this script (`--serve`), e.g. the code before a
    change: `--baseline-repo PATH` compares it with this checkout's, paired like the rest."""

    def __init__(self, repo: str, side: str, updates: int):
        script = os.path.join(repo, "scripts", "bench_inner.py")
        steps, devices = self._start([sys.executable, script, "--serve", side, "--updates", str(updates)], cwd=repo,
                                     env={**os.environ, "PYTHONPATH": repo})
        self.steps, self.devices = int(steps), int(devices)


def serve(side: str, updates: int) -> None:
    """`--serve KIND:SEEDS`: build that side, print `ready STEPS DEVICES`, then time one call per line read."""
    kind, seeds = side.split(":")
    kinds = {"ours": Ours, "onecall": OneCall, "peer": Peer, "generation": lambda updates, seeds: Generation()}
    timed = kinds[kind](updates, int(seeds))
    timed()  # warm-up
    print("ready", timed.steps, timed.devices, flush=True)
    for _ in sys.stdin:
        print(timed(), flush=True)


class Generation:
    """One generation of the `quick` sweep (ask, evaluate members x seeds x envs, tell), as the sweep calls it."""

    def __init__(self):
        config = get_preset("quick")
        entries = [find_reference(c) or {"ppo_reference_return": 1.0} for c in config.train_configs()]
        self.normalisation = normalisation(entries)
        self.machinery = build_machinery(config, self.normalisation)
        self.state, _ = self.machinery.run_generations(self.machinery.initial_state, 1)  # compiles
        jax.block_until_ready(self.state)
        self.config, self.steps = config, self.machinery.env_steps_per_generation
        self.devices = len(jax.local_devices())

    def __call__(self) -> float:
        start = time.perf_counter()
        self.state, metrics = self.machinery.run_generations(self.state, 1)
        jax.block_until_ready((self.state, metrics))
        return time.perf_counter() - start


class PopulationAlone:
    """The same population size, seeds and envs evaluated by the inner loop alone (no ask, no tell)."""

    def __init__(self, generation: Generation):
        config, machinery = generation.config, generation.machinery
        fitness = make_population_fitness(config.train_configs(), machinery.drift, generation.normalisation,
                                          config.seeds_per_member, mesh=member_mesh(config.population_size),
                                          randomize=config.randomize())
        self.population, _ = machinery.strategy.ask(jax.random.PRNGKey(1), strong_types(generation.state).es_state,
                                                    machinery.es_params)
        self.fn = jax.jit(fitness).lower(jax.random.PRNGKey(2), self.population).compile()
        self.calls, self.steps, self.devices = 0, generation.steps, generation.devices

    def __call__(self) -> float:
        self.calls += 1
        start = time.perf_counter()
        jax.block_until_ready(self.fn(jax.random.PRNGKey(2 + self.calls), self.population))
        return time.perf_counter() - start


def paired(a, b, pairs: int) -> dict:
    """Alternate the timed calls of `a` and `b` (A B, B A, ...) after a warm-up call of each."""
    a(), b()
    times_a, times_b = [], []
    for i in range(pairs):
        for side, times in ((a, times_a), (b, times_b)) if i % 2 == 0 else ((b, times_b), (a, times_a)):
            times.append(side())
    ratios = [(tb / b.steps) / (ta / a.steps) for ta, tb in zip(times_a, times_b)]  # speed of A over B
    return {"ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "ratios": ratios, "a_steps_per_second": a.steps / statistics.median(times_a),
            "b_steps_per_second": b.steps / statistics.median(times_b), "a_seconds": times_a, "b_seconds": times_b,
            "a_devices": a.devices, "b_devices": b.devices, "env_steps_per_call": a.steps}


def memory_by_run_length(env_id: str, updates: list[int]) -> list[dict]:
    rows = []
    for n in updates:
        config = preset(env_id)
        train = make_train(config.replace(total_timesteps=config.batch_size * n), drifts.get("ppo"))
        analysis = jax.jit(train).lower(jax.random.PRNGKey(0), {}).compile().memory_analysis()
        rows.append({"env": env_id, "updates": n, "temp_bytes": int(analysis.temp_size_in_bytes),
                     "output_bytes": int(analysis.output_size_in_bytes)})
    return rows


COMPARISONS = {  # name: (label A, label B, builder of (A, B) from the arguments)
    "peer-1": ("ours", "purejaxrl-style peer", lambda a: (Ours(a.updates, 1), Peer(a.updates, 1))),
    "peer-8": ("ours", "purejaxrl-style peer", lambda a: (Ours(a.updates, 8), Peer(a.updates, 8))),
    "rejax-1": ("ours", "rejax 0.1.3", lambda a: (Ours(a.updates, 1), Rejax(a.rejax_python, a.updates, 1))),
    "rejax-8": ("ours", "rejax 0.1.3", lambda a: (Ours(a.updates, 8), Rejax(a.rejax_python, a.updates, 8))),
    "progress-8": ("with progress", "one call", lambda a: (Ours(a.updates, 8), OneCall(a.updates, 8))),
    "generation": ("generation", "inner loop alone", lambda a: (lambda g: (g, PopulationAlone(g)))(Generation())),
    "baseline-1": ("this checkout", "baseline", lambda a: (Ours(a.updates, 1), Served(a.baseline_repo, "ours:1", a.updates))),
    "baseline-8": ("this checkout", "baseline", lambda a: (Ours(a.updates, 8), Served(a.baseline_repo, "ours:8", a.updates))),
    "baseline-generation": ("this checkout", "baseline",
                            lambda a: (Generation(), Served(a.baseline_repo, "generation:0", a.updates))),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=5, help="alternated pairs of timed calls (default 5)")
    parser.add_argument("--updates", type=int, default=10, help="Breakout updates (8,192 steps) per call")
    parser.add_argument("--rejax-python", default=None, help="python of a venv with rejax 0.1.3 and gymnax 0.0.9")
    parser.add_argument("--baseline-repo", default=None, help="another checkout, for the baseline-* comparisons")
    parser.add_argument("--only", nargs="+", choices=sorted(COMPARISONS), default=None)
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="results/bench_inner.json")
    args = parser.parse_args()
    for name in ("pairs", "updates"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)} is not allowed; it must be >= 1")
    if args.serve:
        return serve(args.serve, args.updates)
    console = Console(width=None if sys.stdout.isatty() else 150)
    names = args.only or [n for n in COMPARISONS if (args.rejax_python or not n.startswith("rejax"))
                          and (args.baseline_repo or not n.startswith("baseline"))]
    rows = []
    for name in names:
        label_a, label_b, build = COMPARISONS[name]
        a, b = build(args)
        row = {"name": name, "a": label_a, "b": label_b, **paired(a, b, args.pairs)}
        for side in (a, b):
            if hasattr(side, "close"):
                side.close()
        rows.append(row)
        console.print(f"{name:11s} {label_a} {row['a_steps_per_second']:>9,.0f} steps/s ({row['a_devices']} dev) | "
                      f"{label_b} {row['b_steps_per_second']:>9,.0f} ({row['b_devices']} dev) | ratio median "
                      f"{row['ratio_median']:.3f} [{row['ratio_min']:.3f}, {row['ratio_max']:.3f}]")
    memory = memory_by_run_length(ENV_ID, [10, 100])
    for m in memory:
        console.print(f"memory {m['env']} {m['updates']:4d} updates: temp {m['temp_bytes'] / 2**20:.2f} MiB")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_json_atomic(args.out, {
        "machine": {"platform": platform.platform(), "processor": _cpu_name(), "cpu_count": os.cpu_count(),
                    "devices": [str(d) for d in jax.local_devices()]},
        "pairs": args.pairs, "updates": args.updates, "comparisons": rows, "memory": memory,
        "versions": package_versions()})
    console.print(f"wrote {args.out}")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


if __name__ == "__main__":
    main()
