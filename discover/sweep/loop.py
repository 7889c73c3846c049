"""`run_sweep`: a resumable discovery sweep that writes a run folder and mirrors it to wandb.

Resuming restores the newest readable checkpoint bit for bit and drops metric lines written
after it, so an interrupted-then-resumed sweep writes the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from discover.files.atomic import package_versions
from discover.files.drift_file import save_drift
from discover.report.figures import drift_landscapes_png, reference_panels
from discover.sweep import wandb_run as wandb_mirror
from discover.sweep.checkpoint import load_newest_checkpoint, save_checkpoint
from discover.sweep.config import SweepConfig
from discover.sweep.machinery import (Machinery, build_machinery, checkpoint_key, normalisation, resolve_references,
                                     sweep_keys)
from discover.sweep.run_folder import RunFolder
from discover.training.references import check_learnable
from inner_loop import drifts
from outer_loop import EvolutionState, per_env_scores

FITNESS_STATISTICS = ("fitness_mean", "fitness_max", "fitness_min", "fitness_std", "fitness_noise", "fitness_snr")


@flax.struct.dataclass
class SweepState:
    """What a checkpoint holds (fields in the order of the leaves of checkpoint format 1)."""

    best_fitness: jax.Array  # highest member fitness so far (-inf before the first generation)
    best_generation: jax.Array  # the generation it was reached in
    best_params: Any  # that member's drift params
    evolution: EvolutionState  # the ES state and the PRNG key


class Done(NamedTuple):
    """The last generation whose call finished and whose metric rows are all written."""

    generation: int
    state: SweepState
    env_steps: int


@dataclass
class SweepOutcome:
    run_dir: str
    generation: int  # generations completed
    interrupted: bool
    last_metrics: dict | None


def run_sweep(config: SweepConfig, run_dir: str, *, name: str, resume: bool = False, wandb_mode: str = "offline",
              on_start: Callable[[int, int], None] | None = None,
              on_generation: Callable[[dict], None] | None = None,
              stop_requested: Callable[[], bool] = lambda: False,
              log: Callable[[str], None] = print) -> SweepOutcome:
    """Run (or continue) the sweep in `run_dir` until `config.generations` or a stop request."""
    wandb_mirror.check_wandb_mode(wandb_mode)
    writer = jax.process_index() == 0  # with jax.distributed, one process writes the run folder
    if writer and wandb_mode == "online":
        wandb_mirror.require_wandb_login()  # now, not after the references and the compilation
    sweep = _Sweep.open(config, RunFolder(run_dir), name, writer, log, resume)
    done = sweep.restore(resume)
    wandb = (wandb_mirror.start_wandb(wandb_mode, sweep.folder, name, sweep.saved["wandb_run_id"], config, resume)
             if writer else None)
    if on_start:
        on_start(done.generation, config.generations)
    try:
        done, interrupted = sweep.run(done, wandb, on_generation, stop_requested)
    finally:
        if wandb is not None:
            wandb.finish()
    return SweepOutcome(run_dir, done.generation, interrupted, sweep.last_row)


class _Sweep:
    """One sweep in its run folder: opening it, restoring, the generations and checkpoints."""

    def __init__(self, config: SweepConfig, folder: RunFolder, name: str, writer: bool, log: Callable[[str], None],
                 saved: dict, machinery: Machinery):
        self.config, self.folder, self.name, self.writer, self.log = config, folder, name, writer, log
        self.saved = saved  # what config.json holds (name, config, wandb run id, versions)
        self.machinery = machinery
        # Where the run is: set by `restore`, moved on by the generations.
        self.last_row: dict | None = None  # the newest metrics row
        self.saved_generation = 0  # the newest checkpoint's generation
        self.wall_offset, self.started = 0.0, time.perf_counter()  # wall seconds before this process, and its start
        self.wandb = None  # the wandb run `run` mirrors to (None: no mirror, or not the writing process)

    @classmethod
    def open(cls, config: SweepConfig, folder: RunFolder, name: str, writer: bool, log: Callable[[str], None],
             resume: bool) -> "_Sweep":
        """Read (resume) or resolve and write the references and config; build the machinery."""
        if resume:
            saved = folder.read_config()
            references, test_references = folder.read_references()
            for entry in references + test_references:  # checked again: the folder may predate the margin
                check_learnable(entry, f"{folder.path!r} cannot go on; start a new sweep with a larger "
                                       "total_timesteps or another lr for that env")
        else:
            references, test_references = resolve_references(config, log)
            run_id = f"{name}-{time.strftime('%Y%m%d%H%M%S')}".replace("/", "-")[:64]
            saved = {"name": name, "sweep": config.to_dict(), "wandb_run_id": run_id,
                     "inner_configs": [c.to_dict() for c in config.train_configs()],
                     "test_inner_configs": [c.to_dict() for c in config.test_configs()],
                     "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": package_versions()}
            if writer:
                folder.write_references(references, test_references)
        machinery = build_machinery(config, normalisation(references), normalisation(test_references))
        return cls(config, folder, name, writer, log, saved, machinery)

    def restore(self, resume: bool) -> Done:
        """The newest readable checkpoint (resume) or the initial state; metrics cut to match."""
        initial = self.machinery.initial_state
        state = SweepState(best_fitness=jnp.float32(-jnp.inf), best_generation=jnp.int32(0),
                           best_params=self.machinery.strategy.get_mean(initial.es_state), evolution=initial)
        generation, header = 0, {}
        restored = load_newest_checkpoint(self.folder.checkpoints(), state, self.log) if resume else None
        if restored is not None:
            state, header = restored
            generation = header["generation"]
            self.folder.check_generations(self.config.generations, generation)
            self.log(f"resuming {self.folder.path} from generation {generation}")
        if self.writer:  # config.json last: it marks a run folder complete
            self.folder.write_config({**self.saved, "sweep": self.config.to_dict()})
            history = self.folder.truncate_metrics(generation)
            self.last_row = history[-1] if history else None
        self.wall_offset = float(header.get("wall_seconds", 0.0))
        self.started = time.perf_counter()
        self.saved_generation = generation
        return Done(generation, state, int(header.get("env_steps", 0)))

    def wall_seconds(self) -> float:
        return self.wall_offset + time.perf_counter() - self.started

    def run(self, done: Done, wandb, on_generation, stop_requested) -> tuple[Done, bool]:
        """Generations until the config's count or a stop request, mirrored to `wandb` (or None):
        (last done, interrupted). Only a `Done` point is checkpointed unplanned: mid-call (a
        second Ctrl-C while drift files are written, say) the state and the metric rows disagree."""
        config, self.wandb = self.config, wandb
        try:
            while done.generation < config.generations:
                if stop_requested():
                    self.save_unless_saved(done)
                    return done, True
                done = self.call(done, on_generation)
        except BaseException:
            self.save_unless_saved(done)  # Ctrl-C twice, or an error: keep every finished generation
            raise
        return done, False

    def call(self, done: Done, on_generation) -> Done:
        """One jitted call of up to `generations_per_call` generations, up to the next checkpoint."""
        config, generation, env_steps = self.config, done.generation, done.env_steps
        next_checkpoint = (generation // config.checkpoint_every + 1) * config.checkpoint_every
        n = min(config.generations_per_call, config.generations - generation, next_checkpoint - generation)
        evolution, metrics = self.machinery.run_generations(done.state.evolution, n)
        metrics = jax.device_get(metrics)
        state = done.state.replace(evolution=evolution)
        for i in range(n):
            generation += 1
            env_steps += self.machinery.env_steps_per_generation
            if metrics["fitness_max"][i] > float(state.best_fitness):
                state = state.replace(best_fitness=jnp.float32(metrics["fitness_max"][i]),
                                      best_generation=jnp.int32(generation),
                                      best_params=jax.tree.map(lambda x: jnp.asarray(x[i]), metrics["best_member"]))
            row = {"generation": generation, **{k: float(metrics[k][i]) for k in FITNESS_STATISTICS},
                   "nonfinite_returns": int(metrics["nonfinite_returns"][i]),
                   "best_fitness_so_far": float(state.best_fitness),
                   "env_steps": env_steps, "wall_seconds": round(self.wall_seconds(), 3)}
            if generation % config.checkpoint_every == 0 or generation == config.generations:
                row.update(self.checkpoint(state, generation, env_steps))
                self.saved_generation = generation
            if self.writer:
                self.folder.append_metrics(row)
                if self.wandb is not None:  # numbers only: the formula goes to the summary and artifact
                    self.wandb.log({k: v for k, v in row.items() if k != "generation" and not isinstance(v, str)},
                                   step=generation)
            self.last_row = row
            if on_generation:
                on_generation(row)
        return Done(generation, state, env_steps)

    def save_unless_saved(self, done: Done) -> None:
        if self.writer and done.generation > self.saved_generation:
            save_checkpoint(self.folder.checkpoint_path(done.generation), done.generation, done.state,
                            {"env_steps": done.env_steps, "wall_seconds": self.wall_seconds(),
                             "reason": "interrupted"})

    def score_mean(self, mean_params, generation: int) -> tuple[dict, list]:
        """The search mean's validation fitness (the training envs, seeds of their own: what
        `export --generation best` ranks by), and its fitness on the held-out envs (the same
        normalisation; logged only, never used to select or export)."""
        config, machinery = self.config, self.machinery
        keys = sweep_keys(config.seed)
        fitness, returns = machinery.mean_fitness(checkpoint_key(keys.validation, generation), mean_params)
        scores = {"mean_drift_fitness": float(fitness[0])}
        if isinstance(machinery.drift, drifts.AtomsDrift):
            scores["mean_formula"] = machinery.drift.formula(mean_params)
        if machinery.test_fitness is not None:
            test_key = checkpoint_key(keys.held_out, generation)
            test, test_returns = machinery.test_fitness(test_key, mean_params)
            norm = machinery.test_references
            per_env = np.asarray(per_env_scores(np.asarray(test_returns), np.asarray(norm.ppo),
                                                np.asarray(norm.untrained)))[0]
            scores["test_fitness"] = float(test[0])
            scores.update({f"test_fitness/{env}": float(x) for env, x in zip(config.test_envs, per_env)})
        return scores, np.asarray(returns[0]).tolist()

    def checkpoint(self, state: SweepState, generation: int, env_steps: int) -> dict:
        """Score the mean; write its and the best member's drift files, a heat map, then the
        checkpoint (+ wandb image and artifact); returns the metrics row's checkpoint fields."""
        config, machinery, folder = self.config, self.machinery, self.folder
        header = {"env_steps": env_steps, "wall_seconds": self.wall_seconds()}
        # On the host: the mean is scored on this process's devices, whatever mesh it came from.
        mean_params = jax.device_get(machinery.strategy.get_mean(state.evolution.es_state))
        scores, returns = self.score_mean(mean_params, generation)
        if not self.writer:
            return scores
        provenance = {"sweep": self.name, "sweep_config": config.to_dict(), "generation": generation,
                      "training_envs": list(config.envs)}
        mean_path, heatmap = folder.drift_path(generation, "mean"), folder.heatmap_path(generation)
        for path in (mean_path, heatmap):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        save_drift(mean_path, machinery.drift, mean_params,
                   {**provenance, "which": "mean", "fitness": scores["mean_drift_fitness"],
                    "fitness_seeds_per_env": config.mean_drift_seeds, "final_returns": returns,
                    **({"test_envs": list(config.test_envs), "test_fitness": scores["test_fitness"]}
                       if config.test_envs else {})})
        save_drift(folder.drift_path(generation, "best"), machinery.drift, state.best_params,
                   {**provenance, "which": "best", "fitness": float(state.best_fitness),
                    "fitness_seeds_per_env": config.seeds_per_member,
                    "best_generation": int(state.best_generation)})
        drift_landscapes_png([(f"mean drift, generation {generation}",
                               lambda r, a, p: machinery.drift(mean_params, r, a, p)),
                              *reference_panels("ppo")], heatmap)
        # The checkpoint last: a run stopped before it resumes from the previous one and writes
        # this generation's drift files and heat map again, so none is ever missing.
        save_checkpoint(folder.checkpoint_path(generation), generation, state, header)
        if self.wandb is not None:
            wandb_mirror.log_checkpoint(self.wandb, self.name, generation, heatmap, mean_path,
                                        scores["mean_drift_fitness"], scores.get("mean_formula"))
        return scores
