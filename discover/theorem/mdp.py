"""Exact finite MDPs: random batches, exact policy evaluation by a linear solve, advantages,
and value iteration (one MDP; vmap for a batch)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from discover.theorem.config import VerifyConfig


class MDP(NamedTuple):
    """A finite discounted MDP; a pytree, so a batch is an MDP of stacked arrays."""

    transitions: jax.Array  # [S, A, S]: P(s' | s, a)
    rewards: jax.Array  # [S, A]: r(s, a)
    initial: jax.Array  # [S]: the initial-state distribution rho_0
    gamma: jax.Array  # []: the discount


def random_mdps(rng: np.random.Generator, config: VerifyConfig) -> MDP:
    """`config.num_mdps` random MDPs, stacked (float64 numpy arrays; `jnp.asarray` them as needed).

    Transition rows ~ Dirichlet(concentration), rewards ~ U[0, 1], rho_0 ~ Dirichlet(1),
    discount ~ U[gamma_min, gamma_max]. Drawn with numpy, not jax.random: the MDPs are data,
    and a threefry draw compiles anew for every shape on XLA's CPU backend.
    """
    m, s, a = config.num_mdps, config.num_states, config.num_actions
    return MDP(transitions=rng.dirichlet(np.full(s, config.concentration), size=(m, s, a)),
               rewards=rng.uniform(0.0, 1.0, size=(m, s, a)),
               initial=rng.dirichlet(np.ones(s), size=m),
               gamma=rng.uniform(config.gamma_min, config.gamma_max, size=m))


def policy_values(mdp: MDP, policy: jax.Array) -> jax.Array:
    """Exact `V^pi` [S]: solve `(I - gamma P_pi) V = r_pi`."""
    p_pi = jnp.einsum("sa,sat->st", policy, mdp.transitions)
    r_pi = jnp.sum(policy * mdp.rewards, axis=-1)
    eye = jnp.eye(p_pi.shape[0], dtype=p_pi.dtype)
    return jnp.linalg.solve(eye - mdp.gamma * p_pi, r_pi)


def q_values(mdp: MDP, values: jax.Array) -> jax.Array:
    """`Q(s, a) = r(s, a) + gamma sum_s' P(s'|s, a) V(s')` [S, A]."""
    return mdp.rewards + mdp.gamma * jnp.einsum("sat,t->sa", mdp.transitions, values)


def advantages(mdp: MDP, policy: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(`A^pi` [S, A], `V^pi` [S]), exact."""
    values = policy_values(mdp, policy)
    return q_values(mdp, values) - values[:, None], values


def expected_return(mdp: MDP, values: jax.Array) -> jax.Array:
    """`eta = sum_s rho_0(s) V(s)`."""
    return jnp.dot(mdp.initial, values)


def value_iteration(mdp: MDP, tol: float = 1e-12, max_iterations: int = 100_000,
                    polish_steps: int = 3) -> tuple[jax.Array, jax.Array]:
    """(`V*` [S], an optimal deterministic policy [S, A] one-hot).

    Value iteration until the sup-norm change is below `tol` (relative to max |V|), then
    `polish_steps` rounds of policy iteration with exact evaluation, so `V*` is the exact
    value of the returned greedy policy (policy iteration is exact at its fixed point).
    """
    def bellman(values):
        return jnp.max(q_values(mdp, values), axis=-1)

    def not_done(carry):
        values, change, i = carry
        return (change > tol * jnp.maximum(1.0, jnp.max(jnp.abs(values)))) & (i < max_iterations)

    def sweep(carry):
        values, _, i = carry
        new = bellman(values)
        return new, jnp.max(jnp.abs(new - values)), i + 1

    zeros = jnp.zeros(mdp.rewards.shape[0], mdp.rewards.dtype)
    values, _, _ = jax.lax.while_loop(not_done, sweep, (zeros, jnp.asarray(jnp.inf, zeros.dtype), 0))

    def greedy(values):
        return jax.nn.one_hot(jnp.argmax(q_values(mdp, values), axis=-1), mdp.rewards.shape[1],
                              dtype=values.dtype)

    def improve(_, values):
        return policy_values(mdp, greedy(values))

    values = jax.lax.fori_loop(0, polish_steps, improve, values)
    return values, greedy(values)
