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


def conjugate_gradient(matvec: Callable, b: jax.Array, iters: int) -> jax.Array:
    """Solve `A x = b` (A symmetric positive definite) with exactly `iters` CG iterations.

    A fixed trip count (as in TRPO) rather than `jax.scipy.sparse.linalg.cg`'s tolerance
    test, whose data-dependent loop gave a zero step under vmap (docs/design.md, Measured
    decisions).
    """
    def iteration(_, carry):
        x, r, p, rr = carry
        ap = matvec(p)
        alpha = rr / jnp.maximum(jnp.vdot(p, ap), 1e-30)
        x = x + alpha * p
        r = r - alpha * ap
        rr_next = jnp.vdot(r, r)
        p = r + (rr_next / jnp.maximum(rr, 1e-30)) * p
        return x, r, p, rr_next

    return jax.lax.fori_loop(0, iters, iteration, (jnp.zeros_like(b), b, b, jnp.vdot(b, b)))[0]


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

    direction = conjugate_gradient(fisher_vector_product, grad, cg_iters)
    curvature = jnp.vdot(direction, fisher_vector_product(direction))
    full_step = jnp.sqrt(2.0 * delta / jnp.maximum(curvature, 1e-12)) * direction
    full_step = jnp.where(jnp.all(jnp.isfinite(full_step)), full_step, 0.0)

    # Backtracking line search over the halvings 1, 1/2, ...: all are evaluated and the
    # first acceptable one taken. Under vmap a while_loop would run to the slowest member
    # anyway, and a fixed trip count keeps the batched program simple (see the CG note).
    fractions = 0.5 ** jnp.arange(line_search_steps, dtype=flat_params.dtype)

    def evaluate(fraction):
        params = flat_params + fraction * full_step
        return objective_flat(params), kl_flat(params)

    objectives, kls = jax.lax.map(evaluate, fractions)
    acceptable = (kls <= delta) & (objectives > old_objective)
    first = jnp.argmax(acceptable)  # the largest acceptable step
    accepted = acceptable[first]
    new_flat = jnp.where(accepted, flat_params + fractions[first] * full_step, flat_params)
    obj = objectives[first]
    metrics = {
        "kl_ball_accepted": accepted.astype(jnp.float32),
        "kl_ball_step_fraction": jnp.where(accepted, fractions[first], 0.0),
        "kl_ball_improvement": jnp.where(accepted, obj - old_objective, 0.0),
    }
    return unravel(new_flat), metrics
