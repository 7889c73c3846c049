"""`discover sweep`: a resumable discovery sweep that writes a run folder and mirrors it to wandb.

Run folder (`<runs-dir>/<name>/`):

    config.json         the resolved sweep config (and each env's inner-loop config)
    references.json     PPO's and the untrained policy's return on each training env (`references`)
                        and held-out env (`test_references`): the fitness normalisers
    metrics.jsonl       one line per generation: fitness statistics, env steps, wall seconds,
                        and at checkpoints `mean_drift_fitness` and, with test_envs,
                        `test_fitness` and `test_fitness/<env>` -- the source of truth
    checkpoints/        gen_NNNNNN.npz: ES state + PRNG key + best-so-far, every K generations
                        and on Ctrl-C
    drifts/             gen_NNNNNN_{mean,best}.drift.npz at each checkpoint (drift file format)
    heatmaps/           gen_NNNNNN.png: the mean drift over (log r, A) beside PPO's
    wandb/              the wandb run (offline by default; `wandb sync` uploads it)

Resuming restores the checkpoint bit for bit and drops metric lines written after it, so an
interrupted-then-resumed sweep writes the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from discover.sweep.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from discover.files.atomic import ensure_writable_dir, package_versions, write_json_atomic
from discover.sweep.config import SweepConfig, apply_sweep_settings
from inner_loop import drifts
from inner_loop.errors import ConfigError
from inner_loop.parallel import runs_mesh
from outer_loop import (EvolutionState, Normalisation, evolve, make_drift_fitness, make_generation,
                        make_population_fitness, make_strategy, per_env_scores)
from outer_loop.sharding import member_mesh, replicate

WANDB_MODES = ("online", "offline", "disabled")
RESUMABLE_KEYS = ("generations", "checkpoint_every", "generations_per_call")
REFERENCE_SEEDS = 16  # seeds of a PPO reference measured at sweep start (when not stored)


@dataclass
class SweepOutcome:
    run_dir: str
    generation: int  # generations completed
    interrupted: bool
    last_metrics: dict | None


# Run folder --------------------------------------------------------------------------

def new_run_dir(runs_dir: str, name: str) -> str:
    run_dir = os.path.join(runs_dir, name)
    if os.path.exists(os.path.join(run_dir, "config.json")):
        raise ConfigError(f"run folder {run_dir!r} already holds a sweep; pick another --name or "
                          f"continue it with --resume {run_dir}")
    ensure_writable_dir(run_dir, "run folder")
    return run_dir


def read_run(run_dir: str, label: str = "--resume") -> dict:
    """The saved `config.json` of a run folder; ConfigError (naming `label`, the argument the
    user gave the folder with) if it is not a complete sweep run folder."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isdir(run_dir):
        raise ConfigError(f"{label} {run_dir!r}: no such folder")
    try:
        with open(path) as f:
            saved = json.load(f)
        SweepConfig.from_dict(saved["sweep"])
        if not isinstance(saved["name"], str) or not isinstance(saved["wandb_run_id"], str):
            raise TypeError
    except FileNotFoundError:
        raise ConfigError(f"{label} {run_dir!r} is not a sweep run folder (no config.json)") from None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as err:
        raise ConfigError(f"{label} {run_dir!r}: config.json is corrupt ({type(err).__name__})") from None
    except OSError as err:
        raise ConfigError(f"{label} {run_dir!r}: cannot read config.json ({err.strerror})") from None
    # config.json is written after references.json, so a run folder has both, unless damaged.
    try:
        with open(os.path.join(run_dir, "references.json")) as f:
            stored = json.load(f)
        references = stored["references"] + stored.get("test_references", [])
        if not all(isinstance(r["ppo_reference_return"], (int, float))
                   and isinstance(r.get("untrained_return", 0.0), (int, float)) for r in references):
            raise TypeError
    except FileNotFoundError:
        raise ConfigError(f"{label} {run_dir!r}: references.json is missing, so fitness cannot be "
                          "computed as before; start a new sweep") from None
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ConfigError(f"{label} {run_dir!r}: references.json is corrupt ({type(err).__name__})") from None
    return saved


