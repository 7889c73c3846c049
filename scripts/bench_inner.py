"""Inner-loop speed: env steps per second, compile time, memory vs. run length.

    python scripts/bench_inner.py [--quick] [--repeats 5] [--out results/bench_inner.json]

Rows:
  * the peer reference configs measured on the issue author's 2-core CPU with other JAX
    PPO code: Breakout-MinAtar 64 envs x 128 steps, 4 epochs, 8 minibatches, 64x64 MLP,
    one seed (~79,000 steps/s); CartPole-v1 8 envs x 128 steps, 4 seeds (~146,000-172,000);
    8 hyperparameter variants x 4 seeds (~236,000). Target: 1.2x those;
  * the same three configs run by `peer_ppo.py`, a plain PPO built the way those peers are
    (a vmap on one device), timed here beside ours: steps/s depend on the host, the ratio to
    the yardstick less so. Ours run as the product runs them, the vmapped runs split over all
    local devices (on CPU, `inner_loop` makes one device per core), and once more on one
    device, on the yardstick's footing;
  * PPO and `lpo` on CartPole-v1 and Breakout-MinAtar for 1, 8 and 32 vmapped members
    (`lpo`: a population of drift params; PPO: learning-rate variants), one seed each;
    target: `lpo` within 15% of PPO;
  * memory: XLA's buffer sizes of the compiled trainer for 10x more updates (flat = same).
Env steps are counted over all vmapped runs; timings exclude compilation. Runs that are
compared (ours vs the yardstick, lpo vs PPO) alternate their calls; each row is its fastest
of `--repeats` calls.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import inner_loop  # noqa: F401  (XLA flag before jax)
import jax
import jax.numpy as jnp
from rich.console import Console
from rich.table import Table

from discover.files.atomic import write_json_atomic
from inner_loop import drifts, make_train, preset
from inner_loop.parallel import pad_runs, padded_size, runs_mesh, shard_runs
from peer_ppo import make_peer_train

REFERENCE = {"breakout_1seed": 79_000, "cartpole_4seeds": 172_000, "cartpole_8x4": 236_000}


def config_for(env_id: str, updates: int):
    cfg = preset(env_id)
    if env_id == "CartPole-v1":
        cfg = cfg.replace(num_envs=8)  # the reference: 8 envs x 128 steps
    return cfg.replace(total_timesteps=cfg.batch_size * updates)


def prepare(env_id: str, drift_name: str, members: int, seeds: int, updates: int, devices: int | None = None) -> dict:
    """Compile `members` x `seeds` vmapped runs (members: lpo params or PPO lr variants;
    `peer`: the yardstick of peer_ppo.py on the same config) and run them once (warm-up).

    Ours run as the product runs them: the members x seeds runs split over all local devices
    (`inner_loop.parallel`; on CPU one device per core), or over the first `devices` of
    them. The yardstick runs as its peers do: a plain vmap on one device."""
    config = config_for(env_id, updates)
    keys = jax.random.split(jax.random.PRNGKey(1), seeds)
    if drift_name == "peer":
        train = make_peer_train(env_id, config.num_envs, config.num_steps, config.update_epochs,
                                config.num_minibatches, config.num_updates, config.hidden_size, config.activation)
        lrs = config.lr * (jnp.logspace(-0.5, 0.5, members) if members > 1 else jnp.ones(1))
        fn = jax.jit(jax.vmap(jax.vmap(train, in_axes=(0, None)), in_axes=(None, 0)))
        args = (keys, lrs)
        used_devices = 1
    else:
        if drift_name == "lpo":
            drift = drifts.get("lpo", init_scale=0.1)
            params = jax.vmap(drift.init)(jax.random.split(jax.random.PRNGKey(0), members))
            train = make_train(config, drift)
            hparams = jax.tree.map(lambda x: jnp.broadcast_to(x, (members,)), train.default_hparams())
        else:
            train = make_train(config, drifts.get("ppo"))
            params = {}
            base = train.default_hparams()
            hparams = jax.tree.map(lambda x: jnp.broadcast_to(x, (members,)), base).replace(
                lr=base.lr * jnp.logspace(-0.5, 0.5, members) if members > 1 else base.lr[None])
        mesh = runs_mesh(members * seeds, jax.local_devices()[:devices])
        if mesh is None:
            over_seeds = jax.vmap(train, in_axes=(0, None, None))
            fn = jax.jit(jax.vmap(over_seeds, in_axes=(None, 0 if drift_name == "lpo" else None, 0)))
            args = (keys, params, hparams)
        else:  # one flat axis of members x seeds runs, split over the devices
            runs = padded_size(members * seeds, mesh)
            flat = (jnp.tile(keys, (members, 1)),
                    jax.tree.map(lambda x: jnp.repeat(x, seeds, axis=0), params),
                    jax.tree.map(lambda x: jnp.repeat(x, seeds, axis=0), hparams))
            args = pad_runs(flat, runs)
            fn = jax.jit(shard_runs(jax.vmap(train), mesh))
        used_devices = 1 if mesh is None else mesh.size
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_seconds = time.perf_counter() - t0
    out = jax.block_until_ready(compiled(*args))  # warm-up (allocations)
    finite = out if drift_name == "peer" else out["value_loss"]
    return {"compiled": compiled, "args": args, "times": [],
            "row": {"env": env_id, "drift": drift_name, "members": members, "seeds": seeds, "devices": used_devices,
                    "num_envs": config.num_envs, "num_steps": config.num_steps, "updates": config.num_updates,
                    "env_steps": members * seeds * config.env_steps, "compile_seconds": compile_seconds,
                    "finite": bool(jnp.all(jnp.isfinite(finite)))}}


def measure_together(runs: list[tuple], repeats: int) -> list[dict]:
    """Time runs that are compared with each other (ours vs the yardstick, lpo vs ppo) by
    alternating their calls, `repeats` each, and keep the fastest call of each. On a shared
    host the speed drifts by 20-30% over minutes; alternating exposes the runs of one
    comparison to the same drift, and the slower calls measure the neighbours."""
    prepared = [prepare(*run) for run in runs]
    for _ in range(repeats):
        for p in prepared:
            t0 = time.perf_counter()
            jax.block_until_ready(p["compiled"](*p["args"]))
            p["times"].append(time.perf_counter() - t0)
    rows = []
    for p in prepared:
        row, times = p["row"], p["times"]
        row.update(seconds=min(times), median_seconds=statistics.median(times),
                   env_steps_per_second=row["env_steps"] / min(times))
        rows.append(row)
    return rows


def memory_by_run_length(env_id: str, updates: list[int]) -> list[dict]:
    rows = []
    for n in updates:
        train = make_train(config_for(env_id, n), drifts.get("ppo"))
        analysis = jax.jit(train).lower(jax.random.PRNGKey(0), {}).compile().memory_analysis()
        rows.append({"env": env_id, "updates": n, "temp_bytes": int(analysis.temp_size_in_bytes),
                     "output_bytes": int(analysis.output_size_in_bytes)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer updates (a smoke run, noisy numbers)")
    parser.add_argument("--out", default="results/bench_inner.json")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per run (the fastest counts)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats} is not allowed; it must be >= 1")
    cart_updates, breakout_updates = (4, 2) if args.quick else (40, 6)
    # piped into a log, rich would squeeze the 8-column table into 80 columns
    console = Console(width=None if sys.stdout.isatty() else 150)

    # (label, env, drift, members, seeds, updates, devices, reference); the runs of one
    # group alternate. Ours run on all local devices (the product's default) and, for the
    # same-footing comparison with the one-device yardstick, on one device.
    groups = []
    for label, env_id, members, seeds, updates, ref in (
            ("Breakout 1 seed", "Breakout-MinAtar", 1, 1, breakout_updates, "breakout_1seed"),
            ("CartPole 4 seeds", "CartPole-v1", 1, 4, cart_updates, "cartpole_4seeds"),
            ("CartPole 8 variants x 4 seeds", "CartPole-v1", 8, 4, cart_updates, "cartpole_8x4")):
        who = [("ours", "ppo", None), ("ours, 1 device", "ppo", 1), ("yardstick", "peer", 1)]
        if members * seeds == 1 or len(jax.local_devices()) == 1:
            who = who[1:]  # one run, or one device: nothing to split
        groups.append([(f"{name}: {label}", env_id, drift, members, seeds, updates, devices, ref)
                       for name, drift, devices in who])
    for env_id, updates in (("CartPole-v1", cart_updates), ("Breakout-MinAtar", breakout_updates)):
        for members in (1, 8, 32):
            groups.append([(f"{name} x {members}", env_id, name, members, 1, updates, None, None)
                           for name in ("ppo", "lpo")])

    rows = []
    for group in groups:
        measured = measure_together([(env_id, name, members, seeds, updates, devices)
                                     for _, env_id, name, members, seeds, updates, devices, _ in group], args.repeats)
        for (label, env_id, *_, ref), row in zip(group, measured):
            row["label"] = label
            if ref:
                row["reference"] = ref
                row["reference_steps_per_second"] = REFERENCE[ref]
                row["vs_reference"] = row["env_steps_per_second"] / REFERENCE[ref]
            rows.append(row)
            console.print(f"{label:42s} {env_id:17s} {row['devices']} dev {row['env_steps_per_second']:>10,.0f} steps/s  "
                          f"compile {row['compile_seconds']:.1f}s" + (f"  {row['vs_reference']:.2f}x ref" if ref else ""))
    yardstick = {r["reference"]: r for r in rows if r["drift"] == "peer"}
    for r in rows:
        if r["drift"] == "ppo" and r.get("reference") in yardstick:
            r["vs_yardstick"] = r["env_steps_per_second"] / yardstick[r["reference"]]["env_steps_per_second"]

    table = Table(title="inner loop: env steps per second (excl. compile)")
    for col in ("run", "env", "members x seeds", "devices", "steps/s", "compile s", "vs reference", "vs yardstick",
                "lpo / ppo"):
        table.add_column(col, justify="right")
    by = {(r["env"], r["drift"], r["members"], r["seeds"]): r for r in rows if "reference" not in r}
    for r in rows:
        ratio = ""
        if r["drift"] == "lpo" and (r["env"], "ppo", r["members"], r["seeds"]) in by:  # same devices
            r["lpo_over_ppo"] = r["env_steps_per_second"] / by[r["env"], "ppo", r["members"], r["seeds"]]["env_steps_per_second"]
            ratio = f"{r['lpo_over_ppo']:.2f}"
        table.add_row(r["label"], r["env"], f"{r['members']} x {r['seeds']}", str(r["devices"]),
                      f"{r['env_steps_per_second']:,.0f}",
                      f"{r['compile_seconds']:.1f}", f"{r['vs_reference']:.2f}x" if "vs_reference" in r else "",
                      f"{r['vs_yardstick']:.2f}x" if "vs_yardstick" in r else "", ratio)
    console.print(table)

    memory = memory_by_run_length("Breakout-MinAtar", [10, 100]) + memory_by_run_length("CartPole-v1", [10, 1000])
    for m in memory:
        console.print(f"memory {m['env']:17s} {m['updates']:5d} updates: temp {m['temp_bytes'] / 2**20:8.2f} MiB, "
                      f"output {m['output_bytes'] / 2**10:8.1f} KiB")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_json_atomic(args.out, {"device": str(jax.devices()[0]), "local_devices": len(jax.local_devices()),
                                 "cpu_count": os.cpu_count(), "runs": rows,
                                 "memory": memory})
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
