"""Fitness of drift parameters from inner-loop returns (docs/design.md, Fitness).

A member's fitness is the mean over training envs of its PPO-normalised return,
`(R - R_0) / (R_ppo - R_0)`: R its mean final return over seeds, R_ppo PPO's and R_0 the
untrained policy's on the same inner config. 0 is no learning and 1 is PPO on every env,
whatever the sign and scale of the env's returns (Acrobot's are negative), so envs weigh
alike. A non-finite return (a diverged run) makes that member the worst of its generation:
it must never crash a sweep nor look good to the ES.
"""

from __future__ import annotations

import jax.numpy as jnp


def per_env_scores(final_returns: jnp.ndarray, reference_returns: jnp.ndarray,
                   untrained_returns: jnp.ndarray | float = 0.0) -> jnp.ndarray:
    """`final_returns` (members, envs, seeds), PPO's and the untrained policy's returns
    (envs,) -> PPO-normalised scores (members, envs)."""
    span = jnp.asarray(reference_returns) - jnp.asarray(untrained_returns)
    return (jnp.mean(final_returns, axis=-1) - untrained_returns) / span


def normalized_fitness(final_returns: jnp.ndarray, reference_returns: jnp.ndarray,
                       untrained_returns: jnp.ndarray | float = 0.0) -> jnp.ndarray:
    """The mean over envs of `per_env_scores` -> (members,).

    Higher is better; non-finite members get a fitness below every finite one. With
    `untrained_returns` 0 it is the return over PPO's (run folders of format 1).
    """
    fitness = jnp.mean(per_env_scores(final_returns, reference_returns, untrained_returns), axis=-1)
    return worst_if_not_finite(fitness)


def worst_if_not_finite(fitness: jnp.ndarray) -> jnp.ndarray:
    """Replace NaN/inf by (worst finite fitness - 1), or -1 if no member is finite."""
    finite = jnp.isfinite(fitness)
    worst = jnp.min(jnp.where(finite, fitness, jnp.inf))
    worst = jnp.where(jnp.isfinite(worst), worst, 0.0)
    return jnp.where(finite, fitness, worst - 1.0)
