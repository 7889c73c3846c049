"""The exact mirror-learning update on a finite MDP: per state, maximise E_pi[A] - E_old[d(r, A)]
over softmax policies (optionally in a KL ball), and runs of such updates."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from discover.theorem.config import DriftFn, VerifyConfig
from discover.theorem.mdp import MDP, advantages, expected_return, policy_values, value_iteration

RESTART_SCALE = 3.0  # std of the random logit offsets that extra inner ascents start from
KL_BISECTION_STEPS = 40  # halvings of the step back towards pi_old in the KL ball
STEP_GROWTH, STEP_SHRINK = 1.5, 0.5  # the inner step size after a better / a worse candidate
MAX_LOGIT_STEP = 10.0  # cap on any logit's change in one inner step
LOGIT_RANGE = 30.0  # logits stay within this of their state's largest (see clip_logit_range)


def kl_to_old(logits: jax.Array, logp_old: jax.Array) -> jax.Array:
    """`KL(pi_old(s) || pi(s))` per state [S]."""
    return jnp.sum(jnp.exp(logp_old) * (logp_old - jax.nn.log_softmax(logits)), axis=-1)


def project_to_kl_ball(logits: jax.Array, logits_old: jax.Array, delta: float) -> jax.Array:
    """Per state, step back along the line towards `logits_old` until `KL(pi_old || pi) <= delta`.

    Along `z_old + t (z - z_old)` the KL is convex in t with value and slope 0 at t = 0, so it
    grows with t and bisection finds the largest feasible t in [0, 1].
    """
    logp_old = jax.nn.log_softmax(logits_old)
    direction = logits - logits_old
    inside = kl_to_old(logits, logp_old) <= delta

    def halve(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        ok = kl_to_old(logits_old + mid[:, None] * direction, logp_old) <= delta
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)

    zeros = jnp.zeros(logits.shape[0], logits.dtype)
    lo, _ = jax.lax.fori_loop(0, KL_BISECTION_STEPS, halve, (zeros, jnp.ones_like(zeros)))
    t = jnp.where(inside, 1.0, lo)
    return logits_old + t[:, None] * direction


def clip_logit_range(logits: jax.Array) -> jax.Array:
    """Keep every logit within LOGIT_RANGE of its state's largest (probabilities >= ~e^-30).

    Why: a softmax saturated on one action has vanishing gradients and ratios that overflow;
    bounding the range keeps both finite. The policies searched are the ones this allows.
    """
    return jnp.maximum(logits, jnp.max(logits, axis=-1, keepdims=True) - LOGIT_RANGE)


def mirror_objective_of_policy(policy: jax.Array, logp_old: jax.Array, adv: jax.Array, drift_fn: DriftFn,
                               progress: jax.Array, drift_dtype: str = "float32") -> jax.Array:
    """Per state [S]: `E_{a~pi}[A(s,a)] - E_{a~pi_old}[d(pi(a|s)/pi_old(a|s), A(s,a), progress)]`.

    `policy` [S, A] is pi itself; the drift is evaluated in `drift_dtype`, the rest in the
    dtype of `policy`.
    """
    ratio = policy * jnp.exp(-logp_old)
    r, a = ratio.astype(drift_dtype), adv.astype(drift_dtype)
    drift = jnp.broadcast_to(drift_fn(r, a, jnp.full_like(r, progress)), ratio.shape).astype(ratio.dtype)
    return jnp.sum(policy * adv, axis=-1) - jnp.sum(jnp.exp(logp_old) * drift, axis=-1)


def maximise_mirror_objective(logits_old: jax.Array, adv: jax.Array, drift_fn: DriftFn, progress: jax.Array,
                              config: VerifyConfig, key: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """(best logits [S, A], best objective [S]) by exponentiated-gradient ascent from `logits_old`.

    Each step adds `step_size * dL/dpi` to the logits (`pi <- pi exp(step dL/dpi) / Z`: mirror
    ascent on the simplex, whose fixed points are the constrained optimum, and which, unlike
    the gradient in logits, does not vanish where the softmax saturates). Monotone with a
    per-state adaptive step: only better candidates are kept and the first point is `pi_old`
    itself, so a state's objective never ends below its value at `pi_old`; non-finite
    objectives or gradients count as worse. With `config.inner_restarts` > 0, as many more
    ascents start from random logits around `pi_old` (drawn with `key`) and the best over all
    is kept per state: closer to the theorem's global argmax, which is what exposes drifts
    that are negative away from `r = 1`.
    """
    logp_old = jax.nn.log_softmax(logits_old)

    def total(policy):
        per_state = mirror_objective_of_policy(policy, logp_old, adv, drift_fn, progress, config.drift_dtype)
        return jnp.sum(jnp.where(jnp.isfinite(per_state), per_state, 0.0)), per_state

    value_and_grad = jax.value_and_grad(total, has_aux=True)  # states are separable: row s of the grad is state s's

    def evaluate(logits):
        (_, objective), grad = value_and_grad(jax.nn.softmax(logits))
        ok = jnp.isfinite(objective) & jnp.all(jnp.isfinite(grad), axis=-1)
        return jnp.where(ok, objective, -jnp.inf), jnp.where(ok[:, None], grad, 0.0)

    def ascent_step(_, carry):
        # From the best point so far, a step of the state's own size; keep the candidate only
        # if it is better. Success grows the size, failure shrinks it, so it adapts to drifts
        # of any steepness (a steep one needs tiny steps, GPI huge ones).
        best_logits, best_objective, best_grad, step_size = carry
        step = step_size[:, None] * best_grad
        largest = jnp.max(jnp.abs(step), axis=-1, keepdims=True)
        step = step * jnp.minimum(1.0, MAX_LOGIT_STEP / jnp.maximum(largest, 1e-300))
        candidate = clip_logit_range(best_logits + step)
        if config.neighbourhood == "kl_ball":
            candidate = project_to_kl_ball(candidate, logits_old, config.kl_delta)
        objective, grad = evaluate(candidate)
        better = objective > best_objective
        return (jnp.where(better[:, None], candidate, best_logits), jnp.where(better, objective, best_objective),
                jnp.where(better[:, None], grad, best_grad), step_size * jnp.where(better, STEP_GROWTH, STEP_SHRINK))

    def ascend(start):
        objective, grad = evaluate(start)
        step_size = jnp.full(start.shape[0], config.inner_lr, start.dtype)
        best_logits, best_objective, _, _ = jax.lax.fori_loop(
            0, config.inner_steps, ascent_step, (start, objective, grad, step_size))
        return best_logits, best_objective

    if config.inner_restarts == 0:
        return ascend(logits_old)
    all_logits, all_objective = jax.vmap(ascend)(_ascent_starts(logits_old, config, key))  # [R+1, S, A], [R+1, S]
    best = jnp.argmax(all_objective, axis=0)  # ties: the ascent from pi_old (index 0)
    states = jnp.arange(logits_old.shape[0])
    return all_logits[best, states], all_objective[best, states]


def _ascent_starts(logits_old: jax.Array, config: VerifyConfig, key: jax.Array | None) -> jax.Array:
    """`logits_old` and `config.inner_restarts` random logits around it (in the KL ball, if one)."""
    key = jax.random.PRNGKey(0) if key is None else key
    noise = RESTART_SCALE * jax.random.normal(key, (config.inner_restarts,) + logits_old.shape, logits_old.dtype)
    starts = jnp.concatenate([logits_old[None], clip_logit_range(logits_old[None] + noise)])
    if config.neighbourhood == "kl_ball":
        starts = jax.vmap(lambda z: project_to_kl_ball(z, logits_old, config.kl_delta))(starts)
    return starts


class RunTrace(NamedTuple):
    """One MDP's mirror-learning run (stacked over MDPs when vmapped)."""

    returns: jax.Array  # [iterations + 1]: eta(pi_0), ..., eta(pi_N), exact
    min_objective: jax.Array  # [iterations]: min over states of the accepted per-state objective
    max_kl: jax.Array  # [iterations]: max over states of KL(pi_old || pi_new)
    optimal_return: jax.Array  # []: eta(pi*) by value iteration