def resume_config(saved: dict, settings: list[tuple[str, Any]]) -> SweepConfig:
    """The saved config with `settings` applied; only RESUMABLE_KEYS may change."""
    old = SweepConfig.from_dict(saved["sweep"])
    new = apply_sweep_settings(old, settings)
    for f in dataclasses.fields(SweepConfig):
        before, after = getattr(old, f.name), getattr(new, f.name)
        if before != after and f.name not in RESUMABLE_KEYS:
            raise ConfigError(f"--set {f.name}: conflicts with the run's config ({before!r} -> {after!r}); "
                              f"on --resume only {', '.join(RESUMABLE_KEYS)} can change")
    return new.validate()


def truncate_metrics(path: str, generation: int) -> list[dict]:
    """Keep metric lines of generations <= `generation` (drop what came after the checkpoint)."""
    kept = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    break  # a line cut by a crash: it and everything after are redone
                if row.get("generation", 0) <= generation:
                    kept.append(row)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in kept)
    os.replace(tmp, path)
    return kept


# PPO references ------------------------------------------------------------------------

def resolve_references(config: SweepConfig, log: Callable[[str], None]) -> tuple[list[dict], list[dict]]:
    """The PPO and untrained references of each training env and of each held-out env:
    stored data, else measured now. ConfigError if PPO does not beat the untrained policy."""
    from discover.training.references import check_learnable, find_reference, measure_reference, measure_untrained

    def resolve(i, train_config):
        key = jax.random.fold_in(jax.random.PRNGKey(10_000 + config.seed), i)
        entry = find_reference(train_config)
        if entry is None:
            log(f"no stored PPO reference for {train_config.env_id} with this inner config; "
                f"measuring it now ({REFERENCE_SEEDS} seeds)")
            entry = {**measure_reference(train_config, REFERENCE_SEEDS, key), "source": "measured at sweep start"}
        else:
            entry = {**entry, "source": "discover/data/ppo_references.json"}
            if "untrained_return" not in entry:
                log(f"no stored untrained return for {train_config.env_id}; measuring it now ({REFERENCE_SEEDS} seeds)")
                entry.update(measure_untrained(train_config, REFERENCE_SEEDS, key))
        check_learnable(entry)
        return entry

    configs = config.train_configs() + config.test_configs()
    entries = [resolve(i, c) for i, c in enumerate(configs)]
    return entries[:len(config.envs)], entries[len(config.envs):]


def normalisation(entries: list[dict]) -> Normalisation:
    """The fitness normalisers of these reference entries (untrained 0 in format-1 run folders)."""
    return Normalisation(ppo=[e["ppo_reference_return"] for e in entries],
                         untrained=[e.get("untrained_return", 0.0) for e in entries])


# The sweep -----------------------------------------------------------------------------

@dataclass
class _Machinery:
    """Compiled pieces of one sweep config."""

    drift: drifts.Drift
    strategy: Any
    es_params: Any
    initial_state: EvolutionState
    run_generations: Callable  # (state, n) -> (state, metrics stacked over n)
    mean_fitness: Callable  # (key, params) -> (fitness (1,), returns)
    test_fitness: Callable | None  # the same on the held-out envs (None without test_envs)
    test_references: Normalisation | None  # the held-out envs' normalisers
    env_steps_per_generation: int


