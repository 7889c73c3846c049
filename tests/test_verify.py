"""`discover verify`: exact MDP machinery, the axiom checks, the theorem on random MDPs, the CLI."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discover.theorem import mdp as tabular, mirror
from discover.theorem.axioms import SLOPE_CHECK, check_axioms
from discover.theorem.config import VerifyConfig, mdp_rng
from discover.theorem.mdp import MDP
from discover.theorem.verdict import verify_drift
from inner_loop import drifts
from inner_loop.drifts import ppo_drift
from inner_loop.errors import ConfigError

# Small enough for the whole file to run in well under a minute on 2 cores. No inner restarts
# (they double the compile time) except where a test needs them.
SMALL = VerifyConfig(num_mdps=8, num_states=6, num_actions=3, iterations=12, inner_steps=30, inner_restarts=0,
                     axiom_ratios=41, axiom_advantages=9, axiom_progress=3, axiom_random_points=512)
TINY_SETTINGS = ["num_mdps=4", "num_states=4", "num_actions=2", "iterations=5", "inner_steps=10",
                 "inner_restarts=0", "axiom_ratios=21", "axiom_advantages=5", "axiom_progress=2",
                 "axiom_random_points=64"]


def zoo_fn(name, seed=0, scale=1.0, **options):
    drift = drifts.get(name, **options)
    params = jax.tree.map(lambda p: p * scale, drift.init(jax.random.PRNGKey(seed)))
    return lambda r, a, p=0.0: drift(params, r, a, p)


# Invalid drifts, each breaking one axiom (or more).
def negative_quadratic(r, a, p=0.0):
    return -2.0 * (r - 1.0) ** 2 * jnp.ones_like(a)  # flat at r = 1 but negative everywhere else


def ppo_minus_quadratic(r, a, p=0.0):
    return ppo_drift(r, a, 0.2) - 0.1 * (r - 1.0) ** 2  # PPO, made negative away from r = 1


def slope_at_identity(r, a, p=0.0):
    return 0.1 * (r - 1.0) * jnp.ones_like(a)  # slope 0.1 at r = 1 (and so negative for r < 1)


def advantage_slope(r, a, p=0.0):
    return 2.0 * (r - 1.0) * a  # E_old[d] = 2 E_pi[A]: the objective becomes -E_pi[A]


def hidden_kink(r, a, p=0.0):
    return 0.5 * jax.nn.relu(r - 1.0) * jnp.ones_like(a)  # >= 0, 0 at r = 1, grad 0 there (relu'(0) = 0)


# --- exact MDP machinery ------------------------------------------------------------------

def two_state_mdp():
    """Two states, two actions, gamma = 0.9, rho_0 = (1/2, 1/2), deterministic moves:
    state 0: a0 stays (reward 1), a1 moves to state 1 (reward 0);
    state 1: a0 stays (reward 2), a1 moves to state 0 (reward 0).
    """
    transitions = jnp.zeros((2, 2, 2)).at[0, 0, 0].set(1).at[0, 1, 1].set(1).at[1, 0, 1].set(1).at[1, 1, 0].set(1)
    return MDP(transitions, jnp.array([[1.0, 0.0], [2.0, 0.0]]), jnp.array([0.5, 0.5]), jnp.asarray(0.9))


def test_exact_evaluation_and_value_iteration_on_a_hand_solved_mdp():
    # Uniform policy:  V0 = 0.5(1 + .9 V0) + 0.5(.9 V1),  V1 = 0.5(2 + .9 V1) + 0.5(.9 V0), i.e.
    #   0.55 V0 - 0.45 V1 = 0.5 and -0.45 V0 + 0.55 V1 = 1.  Adding: 0.1 (V0 + V1) = 1.5, so
    #   V0 + V1 = 15; subtracting: V0 - V1 = -0.5.  V = (7.25, 7.75), eta = 7.5.
    #   Q(0, .) = (1 + .9 * 7.25, .9 * 7.75) = (7.525, 6.975)  ->  A(0, .) = (+0.275, -0.275)
    #   Q(1, .) = (2 + .9 * 7.75, .9 * 7.25) = (8.975, 6.525)  ->  A(1, .) = (+1.225, -1.225)
    # Optimum: staying in state 1 forever is worth V*(1) = 2 / (1 - .9) = 20; in state 0,
    #   staying is worth 1 / (1 - .9) = 10 < moving, 0 + .9 * 20 = 18, so V* = (18, 20),
    #   pi* = (move, stay), eta* = (18 + 20) / 2 = 19.
    with jax.enable_x64(True):
        mdp = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), two_state_mdp())
        uniform = jnp.full((2, 2), 0.5)
        adv, values = tabular.advantages(mdp, uniform)
        np.testing.assert_allclose(values, [7.25, 7.75], rtol=1e-12)
        np.testing.assert_allclose(tabular.q_values(mdp, values), [[7.525, 6.975], [8.975, 6.525]], rtol=1e-12)
        np.testing.assert_allclose(adv, [[0.275, -0.275], [1.225, -1.225]], rtol=1e-10)
        assert float(tabular.expected_return(mdp, values)) == pytest.approx(7.5, rel=1e-12)
        optimal, policy = tabular.value_iteration(mdp)
        np.testing.assert_allclose(optimal, [18.0, 20.0], rtol=1e-12)
        np.testing.assert_array_equal(policy, [[0.0, 1.0], [1.0, 0.0]])
        assert float(tabular.expected_return(mdp, optimal)) == pytest.approx(19.0, rel=1e-12)


def test_random_mdps_are_valid_and_reproducible():
    mdps = tabular.random_mdps(mdp_rng(0), SMALL)
    assert mdps.transitions.shape == (8, 6, 3, 6) and mdps.transitions.dtype == np.float64
    np.testing.assert_allclose(mdps.transitions.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(mdps.initial.sum(-1), 1.0, rtol=1e-12)
    assert np.all((mdps.rewards >= 0) & (mdps.rewards <= 1))
    assert np.all((mdps.gamma >= SMALL.gamma_min) & (mdps.gamma <= SMALL.gamma_max))
    np.testing.assert_array_equal(tabular.random_mdps(mdp_rng(0), SMALL).rewards, mdps.rewards)


def test_kl_projection_lands_on_the_ball():
    with jax.enable_x64(True):
        old = jnp.zeros((4, 3))
        far = jnp.array([[5.0, 0, 0], [0, -4.0, 0], [0.01, 0, 0], [0, 0, 9.0]])
        projected = mirror.project_to_kl_ball(far, old, 0.05)
        kl = mirror.kl_to_old(projected, jax.nn.log_softmax(old))
        assert bool(jnp.all(kl <= 0.05))
        np.testing.assert_allclose(kl[jnp.array([0, 1, 3])], 0.05, rtol=1e-6)  # outside: pulled back to the edge
        np.testing.assert_allclose(projected[2], far[2])  # inside: unchanged


@pytest.mark.slow
def test_batch_is_vmapped_and_equals_mdps_run_one_by_one():
    config = SMALL.replace(num_mdps=3, inner_restarts=1)  # restarts: each MDP draws with its own key
    fn = zoo_fn("dpo")
    with jax.enable_x64(True):
        mdps = jax.tree.map(jnp.asarray, tabular.random_mdps(mdp_rng(1), config))
        keys = jax.random.split(jax.random.PRNGKey(2), config.num_mdps)
        batch = jax.jit(lambda m, k: mirror.run_batch(m, k, fn, config))(mdps, keys)
        single = jax.jit(lambda m, k: mirror.mirror_learning_run(m, k, fn, config))
        for i in range(config.num_mdps):
            one = single(jax.tree.map(lambda x: x[i], mdps), keys[i])
            np.testing.assert_allclose(batch.returns[i], one.returns, rtol=1e-9)
            np.testing.assert_allclose(batch.optimal_return[i], one.optimal_return, rtol=1e-12)
        assert batch.returns.shape == (3, config.iterations + 1)


# --- the axioms ---------------------------------------------------------------------------

def failed_axioms(result):
    return {c.name for c in result.checks if not c.passed}


@pytest.mark.parametrize("fn,failing", [
    (negative_quadratic, {"non-negative"}),
    (slope_at_identity, {"non-negative", SLOPE_CHECK}),
    (hidden_kink, {SLOPE_CHECK}),  # autodiff alone misses it
    (lambda r, a, p=0.0: jax.nn.relu(1e10 * (r - 1.0) * a - 1e-4),  # the published ReLU(net - 1e-4) shape
     {SLOPE_CHECK}),
    (lambda r, a, p=0.0: 0.01 + 0.0 * r * a, {"zero at identity"}),
    (lambda r, a, p=0.0: (r - 1.0) ** 2 / (a * a), {"finite"}),  # inf at A = 0
    # Reachable in training but outside the old check's r in [1e-6, 1e6], |A| <= 1e4, tolerance 1e-6:
    (lambda r, a, p=0.0: (r - 1.0) ** 2 * (1 - 2 * jax.nn.relu(r - 2e6)), {"non-negative"}),  # < 0 from r = 2e6
    (lambda r, a, p=0.0: (r - 1.0) ** 2 - 5e-7 + 0 * a, {"non-negative", "zero at identity"}),  # -5e-7 at r = 1
    (lambda r, a, p=0.0: jax.nn.relu(a - 20000.0) * jnp.abs(r - 1.0), {SLOPE_CHECK}),  # a kink for A > 2e4
], ids=["negative", "slope", "kink", "relu-flat-region", "not-zero-at-1", "not-finite", "negative-beyond-1e6",
        "tiny-offset", "kink-at-large-advantage"])
def test_invalid_drifts_fail_the_right_axiom(fn, failing):
    result = check_axioms(fn, SMALL)
    assert failed_axioms(result) >= failing
    if failing != {"finite"}:
        assert "finite" not in failed_axioms(result)
    for check in result.checks:
        if not check.passed:
            assert set(check.at) == {"ratio", "advantage", "progress"} and check.detail


def test_the_checked_domain_is_what_training_reaches():
    """Log-ratios to the trainer's clip (+-20, both ends on the grid), |A| to 1e6."""
    from discover.theorem.axioms import axiom_point_count, axiom_points

    r, a, p = axiom_points(SMALL, np.random.default_rng(0))
    assert np.log(r).min() == pytest.approx(-drifts.LOG_RATIO_CLIP) and np.log(r).max() == pytest.approx(
        drifts.LOG_RATIO_CLIP)
    assert np.abs(a).max() == pytest.approx(drifts.ADVANTAGE_MAX) and 0.0 in a
    assert p.min() == 0 and p.max() == 1 and r.size == axiom_point_count(SMALL)


