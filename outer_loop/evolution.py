"""One generation of drift evolution as one pure, jitted function.

ask (evosax) -> evaluate the population (members x training envs x seeds, vmapped; every
member sees the same seeds: common random numbers, fresh each generation) -> tell with the
negated fitness (evosax minimises). `evolve(state, num_generations)` scans generations.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from inner_loop import TrainConfig, make_train
from inner_loop.drifts import Drift
from outer_loop.fitness import normalized_fitness


class EvolutionState(NamedTuple):
    es_state: Any
    key: jax.Array


def make_population_fitness(configs: Sequence[TrainConfig], drift: Drift, reference_returns: Sequence[float],
                            seeds_per_member: int) -> Callable:
    """`population_fitness(key, population) -> (fitness (members,), final returns (members, envs, seeds))`."""
    trainers = [make_train(config, drift) for config in configs]
    references = jnp.asarray(reference_returns, jnp.float32)

    def population_fitness(key, population):
        seed_keys = jax.random.split(key, (len(trainers), seeds_per_member))
        returns = []
        for trainer, keys in zip(trainers, seed_keys):
            over_seeds = jax.vmap(lambda p, k: trainer(k, p)["final_return"], in_axes=(None, 0))
            returns.append(jax.vmap(over_seeds, in_axes=(0, None))(population, keys))  # (members, seeds)
        final_returns = jnp.stack(returns, axis=1)  # (members, envs, seeds)
        return normalized_fitness(final_returns, references), final_returns

    return population_fitness


def make_generation(strategy, es_params, population_fitness: Callable) -> Callable:
    """`generation(state) -> (state, metrics)`: ask, evaluate, tell."""

    def generation(state: EvolutionState):
        key, ask_key, eval_key, tell_key = jax.random.split(state.key, 4)
        population, es_state = strategy.ask(ask_key, state.es_state, es_params)
        fitness, final_returns = population_fitness(eval_key, population)
        es_state, _ = strategy.tell(tell_key, population, -fitness, es_state, es_params)
        metrics = {"fitness_mean": fitness.mean(), "fitness_max": fitness.max(), "fitness_min": fitness.min(),
                   "fitness_std": fitness.std(), "fitness": fitness,
                   "nonfinite_returns": jnp.sum(~jnp.isfinite(final_returns))}
        return EvolutionState(es_state, key), metrics

    return generation


def evolve(generation: Callable, state: EvolutionState, num_generations: int):
    """`num_generations` generations in one scan (between host-side logging points)."""
    return jax.lax.scan(lambda s, _: generation(s), state, None, num_generations)