def build_machinery(config: SweepConfig, references: Normalisation,
                    test_references: Normalisation | None = None) -> _Machinery:
    drift = config.make_drift()
    root = jax.random.PRNGKey(config.seed)
    init_key, es_key, run_key = jax.random.split(root, 3)
    solution = drift.init(init_key)
    strategy, es_params = make_strategy(config.strategy.name, config.population_size, solution,
                                        std=config.strategy.std, lr=config.strategy.lr,
                                        antithetic=config.strategy.antithetic)
    train_configs = config.train_configs()
    mesh = member_mesh(config.population_size)
    population_fitness = make_population_fitness(train_configs, drift, references, config.seeds_per_member,
                                                 mesh=mesh, randomize=config.randomize())
    generation = make_generation(strategy, es_params, population_fitness)
    initial = EvolutionState(strategy.init(es_key, solution, es_params), run_key)
    seeds_mesh = runs_mesh(config.mean_drift_seeds)
    mean_fitness = make_drift_fitness(train_configs, drift, references, config.mean_drift_seeds,
                                      mesh=seeds_mesh, randomize=config.randomize())
    # Held-out envs at their own configs: what a user running the drift there would see.
    test_fitness = (make_drift_fitness(config.test_configs(), drift, test_references, config.mean_drift_seeds,
                                       mesh=seeds_mesh) if config.test_envs and test_references else None)
    steps = config.population_size * config.seeds_per_member * sum(c.env_steps for c in train_configs)
    evolve_jit = jax.jit(lambda s, n: evolve(generation, s, n), static_argnums=1)

    def run_generations(state, n):
        # evosax returns some scalars weakly typed in one place and strongly in another;
        # jit keys its cache on weak types and shardings, so normalise both or calls recompile.
        return evolve_jit(replicate(strong_types(state), mesh), n)

    return _Machinery(drift=drift, strategy=strategy, es_params=es_params, initial_state=initial,
                      run_generations=run_generations,
                      mean_fitness=jax.jit(mean_fitness),
                      test_fitness=jax.jit(test_fitness) if test_fitness else None,
                      test_references=test_references,
                      env_steps_per_generation=steps)


def strong_types(tree):
    """The same arrays without JAX's weak-type flag (one jit signature for every call)."""
    return jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.asarray(x).dtype), tree)