def test_worst_case_is_located():
    check = check_axioms(negative_quadratic, SMALL).check("non-negative")
    top = np.exp(drifts.LOG_RATIO_CLIP)
    assert check.worst == pytest.approx(-2.0 * (top - 1.0) ** 2, rel=1e-5)
    assert check.at["ratio"] == pytest.approx(top)


def test_kink_detail_names_the_side_and_quotients():
    check = check_axioms(hidden_kink, SMALL).check(SLOPE_CHECK)
    assert check.worst == pytest.approx(0.5, rel=1e-3) and check.at["ratio"] > 1
    assert "right difference quotient" in check.detail


# --- the theorem on random MDPs -------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name,options,scale", [
    ("zero", {}, 1.0), ("kl", {}, 1.0), ("ppo", {}, 1.0), ("dpo", {}, 1.0),
    ("lpo", {"init_scale": 1.0}, 3.0),
])
def test_zoo_drifts_pass(name, options, scale):
    result = verify_drift(zoo_fn(name, scale=scale, **options), SMALL)
    assert result.passed, result.failures
    assert result.improvement.violations == 0
    assert result.improvement.min_inner_objective >= -1e-12  # the kept iterate never ends below pi_old
    assert result.convergence.final_gap_max < 1.0  # every MDP got closer to the optimum
    json.dumps(result.to_dict())  # JSON-able
    if name == "zero":  # GPI: greedy updates, exact policy iteration in a few steps
        assert result.convergence.final_gap_max < 1e-6