def mirror_learning_run(mdp: MDP, key: jax.Array, drift_fn: DriftFn, config: VerifyConfig) -> RunTrace:
    """`config.iterations` exact mirror-learning updates from the uniform policy (`key`: restarts)."""
    num_states, num_actions = mdp.rewards.shape
    logits0 = jnp.zeros((num_states, num_actions), mdp.rewards.dtype)

    def update(logits, n):
        policy = jax.nn.softmax(logits)
        adv, values = advantages(mdp, policy)
        # E_{pi_old}[A_old(s, .)] = 0 exactly; subtracting the rounding left by the solve makes
        # the objective at pi_old exactly 0 (it matters once "std" scaling magnifies tiny A).
        adv = adv - jnp.sum(policy * adv, axis=-1, keepdims=True)
        if config.advantage_scaling == "std":
            # The trainer's normalisation: (A - mean) / (std + 1e-8), the mean being 0 here.
            adv = adv / (jnp.sqrt(jnp.mean(jnp.sum(policy * adv * adv, axis=-1))) + 1e-8)
        progress = n / config.iterations
        new_logits, objective = maximise_mirror_objective(logits, adv, drift_fn, progress, config,
                                                          jax.random.fold_in(key, n.astype(jnp.int32)))
        kl = kl_to_old(new_logits, jax.nn.log_softmax(logits))
        # Softmax ignores a per-state shift; re-centre so logits stay bounded over many updates.
        new_logits = new_logits - jnp.max(new_logits, axis=-1, keepdims=True)
        return new_logits, (expected_return(mdp, values), jnp.min(objective), jnp.max(kl))

    steps = jnp.arange(config.iterations, dtype=mdp.rewards.dtype)
    final_logits, (returns, min_objective, max_kl) = jax.lax.scan(update, logits0, steps)
    final_return = expected_return(mdp, policy_values(mdp, jax.nn.softmax(final_logits)))
    optimal, _ = value_iteration(mdp)
    return RunTrace(jnp.append(returns, final_return), min_objective, max_kl, expected_return(mdp, optimal))


def run_batch(mdps: MDP, keys: jax.Array, drift_fn: DriftFn, config: VerifyConfig) -> RunTrace:
    """`mirror_learning_run` vmapped over a batch of MDPs and their keys (call under jit)."""
    return jax.vmap(lambda mdp, key: mirror_learning_run(mdp, key, drift_fn, config))(mdps, keys)