def run_sweep(config: SweepConfig, run_dir: str, *, name: str, resume: bool = False, wandb_mode: str = "offline",
              on_start: Callable[[int, int], None] | None = None,
              on_generation: Callable[[dict], None] | None = None,
              stop_requested: Callable[[], bool] = lambda: False,
              log: Callable[[str], None] = print) -> SweepOutcome:
    """Run (or continue) the sweep in `run_dir` until `config.generations` or a stop request."""
    if wandb_mode not in WANDB_MODES:
        raise ConfigError(f"--wandb {wandb_mode!r} is not allowed; choose one of {', '.join(WANDB_MODES)}")
    writer = jax.process_index() == 0  # with jax.distributed, one process writes the run folder
    if writer and wandb_mode == "online":
        _require_wandb_login()  # now, not after the references and the compilation
    metrics_path = os.path.join(run_dir, "metrics.jsonl")
    references_path = os.path.join(run_dir, "references.json")
    if resume:
        saved = read_run(run_dir)  # config.json is written after references.json
        with open(references_path) as f:
            stored = json.load(f)
        references, test_references = stored["references"], stored.get("test_references", [])
        run_id = saved["wandb_run_id"]
    else:
        references, test_references = resolve_references(config, log)
        run_id = f"{name}-{time.strftime('%Y%m%d%H%M%S')}".replace("/", "-")[:64]
        saved = {"name": name, "sweep": config.to_dict(), "wandb_run_id": run_id,
                 "inner_configs": [c.to_dict() for c in config.train_configs()],
                 "test_inner_configs": [c.to_dict() for c in config.test_configs()],
                 "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": package_versions()}
        if writer:
            write_json_atomic(references_path, {"references": references, "test_references": test_references})

    machinery = build_machinery(config, normalisation(references), normalisation(test_references))
    template = {"evolution": machinery.initial_state,
                "best_params": machinery.strategy.get_mean(machinery.initial_state.es_state),
                "best_fitness": jnp.float32(-jnp.inf), "best_generation": jnp.int32(0)}
    checkpoints = os.path.join(run_dir, "checkpoints")
    state, generation, history, header = template, 0, [], {}
    last = latest_checkpoint(checkpoints) if resume else None
    if last is not None:
        state, header = load_checkpoint(last, template)
        generation = header["generation"]
        if generation > config.generations:
            raise ConfigError(f"generations={config.generations} is less than the {generation} generations "
                              f"{run_dir!r} has done; set generations >= {generation}")
        log(f"resuming {run_dir} from generation {generation}")
    if writer:
        write_json_atomic(os.path.join(run_dir, "config.json"), {**saved, "sweep": config.to_dict()})
        history = truncate_metrics(metrics_path, generation)

    wandb_run = _start_wandb(wandb_mode, run_dir, name, run_id, config, resume) if writer else None
    if on_start:
        on_start(generation, config.generations)
    wall_offset, env_steps = float(header.get("wall_seconds", 0.0)), int(header.get("env_steps", 0))
    started = time.perf_counter()
    row = history[-1] if history else None
    saved_generation = generation
    # The last generation whose whole call finished and whose metrics rows are all written,
    # with its state: the only point an unplanned checkpoint may be taken from. Mid-call (a
    # second Ctrl-C while a checkpoint's drift files are written, say) the state and the
    # rows disagree, so such a stop resumes from the last checkpoint and redoes the rest.
    committed = (generation, state, env_steps)

    def progress_header():
        return {"env_steps": env_steps, "wall_seconds": wall_offset + time.perf_counter() - started}

    def save_unless_saved():
        done, done_state, done_steps = committed
        if writer and done > saved_generation:
            save_checkpoint(checkpoints, done, done_state,
                            {**progress_header(), "env_steps": done_steps, "reason": "interrupted"})

    interrupted = False
    try:
        while generation < config.generations:
            if stop_requested():
                interrupted = True
                break
            next_checkpoint = (generation // config.checkpoint_every + 1) * config.checkpoint_every
            n = min(config.generations_per_call, config.generations - generation, next_checkpoint - generation)
            evolution, metrics = machinery.run_generations(state["evolution"], n)
            metrics = jax.device_get(metrics)
            state = {**state, "evolution": evolution}
            for i in range(n):
                generation += 1
                env_steps += machinery.env_steps_per_generation
                if metrics["fitness_max"][i] > float(state["best_fitness"]):
                    state = {**state, "best_fitness": jnp.float32(metrics["fitness_max"][i]),
                             "best_generation": jnp.int32(generation),
                             "best_params": jax.tree.map(lambda x: jnp.asarray(x[i]), metrics["best_member"])}
                row = {"generation": generation,
                       **{k: float(metrics[k][i]) for k in ("fitness_mean", "fitness_max", "fitness_min",
                                                             "fitness_std")},
                       "nonfinite_returns": int(metrics["nonfinite_returns"][i]),
                       "best_fitness_so_far": float(state["best_fitness"]),
                       "env_steps": env_steps, "wall_seconds": round(progress_header()["wall_seconds"], 3)}
                if generation % config.checkpoint_every == 0 or generation == config.generations:
                    row.update(_checkpoint(run_dir, config, machinery, state, generation,
                                           progress_header(), wandb_run, writer, name))
                    saved_generation = generation
                if writer:
                    _append_metrics(metrics_path, row)
                    if wandb_run is not None:
                        wandb_run.log({k: v for k, v in row.items() if k != "generation"}, step=generation)
                if on_generation:
                    on_generation(row)
            committed = (generation, state, env_steps)
    except BaseException:
        save_unless_saved()  # Ctrl-C twice, or an error: keep every finished generation
        raise
    finally:
        if wandb_run is not None:
            wandb_run.finish()
    if interrupted:
        save_unless_saved()
    return SweepOutcome(run_dir, generation, interrupted, row)


def _score_mean(config, machinery, mean_params, generation) -> dict:
    """The search mean's fitness on the training envs, and on the held-out envs (fresh seeds,
    the same normalisation; logged only, never used to select or export)."""
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed + 1), generation)
    fitness, returns = machinery.mean_fitness(key, mean_params)
    scores = {"mean_drift_fitness": float(fitness[0]), "_returns": np.asarray(returns[0]).tolist()}
    if machinery.test_fitness is not None:
        test_key = jax.random.fold_in(jax.random.PRNGKey(config.seed + 2), generation)
        test, test_returns = machinery.test_fitness(test_key, mean_params)
        norm = machinery.test_references
        per_env = np.asarray(per_env_scores(np.asarray(test_returns), np.asarray(norm.ppo), np.asarray(norm.untrained)))[0]
        scores["test_fitness"] = float(test[0])
        scores.update({f"test_fitness/{env}": float(x) for env, x in zip(config.test_envs, per_env)})
    return scores