def test_trust_region_zero_drift_in_a_kl_ball_passes_and_stays_in_the_ball():
    result = verify_drift(zoo_fn("zero"), SMALL.replace(neighbourhood="kl_ball", kl_delta=0.02))
    assert result.passed, result.failures
    assert 0 < result.max_kl <= 0.02 * (1 + 1e-6)


def test_negative_drift_fails_axioms_and_breaks_monotonic_improvement():
    # PPO's objective is flat beyond the clip; -0.1 (r - 1)^2 makes it grow without bound there,
    # so the global argmax can raise the probability of bad actions. One random restart of the
    # inner ascent finds it (the default); an ascent from pi_old alone rarely leaves the region
    # where the objective follows A_old (scripts/verify_zoo.py measures both).
    result = verify_drift(ppo_minus_quadratic, SMALL.replace(inner_restarts=1))
    assert not result.passed
    assert result.improvement.violations > 0 and result.improvement.mdps_with_violation > 0
    assert result.improvement.first_mdp_with_violation is not None
    assert any(f.startswith("axiom 'non-negative' fails") for f in result.failures)
    assert any(f.startswith("monotonic improvement violated") for f in result.failures)


def test_a_slope_at_identity_fails_the_axiom_and_can_break_improvement():
    # d = 2 (r - 1) A turns the objective into -E_pi[A]: the policy gets worse at once.
    # (A slope with zero mean, 0.1 (r - 1), fails the same axiom but leaves the per-state drift
    # E_{a~pi_old}[0.1 (r - 1)] = 0.1 (sum_a pi - 1) = 0, so its updates are GPI's: the
    # per-sample axioms are sufficient for the theorem, not necessary.)
    result = verify_drift(advantage_slope, SMALL)
    assert SLOPE_CHECK in failed_axioms(result.axioms)
    assert result.improvement.violations > 0 and result.improvement.worst_at["iteration"] == 0


