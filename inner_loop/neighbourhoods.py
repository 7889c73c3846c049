"""The KL-ball neighbourhood: `N(pi_old) = {pi : mean_s KL(pi_old(s), pi(s)) <= delta}`.

With drift 0 this is TRPO (Schulman et al. 2015); with any other drift it is the general
mirror-learning update restricted to the ball. The step maximises the mirror objective
`L(pi) = mean(r A - d(r, A))` to first order within the quadratic (Fisher) model of the KL:
the natural gradient `x = F^{-1} g` by conjugate gradient on Fisher-vector products (the
Hessian of the mean KL at pi_old, plus damping), scaled to the ball's edge
`sqrt(2 delta / x^T F x)`, then a backtracking line search that accepts the first halving
with `mean KL <= delta` *and* `L(pi_new) > L(pi_old)`; if none passes, the policy stays.
Because a valid drift has zero slope at identity, `g` is the surrogate's gradient.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


def kl_ball_step(actor_params, objective: Callable, mean_kl: Callable, *, delta, cg_iters: int,
                 cg_damping, line_search_steps: int):
    """One KL-ball policy step. `objective(p)` and `mean_kl(p)` are functions of actor params.

    Returns (new actor params, metrics dict).
    """
    flat_params, unravel = ravel_pytree(actor_params)

    def objective_flat(v):
        return objective(unravel(v))

    def kl_flat(v):
        return mean_kl(unravel(v))

    old_objective, grad = jax.value_and_grad(objective_flat)(flat_params)
    kl_grad = jax.grad(kl_flat)

    def fisher_vector_product(v):
        return jax.jvp(kl_grad, (flat_params,), (v,))[1] + cg_damping * v

    direction, _ = jax.scipy.sparse.linalg.cg(fisher_vector_product, grad, maxiter=cg_iters)
    curvature = jnp.vdot(direction, fisher_vector_product(direction))
    full_step = jnp.sqrt(2.0 * delta / jnp.maximum(curvature, 1e-12)) * direction
    full_step = jnp.where(jnp.all(jnp.isfinite(full_step)), full_step, 0.0)

    def candidate(k):
        params = flat_params + (0.5 ** k) * full_step
        return params, objective_flat(params), kl_flat(params)

    def acceptable(obj, kl):
        return (kl <= delta) & (obj > old_objective)

    def keep_searching(carry):
        k, _, obj, kl = carry
        return ~acceptable(obj, kl) & (k < line_search_steps - 1)

    def try_next(carry):
        k = carry[0] + 1
        return (k, *candidate(k))

    # candidates k = 0 .. line_search_steps - 1, stopping at the first acceptable one
    k, params, obj, kl = jax.lax.while_loop(keep_searching, try_next, (0, *candidate(0)))
    accepted = acceptable(obj, kl)
    new_flat = jnp.where(accepted, params, flat_params)
    metrics = {
        "kl_ball_accepted": accepted.astype(jnp.float32),
        "kl_ball_step_fraction": jnp.where(accepted, 0.5 ** k, 0.0),
        "kl_ball_improvement": jnp.where(accepted, obj - old_objective, 0.0),
    }
    return unravel(new_flat), metrics