def _checkpoint(run_dir, config, machinery, state, generation, header, wandb_run, writer, name) -> dict:
    """Checkpoint + mean-drift fitness (training and held-out envs) + drift files + heat map
    (+ wandb image and artifact); returns the metrics row's checkpoint fields."""
    from discover.files.drift_file import save_drift
    from discover.report.figures import drift_landscapes_png

    # On the host: the mean is scored on this process's devices, whatever mesh it came from.
    mean_params = jax.device_get(machinery.strategy.get_mean(state["evolution"].es_state))
    scores = _score_mean(config, machinery, mean_params, generation)
    returns = scores.pop("_returns")
    mean_fitness = scores["mean_drift_fitness"]
    if not writer:
        return scores
    drifts_dir = os.path.join(run_dir, "drifts")
    os.makedirs(drifts_dir, exist_ok=True)
    provenance = {"sweep": name, "sweep_config": config.to_dict(), "generation": generation,
                  "training_envs": list(config.envs)}
    mean_path = os.path.join(drifts_dir, f"gen_{generation:06d}_mean.drift.npz")
    save_drift(mean_path, machinery.drift, mean_params,
               {**provenance, "which": "mean", "fitness": mean_fitness,
                "fitness_seeds_per_env": config.mean_drift_seeds, "final_returns": returns,
                **({"test_envs": list(config.test_envs), "test_fitness": scores["test_fitness"]}
                   if config.test_envs else {})})
    save_drift(os.path.join(drifts_dir, f"gen_{generation:06d}_best.drift.npz"), machinery.drift,
               state["best_params"],
               {**provenance, "which": "best", "fitness": float(state["best_fitness"]),
                "fitness_seeds_per_env": config.seeds_per_member,
                "best_generation": int(state["best_generation"])})
    heatmap = os.path.join(run_dir, "heatmaps", f"gen_{generation:06d}.png")
    os.makedirs(os.path.dirname(heatmap), exist_ok=True)
    ppo = drifts.get("ppo")
    drift_landscapes_png([(f"mean drift, generation {generation}",
                           lambda r, a, p: machinery.drift(mean_params, r, a, p)),
                          ("PPO (eps 0.2)", lambda r, a, p: ppo({}, r, a, p))], heatmap)
    # The checkpoint last: a run stopped before it resumes from the previous one and writes
    # this generation's drift files and heat map again, so none is ever missing.
    save_checkpoint(os.path.join(run_dir, "checkpoints"), generation, state, header)
    if wandb_run is not None:
        import wandb

        wandb_run.log({"drift_heatmap": wandb.Image(heatmap)}, step=generation, commit=False)
        artifact = wandb.Artifact(f"{name}-mean-drift".replace("/", "-"), type="drift",
                                  metadata={"generation": generation, "mean_drift_fitness": mean_fitness})
        artifact.add_file(mean_path)
        wandb_run.log_artifact(artifact)
    return scores


def _append_metrics(path: str, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _require_wandb_login() -> None:
    """ConfigError (one line) unless wandb has credentials (WANDB_API_KEY, settings, .netrc)."""
    import wandb

    if not wandb.login(prompt=False, verify=False):
        raise ConfigError("--wandb online needs a wandb login (run `wandb login` or set WANDB_API_KEY); "
                          "or run with --wandb offline and `wandb sync` the run later")


def _start_wandb(mode: str, run_dir: str, name: str, run_id: str, config: SweepConfig, resume: bool):
    if mode == "disabled":
        return None
    import wandb

    # Artifact staging would otherwise go under the home folder.
    os.environ.setdefault("WANDB_DATA_DIR", os.path.join(run_dir, "wandb", "data"))
    os.environ.setdefault("WANDB_CACHE_DIR", os.path.join(run_dir, "wandb", "cache"))
    return wandb.init(project=os.environ.get("WANDB_PROJECT", "drift-discovery"), name=name, id=run_id,
                      dir=run_dir, mode=mode, config=config.to_dict(), resume="allow" if resume else None,
                      settings=wandb.Settings(silent=True, console="off", save_code=False,
                                              x_disable_stats=True))