def test_bad_config_is_a_one_line_error():
    for changes, fragment in [({"num_mdps": 0}, "num_mdps=0"), ({"neighbourhood": "ball"}, "choose one of none, kl"),
                              ({"gamma_max": 1.0}, "gamma_max=1.0"), ({"advantage_scaling": "z"}, "std, raw")]:
        with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
            SMALL.replace(**changes).validate()


# --- the command ----------------------------------------------------------------------------

@pytest.fixture
def main():
    from discover.cli.main import main as cli_main

    return cli_main


def settings(pairs):
    return [x for pair in pairs for x in ("--set", pair)]


def test_cli_passes_and_writes_the_verdict(main, tmp_path, capsys):
    out = tmp_path / "verdict.json"
    code = main(["verify", "ppo", "--set", "drift.eps=0.1", *settings(TINY_SETTINGS), "--out", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["passed"] is True and result["failures"] == []
    assert result["drift"] == "ppo" and result["drift_options"] == {"eps": 0.1}
    assert result["config"]["num_mdps"] == 4
    assert {c["name"] for c in result["axioms"]["checks"]} >= {"non-negative", "zero at identity"}
    for key in ("improvement", "convergence", "seconds"):
        assert key in result
    printed = capsys.readouterr().out
    assert "monotonic improvement" in printed and "PASSED" in printed


def test_cli_failing_drift_file_exits_1(main, tmp_path, capsys):
    """A real drift file that breaks the axioms (a closed form, negative beyond r = 2e6): verify
    loads it without the axiom gate, checks it, and fails."""
    from discover.files.drift_file import save_drift

    path = str(tmp_path / "bad.drift.npz")
    save_drift(path, drifts.get("closed_form", expression="(r-1)**2*(1-2*relu(r-2e6))"), {})
    out = tmp_path / "verdict.json"
    assert main(["verify", path, *settings(TINY_SETTINGS), "--out", str(out)]) == 1
    result = json.loads(out.read_text())
    assert result["passed"] is False and any("non-negative" in f for f in result["failures"])
    assert "FAILED" in capsys.readouterr().out


@pytest.mark.parametrize("args,fragment", [
    (["nope"], "unknown drift 'nope'; allowed: zero, kl, ppo, dpo, lpo, ta_lpo, atoms, lpo_v1, ta_lpo_v1, trpo, "
               "transfer-v1, or the path of a drift file"),
    (["ppo", "--set", "colour=blue"], "unknown setting 'colour'; allowed: num_mdps,"),
    (["ppo", "--set", "num_mdps=many"], "num_mdps='many' is not a valid int"),
    (["ppo", "--set", "neighbourhood=ball"], "neighbourhood='ball' is not allowed"),
    (["ppo", "--set", "drift.alpha=1"], "drift 'ppo' has no option 'alpha'; allowed: drift.eps"),
    (["ppo", "--set", "drift.eps"], "--set 'drift.eps' is not of the form key=value"),
    (["ppo", "--set", "drift.eps=-1"], "eps=-1.0 is not allowed"),
    (["transfer-v1", "--set", "drift.eps=0.1"], "--set drift.<option> cannot change the drift stored in"),
])
def test_cli_bad_input_is_one_line_and_exit_status_2(main, args, fragment, capsys):
    assert main(["verify", *args]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err


def test_trpo_is_verified_as_the_zero_drift_in_a_kl_ball(main, tmp_path, capsys):
    out = tmp_path / "trpo.json"
    assert main(["verify", "trpo", *settings(TINY_SETTINGS), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["drift"] == "zero" and result["passed"]
    assert result["max_kl"] <= 0.05 * (1 + 1e-6)  # the ball (kl_delta's default) held in every state
    assert main(["verify", "trpo", "--set", "neighbourhood=none"]) == 2
    assert "fixed by trpo" in capsys.readouterr().err
