"""Fitness of drift parameters from inner-loop returns (DESIGN.md section 3).

A member's fitness is the mean over training envs of (its mean final return over seeds /
that env's PPO reference return). A non-finite return (a diverged run) makes that member
the worst of its generation: it must never crash a sweep nor look good to the ES.
"""

from __future__ import annotations

import jax.numpy as jnp


def normalized_fitness(final_returns: jnp.ndarray, reference_returns: jnp.ndarray) -> jnp.ndarray:
    """`final_returns` (members, envs, seeds) and `reference_returns` (envs,) -> (members,).

    Higher is better; non-finite members get a fitness below every finite one.
    """
    per_env = jnp.mean(final_returns, axis=-1) / reference_returns
    fitness = jnp.mean(per_env, axis=-1)
    return worst_if_not_finite(fitness)


def worst_if_not_finite(fitness: jnp.ndarray) -> jnp.ndarray:
    """Replace NaN/inf by (worst finite fitness - 1), or -1 if no member is finite."""
    finite = jnp.isfinite(fitness)
    worst = jnp.min(jnp.where(finite, fitness, jnp.inf))
    worst = jnp.where(jnp.isfinite(worst), worst, 0.0)
    return jnp.where(finite, fitness, worst - 1.0)
