"""Generalised advantage estimation (Schulman et al. 2016) with truncation bootstrapping.

`next_values[t]` is the critic's value of the observation reached by step t *before* any
auto-reset (gymnax's `final_observation`). A terminated step does not bootstrap
(`(1 - terminated)`); a truncated step does, from that final observation. Either kind of
episode end cuts the advantage recursion (`(1 - done)`).

    delta_t = r_t + gamma * (1 - terminated_t) * V(s'_t) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def compute_gae(rewards, values, next_values, terminated, done, gamma, gae_lambda):
    """Advantages and value targets for arrays shaped (time, ...)."""
    not_terminated = 1.0 - terminated.astype(jnp.float32)
    not_done = 1.0 - done.astype(jnp.float32)
    deltas = rewards + gamma * not_terminated * next_values - values

    def backward(next_advantage, step):
        delta, keep = step
        advantage = delta + gamma * gae_lambda * keep * next_advantage
        return advantage, advantage

    # unrolled: each step is a few tiny ops, so the loop's per-iteration cost dominates
    _, advantages = jax.lax.scan(backward, jnp.zeros_like(values[0]), (deltas, not_done),
                                 reverse=True, unroll=16)
    return advantages, advantages + values
