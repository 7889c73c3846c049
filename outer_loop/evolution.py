"""One generation of drift evolution as one pure, jitted function.

ask (evosax) -> evaluate the population (members x training envs x seeds, vmapped; every
member sees the same seeds: common random numbers, fresh each generation) -> tell with the
negated fitness (evosax minimises). Each generation also measures its own noise: a member's
standard error over its seeds beside the population's spread (an SNR).
`evolve(state, num_generations)` scans generations.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from inner_loop import TrainConfig, make_train
from inner_loop.drifts import Drift
from inner_loop.parallel import pad_runs, padded_size, shard_runs
from outer_loop.fitness import fitness_standard_error, normalised_fitness, search_noise
from outer_loop.sharding import shard_members


class EvolutionState(NamedTuple):
    es_state: Any
    key: jax.Array


class Normalisation(NamedTuple):
    """Per-env returns that fitness is normalised by (`outer_loop.fitness`)."""

    ppo: Sequence[float]  # PPO's mean final return on each env
    untrained: Sequence[float]  # the untrained policy's (0 for run folders of format 1)


def generation_keys(key: jax.Array) -> jax.Array:
    """A generation's keys from its state's key: (next state's, ask, evaluation, tell)."""
    return jax.random.split(key, 4)


def run_keys(key: jax.Array, num_envs: int, num_seeds: int) -> jax.Array:
    """(envs, seeds, key) keys of the inner runs scored with `key`: one per env and seed."""
    return jax.random.split(key, (num_envs, num_seeds))


def randomized_hparams(trainer, key: jax.Array, randomize: dict | None):
    """The trainer's hyperparameters with each field of `randomize` (`{"lr": (low, high)}`)
    drawn log-uniformly from its range by `key` (None: the config's own values)."""
    hparams = trainer.default_hparams()
    if not randomize:
        return hparams
    keys = jax.random.split(jax.random.fold_in(key, 0x5EED), len(randomize))
    changes = {name: jnp.exp(jax.random.uniform(k, (), jnp.float32, jnp.log(low), jnp.log(high)))
               for k, (name, (low, high)) in zip(keys, sorted(randomize.items()))}
    return hparams.replace(**changes)


def make_population_fitness(configs: Sequence[TrainConfig], drift: Drift, normalisation: Normalisation,
                            seeds_per_member: int, mesh: Any = None, randomize: dict | None = None) -> Callable:
    """`population_fitness(key, population) -> (fitness (members,), final returns (members, envs, seeds))`.

    With `randomize` every run draws its hyperparameters from those ranges
    (`randomized_hparams`), from its seed key: each member sees the same draws.

    With `mesh` (a one-axis `jax.sharding.Mesh`, see `outer_loop.sharding`) the members are
    split over its devices with `shard_map`; each device trains its own members, and only
    the final returns are gathered. Each run computes the same thing, up to the float
    rounding of the per-device batch size (see `inner_loop.parallel`).
    """
    trainers = [make_train(config, drift) for config in configs]
    references, untrained = _normalisers(normalisation)

    def member_returns(population, seed_keys):
        """(members, envs, seeds) final returns; seed_keys (envs, seeds, 2), or with a
        leading members axis under shard_map."""
        def one_member(params, keys):
            return jnp.stack([jax.vmap(lambda k, t=trainer: t(k, params, randomized_hparams(t, k, randomize))[
                "final_return"])(env_keys) for trainer, env_keys in zip(trainers, keys)])
        keys_axis = 0 if mesh is not None else None
        return jax.vmap(one_member, in_axes=(0, keys_axis))(population, seed_keys)

    if mesh is not None:
        member_returns = shard_members(member_returns, mesh)

    def population_fitness(key, population):
        # Common random numbers: every member gets the same seed keys.
        seed_keys = run_keys(key, len(trainers), seeds_per_member)
        if mesh is not None:
            # Under shard_map each member holds its own copy of the keys, so nothing is
            # replicated (a replicated input would make AD insert an all-reduce per step).
            num_members = jax.tree.leaves(population)[0].shape[0]
            seed_keys = jnp.broadcast_to(seed_keys, (num_members,) + seed_keys.shape)
        # Unsharded, the keys stay unbatched: what depends only on them (env resets, ...) is
        # computed once for the whole population instead of once per member.
        final_returns = member_returns(population, seed_keys)
        return normalised_fitness(final_returns, references, untrained), final_returns

    return population_fitness


def _normalisers(normalisation: Normalisation):
    return (jnp.asarray(normalisation.ppo, jnp.float32), jnp.asarray(normalisation.untrained, jnp.float32))


def make_drift_fitness(configs: Sequence[TrainConfig], drift: Drift, normalisation: Normalisation,
                       num_seeds: int, mesh: Any = None, randomize: dict | None = None) -> Callable:
    """`drift_fitness(key, params) -> (fitness (1,), final returns (1, envs, seeds))` of one
    drift (e.g. the search mean at a checkpoint), scored as `make_population_fitness`
    scores a member with these seeds. With `mesh` (`inner_loop.parallel.runs_mesh`) its
    seeds are split over the devices, since one drift leaves no members to split.
    """
    trainers = [make_train(config, drift) for config in configs]
    references, untrained = _normalisers(normalisation)
    size = padded_size(num_seeds, mesh)
    # The params carry the runs axis too (see outer_loop.sharding on replicated inputs).
    runs = [shard_runs(jax.vmap(lambda params, key, t=trainer: t(
        key, params, randomized_hparams(t, key, randomize))["final_return"]), mesh) for trainer in trainers]

    def drift_fitness(key, params):
        seed_keys = run_keys(key, len(trainers), num_seeds)  # as a population of one gets
        copies = jax.tree.map(lambda x: jnp.broadcast_to(x, (size,) + x.shape), params)
        final_returns = jnp.stack([run(copies, pad_runs(keys, size))[:num_seeds]
                                   for run, keys in zip(runs, seed_keys)])[None]
        return normalised_fitness(final_returns, references, untrained), final_returns

    return drift_fitness


def make_generation(strategy, es_params, population_fitness: Callable,
                    normalisation: Normalisation | None = None) -> Callable:
    """`generation(state) -> (state, metrics)`: ask, evaluate, tell. With the fitness's
    `normalisation` the metrics also hold the search noise (`outer_loop.fitness.search_noise`)."""

    def generation(state: EvolutionState):
        key, ask_key, eval_key, tell_key = generation_keys(state.key)
        population, es_state = strategy.ask(ask_key, state.es_state, es_params)
        fitness, final_returns = population_fitness(eval_key, population)
        es_state, _ = strategy.tell(tell_key, population, -fitness, es_state, es_params)
        best = jnp.argmax(fitness)
        metrics = {"fitness_mean": fitness.mean(), "fitness_max": fitness.max(), "fitness_min": fitness.min(),
                   "fitness_std": fitness.std(), "fitness": fitness,
                   "nonfinite_returns": jnp.sum(~jnp.isfinite(final_returns)),
                   "best_member": jax.tree.map(lambda x: x[best], population)}
        if normalisation is not None:
            metrics.update(search_noise(fitness, fitness_standard_error(final_returns, *_normalisers(normalisation))))
        return EvolutionState(es_state, key), metrics

    return generation


def evolve(generation: Callable, state: EvolutionState, num_generations: int):
    """`num_generations` generations in one scan (between host-side logging points)."""
    return jax.lax.scan(lambda s, _: generation(s), state, None, num_generations)
