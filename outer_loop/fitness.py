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


def normalised_fitness(final_returns: jnp.ndarray, reference_returns: jnp.ndarray,
                       untrained_returns: jnp.ndarray | float = 0.0) -> jnp.ndarray:
    """The mean over envs of `per_env_scores` -> (members,).

    Higher is better; non-finite members get a fitness below every finite one. With
    `untrained_returns` 0 it is the return over PPO's (run folders of format 1).
    """
    fitness = jnp.mean(per_env_scores(final_returns, reference_returns, untrained_returns), axis=-1)
    return worst_if_not_finite(fitness)


def fitness_standard_error(final_returns: jnp.ndarray, reference_returns: jnp.ndarray,
                           untrained_returns: jnp.ndarray | float = 0.0) -> jnp.ndarray:
    """The standard error of each member's fitness relative to the population's -> (members,).

    Every member runs the same seeds (common random numbers), so what a seed does to all of
    them (an easy start, a drawn learning rate) cancels in their ranking: the noise is the
    spread over seeds of a member's normalised return s around the population's mean on the
    same seed, d_ek = s_ek - mean_members(s_ek). Fitness is a mean over E envs of a mean over
    K seeds, so its standard error is `sqrt(sum_e var_k(d_ek) / K) / E` (var with K - 1
    degrees of freedom). The envs are no noise: every member runs all of them. NaN with one
    seed or for a member with a non-finite return (which also leaves the population mean).
    """
    members, envs, seeds = final_returns.shape
    if seeds < 2:
        return jnp.full((members,), jnp.nan)
    untrained = jnp.asarray(untrained_returns, jnp.float32)[..., None]  # (envs, 1), or (1,) for a scalar
    scores = (final_returns - untrained) / (jnp.asarray(reference_returns)[:, None] - untrained)
    finite = jnp.all(jnp.isfinite(scores), axis=(1, 2), keepdims=True)
    deviations = scores - jnp.nanmean(jnp.where(finite, scores, jnp.nan), axis=0)
    return jnp.sqrt(jnp.sum(jnp.var(deviations, axis=-1, ddof=1), axis=-1) / seeds) / envs


def search_noise(fitness: jnp.ndarray, standard_error: jnp.ndarray) -> dict:
    """Over the members with a finite standard error: `fitness_noise`, the root mean square
    of their standard errors, and `fitness_snr`, the spread (std) of their fitness over it.
    An SNR near 1 means the ranking of a generation is mostly the seeds' noise. Where every
    member scored alike on every seed the noise is 0 and the SNR undefined (NaN)."""
    finite = jnp.isfinite(standard_error) & jnp.isfinite(fitness)
    noise = jnp.sqrt(jnp.nanmean(jnp.where(finite, standard_error ** 2, jnp.nan)))
    spread = jnp.nanstd(jnp.where(finite, fitness, jnp.nan))
    return {"fitness_noise": noise, "fitness_snr": spread / noise}


def worst_if_not_finite(fitness: jnp.ndarray) -> jnp.ndarray:
    """Replace NaN/inf by (worst finite fitness - 1), or -1 if no member is finite."""
    finite = jnp.isfinite(fitness)
    worst = jnp.min(jnp.where(finite, fitness, jnp.inf))
    worst = jnp.where(jnp.isfinite(worst), worst, 0.0)
    return jnp.where(finite, fitness, worst - 1.0)
