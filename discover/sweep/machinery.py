"""The compiled pieces of a sweep: fitness normalisers, the ES strategy, the jitted generations
and the scoring of the search mean on training and held-out envs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from discover.sweep.config import SweepConfig
from discover.training.references import check_learnable, find_reference, measure_reference, measure_untrained
from inner_loop import drifts
from inner_loop.parallel import runs_mesh
from outer_loop import (EvolutionState, Normalisation, evolve, make_drift_fitness, make_generation,
                        make_population_fitness, make_strategy)
from outer_loop.sharding import member_mesh, replicate

REFERENCE_SEEDS = 16  # seeds of a PPO reference measured at sweep start (when not stored)


class SweepKeys(NamedTuple):
    """The sweep's PRNG streams: the children of `PRNGKey(seed)` by one split, so no stream is
    another's descendant. (`fold_in(key, i)` is `split(key, n)[i]` under threefry: streams
    made by folding 1 and 2 into the root were the search's ES and run keys, and the held-out
    key of generation 2 was the search's evaluation key of generation 1.)"""

    init: jax.Array  # the drift's initial params
    es: jax.Array  # the strategy's init
    search: jax.Array  # the generations' chain (ask, evaluation and tell keys)
    validation: jax.Array  # the search mean on the training envs at checkpoints
    held_out: jax.Array  # the search mean on the held-out envs at checkpoints


def sweep_keys(seed: int) -> SweepKeys:
    return SweepKeys(*jax.random.split(jax.random.PRNGKey(seed), len(SweepKeys._fields)))


def checkpoint_key(stream: jax.Array, generation: int) -> jax.Array:
    """The key scoring the search mean at `generation`'s checkpoint in a validation or held-out stream."""
    return jax.random.fold_in(stream, generation)


def resolve_references(config: SweepConfig, log: Callable[[str], None]) -> tuple[list[dict], list[dict]]:
    """The PPO and untrained references of each training env and of each held-out env:
    stored data, else measured now. ConfigError if PPO does not beat the untrained policy by
    the margin (`check_learnable`)."""
    def resolve(i, train_config, entry):
        if entry is not None and "untrained_return" in entry:  # checked below, before anything was measured
            return {**entry, "source": "discover/data/ppo_references.json"}
        key = jax.random.fold_in(jax.random.PRNGKey(10_000 + config.seed), i)
        if entry is None:
            log(f"no stored PPO reference for {train_config.env_id} with this inner config; "
                f"measuring it now ({REFERENCE_SEEDS} seeds)")
            entry = {**measure_reference(train_config, REFERENCE_SEEDS, key), "source": "measured at sweep start"}
        else:
            log(f"no stored untrained return for {train_config.env_id}; measuring it now ({REFERENCE_SEEDS} seeds)")
            entry = {**entry, **measure_untrained(train_config, REFERENCE_SEEDS, key),
                     "source": "discover/data/ppo_references.json"}
        check_learnable(entry)  # what was measured now
        return entry

    configs = config.train_configs() + config.test_configs()
    stored = [find_reference(c) for c in configs]
    for entry in stored:  # a stored entry that fails is refused before anything is measured
        if entry is not None and "untrained_return" in entry:
            check_learnable(entry)
    entries = [resolve(i, c, entry) for i, (c, entry) in enumerate(zip(configs, stored))]
    return entries[:len(config.envs)], entries[len(config.envs):]


def normalisation(entries: list[dict]) -> Normalisation:
    """The fitness normalisers of these reference entries (untrained 0 in format-1 run folders)."""
    return Normalisation(ppo=[e["ppo_reference_return"] for e in entries],
                         untrained=[e.get("untrained_return", 0.0) for e in entries])


@dataclass
class Machinery:
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
                    test_references: Normalisation | None = None) -> Machinery:
    drift = config.make_drift()
    keys = sweep_keys(config.seed)
    solution = drift.init(keys.init)
    strategy, es_params = make_strategy(config.strategy.name, config.population_size, solution,
                                        std=config.strategy.std, lr=config.strategy.lr,
                                        antithetic=config.strategy.antithetic)
    train_configs = config.train_configs()
    mesh = member_mesh(config.population_size)
    population_fitness = make_population_fitness(train_configs, drift, references, config.seeds_per_member,
                                                 mesh=mesh, randomize=config.randomize())
    generation = make_generation(strategy, es_params, population_fitness, references)
    initial = EvolutionState(strategy.init(keys.es, solution, es_params), keys.search)
    seeds_mesh = runs_mesh(config.mean_drift_seeds)
    mean_fitness = make_drift_fitness(train_configs, drift, references, config.mean_drift_seeds,
                                      mesh=seeds_mesh, randomize=config.randomize())
    # Held-out envs at their own configs: what a user running the drift there would see.
    test_fitness = (make_drift_fitness(config.test_configs(), drift, test_references, config.mean_drift_seeds,
                                       mesh=seeds_mesh) if config.test_envs and test_references else None)
    steps = config.population_size * config.seeds_per_member * sum(c.env_steps for c in train_configs)
    evolve_jit = jax.jit(lambda s, n: evolve(generation, s, n), static_argnums=1)

    def run_generations(state, n):
        # jit keys on weak types and shardings, which evosax mixes: one signature, one compile.
        return evolve_jit(replicate(strong_types(state), mesh), n)

    return Machinery(drift=drift, strategy=strategy, es_params=es_params, initial_state=initial,
                      run_generations=run_generations,
                      mean_fitness=jax.jit(mean_fitness),
                      test_fitness=jax.jit(test_fitness) if test_fitness else None,
                      test_references=test_references,
                      env_steps_per_generation=steps)


def strong_types(tree):
    """The same arrays without JAX's weak-type flag (one jit signature for every call)."""
    return jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.asarray(x).dtype), tree)
