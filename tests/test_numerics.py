"""Numerical kernels of the inner loop against dense or closed-form references written in numpy."""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from inner_loop import networks
from inner_loop.envs import RunningMeanStd
from inner_loop.neighbourhoods import conjugate_gradient, kl_ball_step

N = 6


def spd_matrix(seed, eigenvalues):
    """A random symmetric positive-definite matrix with the given spectrum (float64)."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(eigenvalues),) * 2))
    return q @ np.diag(eigenvalues) @ q.T


def cg(a, b, iters):
    a32 = jnp.asarray(a, jnp.float32)
    return np.asarray(conjugate_gradient(lambda v: a32 @ v, jnp.asarray(b, jnp.float32), iters), np.float64)


# --- conjugate gradient -------------------------------------------------------------------


def test_conjugate_gradient_with_n_iterations_matches_a_dense_solve():
    a = spd_matrix(0, np.linspace(1.0, 10.0, N))
    b = np.random.default_rng(1).normal(size=N)
    np.testing.assert_allclose(cg(a, b, N), np.linalg.solve(a, b), rtol=1e-4, atol=1e-4)


def test_conjugate_gradient_error_in_the_a_norm_shrinks_with_every_iteration():
    # CG minimises ||x - x*||_A over the Krylov space, so that error (not the residual) is monotone.
    a = spd_matrix(2, np.array([1.0, 1.5, 2.5, 4.0, 6.0, 9.0]))
    b = np.random.default_rng(3).normal(size=N)
    exact = np.linalg.solve(a, b)
    errors = [math.sqrt((cg(a, b, k) - exact) @ a @ (cg(a, b, k) - exact)) for k in range(N + 1)]
    assert errors[0] == math.sqrt(exact @ a @ exact)  # zero iterations: x = 0
    assert all(later < earlier for earlier, later in zip(errors[:3], errors[1:4])), errors
    assert errors[N] < 1e-3 * errors[0]


def test_conjugate_gradient_converges_in_as_many_iterations_as_distinct_eigenvalues():
    # A = 2 I + u u^T has two distinct eigenvalues, so two iterations give the exact solution.
    u = np.random.default_rng(4).normal(size=N)
    a = 2.0 * np.eye(N) + np.outer(u, u)
    b = np.random.default_rng(5).normal(size=N)
    exact = np.linalg.solve(a, b)
    assert np.linalg.norm(cg(a, b, 1) - exact) > 1e-2 * np.linalg.norm(exact)
    np.testing.assert_allclose(cg(a, b, 2), exact, rtol=1e-4, atol=1e-5)


def test_conjugate_gradient_running_more_iterations_than_needed_stays_at_the_solution():
    # The fixed trip count keeps iterating after convergence; the guards must keep it finite.
    a = spd_matrix(6, np.linspace(1.0, 3.0, N))
    b = np.random.default_rng(7).normal(size=N)
    np.testing.assert_allclose(cg(a, b, 4 * N), np.linalg.solve(a, b), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(cg(a, np.zeros(N), N), np.zeros(N))


def test_conjugate_gradient_under_vmap_solves_each_members_own_system():
    # The reason for the fixed trip count: a vmapped population must not get a zero step.
    mats = np.stack([spd_matrix(s, np.linspace(1.0, 1.0 + 3 * s, N)) for s in range(1, 5)])
    rhs = np.random.default_rng(8).normal(size=(4, N))
    solve = jax.vmap(lambda m, b: conjugate_gradient(lambda v: m @ v, b, N))
    got = solve(jnp.asarray(mats, jnp.float32), jnp.asarray(rhs, jnp.float32))
    np.testing.assert_allclose(got, np.linalg.solve(mats, rhs[..., None])[..., 0], rtol=1e-3, atol=1e-4)


# --- KL-ball step -------------------------------------------------------------------------

# A flax-like pytree of 6 parameters; the problem is posed on its flat vector.
P0 = {"dense": {"bias": jnp.asarray([0.3, -0.2]), "kernel": jnp.asarray([[0.1, 0.5], [-0.4, 0.2]])}}
P0_FLAT = np.asarray(ravel_pytree(P0)[0], np.float64)
FISHER = spd_matrix(10, np.array([0.5, 1.0, 2.0, 3.0, 5.0, 8.0]))
G = np.random.default_rng(11).normal(size=N)
DELTA = 0.01


def flat(params):
    return ravel_pytree(params)[0]


def quadratic_form(params):
    d = flat(params) - jnp.asarray(P0_FLAT, jnp.float32)
    return d @ jnp.asarray(FISHER, jnp.float32) @ d


def linear_objective(params):
    return jnp.dot(jnp.asarray(G, jnp.float32), flat(params))


def dense_natural_step(damping=0.0):
    f = FISHER + damping * np.eye(N)
    x = np.linalg.solve(f, G)
    return np.sqrt(2 * DELTA / (G @ x)) * x


def step(objective, mean_kl, damping=0.0, line_search_steps=6):
    run = jax.jit(lambda p: kl_ball_step(p, objective, mean_kl, delta=DELTA, cg_iters=N,
                                         cg_damping=damping, line_search_steps=line_search_steps))
    new, metrics = run(P0)
    assert jax.tree.structure(new) == jax.tree.structure(P0)
    return np.asarray(flat(new), np.float64), {k: float(v) for k, v in metrics.items()}


def test_kl_ball_step_takes_the_dense_natural_gradient_step_to_the_balls_edge():
    # Hessian at p0 is F; the quartic term only keeps the edge strictly inside the ball under rounding.
    new, metrics = step(linear_objective, lambda p: 0.5 * quadratic_form(p) - 0.01 * quadratic_form(p) ** 2)
    expected = P0_FLAT + dense_natural_step()
    np.testing.assert_allclose(new, expected, rtol=1e-4, atol=1e-5)
    d = new - P0_FLAT
    assert 0.5 * d @ FISHER @ d <= DELTA * (1 + 1e-4)
    np.testing.assert_allclose(0.5 * d @ FISHER @ d, DELTA, rtol=1e-3)  # on the edge, not inside
    assert metrics["kl_ball_accepted"] == 1.0 and metrics["kl_ball_step_fraction"] == 1.0
    np.testing.assert_allclose(metrics["kl_ball_improvement"], G @ dense_natural_step(), rtol=1e-4)


def test_kl_ball_step_with_damping_solves_the_damped_system_and_stays_inside_the_ball():
    new, metrics = step(linear_objective, lambda p: 0.5 * quadratic_form(p), damping=0.5)
    np.testing.assert_allclose(new, P0_FLAT + dense_natural_step(damping=0.5), rtol=1e-4, atol=1e-5)
    d = new - P0_FLAT
    assert 0.5 * d @ FISHER @ d < DELTA
    assert metrics["kl_ball_accepted"] == 1.0 and metrics["kl_ball_step_fraction"] == 1.0


def test_kl_ball_step_halves_a_step_whose_true_kl_leaves_the_ball():
    # True KL = quadratic model + 10 q^2: 0.014 > delta at the full step, 0.00275 at half of it.
    new, metrics = step(linear_objective, lambda p: 0.5 * quadratic_form(p) + 10.0 * quadratic_form(p) ** 2)
    np.testing.assert_allclose(new, P0_FLAT + 0.5 * dense_natural_step(), rtol=1e-4, atol=1e-5)
    assert metrics["kl_ball_accepted"] == 1.0 and metrics["kl_ball_step_fraction"] == 0.5
    np.testing.assert_allclose(metrics["kl_ball_improvement"], 0.5 * G @ dense_natural_step(), rtol=1e-4)


def concave_objective(k):
    """L(p) = g.(p - p0) - k |p - p0|^2: improves along the natural step only for small fractions."""
    def objective(params):
        d = flat(params) - jnp.asarray(P0_FLAT, jnp.float32)
        return jnp.dot(jnp.asarray(G, jnp.float32), d) - k * d @ d

    return objective


def test_kl_ball_step_backtracks_past_fractions_that_do_not_improve_the_objective():
    # L(p0 + f s) = f g.s - k f^2 |s|^2 improves only for f < g.s / (k |s|^2) = 1/3: first is 1/4.
    s = dense_natural_step()
    k = 3.0 * (G @ s) / (s @ s)

    new, metrics = step(concave_objective(k), lambda p: 0.5 * quadratic_form(p) - 0.01 * quadratic_form(p) ** 2)
    np.testing.assert_allclose(new, P0_FLAT + 0.25 * s, rtol=1e-4, atol=1e-5)
    assert metrics["kl_ball_step_fraction"] == 0.25
    np.testing.assert_allclose(metrics["kl_ball_improvement"], 0.25 * G @ s - k * 0.0625 * s @ s, rtol=1e-3)


def test_kl_ball_step_keeps_the_policy_when_no_halving_is_acceptable():
    # Improvement needs f < 1/100, below the smallest of the 6 fractions tried (1/32).
    s = dense_natural_step()
    k = 100.0 * (G @ s) / (s @ s)

    new, metrics = step(concave_objective(k), lambda p: 0.5 * quadratic_form(p))
    np.testing.assert_array_equal(new, P0_FLAT)
    assert metrics == {"kl_ball_accepted": 0.0, "kl_ball_step_fraction": 0.0, "kl_ball_improvement": 0.0}


# --- policy distributions -----------------------------------------------------------------

RNG = np.random.default_rng(20)
MEAN_OLD, MEAN_NEW, ACTION = RNG.normal(size=(3, 4, 3))
LOG_STD_OLD, LOG_STD_NEW = RNG.uniform(-1.0, 0.7, size=(2, 4, 3))
# Finite but extreme logits too: exp underflows to 0 there and p log p must still be 0.
LOGITS_OLD = np.concatenate([RNG.normal(size=(3, 5)), [[60.0, -60.0, 0.0, 1.0, -2.0]]])
LOGITS_NEW = np.concatenate([RNG.normal(size=(3, 5)), [[-1.0, 80.0, -80.0, 0.5, 0.0]]])
CHOSEN = np.array([0, 4, 2, 1])


def j(*xs):
    return tuple(jnp.asarray(x, jnp.float32) for x in xs)


def softmax(logits):
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def test_gaussian_log_prob_is_the_diagonal_normal_density_summed_over_action_dims():
    got = networks.log_prob(j(MEAN_OLD, LOG_STD_OLD), jnp.asarray(ACTION, jnp.float32), discrete=False)
    s = np.exp(LOG_STD_OLD)
    density = np.exp(-0.5 * ((ACTION - MEAN_OLD) / s) ** 2) / (s * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(got, np.log(density).sum(-1), rtol=1e-5, atol=1e-5)


def test_gaussian_entropy_is_the_closed_form_of_a_diagonal_normal():
    got = networks.entropy(j(MEAN_OLD, LOG_STD_OLD), discrete=False)
    expected = (0.5 * np.log(2 * np.pi * np.e * np.exp(LOG_STD_OLD) ** 2)).sum(-1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_gaussian_kl_is_kl_of_old_from_new_in_closed_form():
    got = networks.kl_divergence(j(MEAN_OLD, LOG_STD_OLD), j(MEAN_NEW, LOG_STD_NEW), discrete=False)
    s0, s1 = np.exp(LOG_STD_OLD), np.exp(LOG_STD_NEW)
    expected = (np.log(s1 / s0) + (s0**2 + (MEAN_OLD - MEAN_NEW) ** 2) / (2 * s1**2) - 0.5).sum(-1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    same = networks.kl_divergence(j(MEAN_OLD, LOG_STD_OLD), j(MEAN_OLD, LOG_STD_OLD), discrete=False)
    np.testing.assert_allclose(same, 0.0, atol=1e-6)


def test_categorical_log_prob_is_the_log_softmax_of_the_chosen_action():
    expected = np.log(softmax(LOGITS_OLD)[np.arange(4), CHOSEN])
    for action in (jnp.asarray(CHOSEN), jnp.asarray(CHOSEN, jnp.float32)):  # sampled ints or stored floats
        got = networks.log_prob(jnp.asarray(LOGITS_OLD, jnp.float32), action, discrete=True)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_categorical_entropy_is_minus_sum_p_log_p_and_finite_for_extreme_logits():
    got = networks.entropy(jnp.asarray(LOGITS_OLD, jnp.float32), discrete=True)
    p = softmax(LOGITS_OLD)
    expected = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), -1)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_categorical_kl_is_sum_p_log_p_over_q_and_invariant_to_logit_shifts():
    got = networks.kl_divergence(*j(LOGITS_OLD, LOGITS_NEW), discrete=True)
    p = softmax(LOGITS_OLD)
    log_q = LOGITS_NEW - LOGITS_NEW.max(-1, keepdims=True)
    log_q = log_q - np.log(np.exp(log_q).sum(-1, keepdims=True))  # exact even where q underflows
    log_p = np.log(np.where(p > 0, p, 1.0))
    expected = np.sum(np.where(p > 0, p * (log_p - log_q), 0.0), -1)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    shifted = networks.kl_divergence(*j(LOGITS_OLD, LOGITS_OLD + 7.0), discrete=True)
    np.testing.assert_allclose(shifted, 0.0, atol=1e-5)


def test_samples_follow_the_policy_distributions():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    logits = jnp.log(jnp.asarray([0.1, 0.6, 0.3]))
    draws = networks.sample(k1, jnp.broadcast_to(logits, (20_000, 3)), discrete=True)
    np.testing.assert_allclose(np.bincount(np.asarray(draws), minlength=3) / 20_000, [0.1, 0.6, 0.3], atol=0.015)
    mean, log_std = jnp.asarray([1.0, -2.0]), jnp.log(jnp.asarray([0.5, 2.0]))
    x = np.asarray(networks.sample(k2, (jnp.broadcast_to(mean, (20_000, 2)), jnp.broadcast_to(log_std, (20_000, 2))),
                                   discrete=False))
    np.testing.assert_allclose(x.mean(0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(x.std(0), [0.5, 2.0], rtol=0.03)


# --- running mean and variance ------------------------------------------------------------


def test_running_mean_std_over_uneven_batches_equals_numpys_mean_and_var_of_all_data():
    rng = np.random.default_rng(30)
    batches = [rng.normal(loc=[3.0, -1.0], scale=[2.0, 0.1], size=(n, 2)) for n in (1, 7, 64, 3, 25)]
    stats = RunningMeanStd.create((2,))
    for batch in batches:
        stats = stats.update(jnp.asarray(batch))
    seen = np.concatenate(batches)
    n, eps = len(seen), 1e-4
    # create() starts from a pseudo-sample of weight 1e-4 at mean 0, var 1: merge it in exactly.
    expected_mean = seen.sum(0) / (n + eps)
    expected_var = (eps + n * seen.var(0) + seen.mean(0) ** 2 * eps * n / (n + eps)) / (n + eps)
    np.testing.assert_allclose(stats.mean, expected_mean, rtol=1e-5)
    np.testing.assert_allclose(stats.var, expected_var, rtol=2e-5)
    np.testing.assert_allclose(stats.count, n + eps, rtol=1e-6)
    np.testing.assert_allclose(stats.var, seen.var(0), rtol=1e-3)  # and the prior's pull is negligible


def test_running_var_of_a_scalar_stream_is_accurate_despite_a_large_mean():
    # The shape () statistics train.py keeps for the discounted return; Chan's merge avoids E[x^2] - E[x]^2.
    data = np.random.default_rng(31).normal(loc=50.0, scale=0.5, size=(100, 32))
    stats, _ = jax.lax.scan(lambda s, b: (s.update(b), None), RunningMeanStd.create(()), jnp.asarray(data, jnp.float32))
    np.testing.assert_allclose(stats.mean, data.mean(), rtol=1e-5)
    np.testing.assert_allclose(stats.var, data.var(), rtol=1e-2)


def test_normalize_standardises_with_the_running_statistics_and_clips():
    stats = RunningMeanStd.create((3,)).update(jnp.asarray(np.random.default_rng(32).normal(2.0, 3.0, size=(50, 3))))
    mean, var = np.asarray(stats.mean, np.float64), np.asarray(stats.var, np.float64)
    obs = mean + np.sqrt(var) * np.array([1.5, -0.5, 40.0])  # the last is 40 sd out
    got = stats.normalize(jnp.asarray(obs, jnp.float32))
    np.testing.assert_allclose(got, [1.5, -0.5, 10.0], rtol=1e-4)
    np.testing.assert_allclose(stats.normalize(jnp.asarray(obs, jnp.float32), clip=1.0), [1.0, -0.5, 1.0], rtol=1e-4)
    np.testing.assert_allclose(stats.normalize(jnp.asarray(-obs + 2 * mean, jnp.float32)), [-1.5, 0.5, -10.0],
                               rtol=1e-4)
