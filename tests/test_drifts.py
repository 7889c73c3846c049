"""The drift zoo: the mirror-learning axioms for random parameters and extreme inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from inner_loop import drifts
from inner_loop.errors import ConfigError

# Every zoo drift, with option settings that matter (neural ones random at init).
ZOO_CASES = [
    ("zero", {}), ("kl", {}), ("kl", {"coef": 10.0}), ("ppo", {}), ("ppo", {"eps": 0.05}),
    ("dpo", {}), ("dpo", {"alpha": 0.5, "beta": 3.0}),
    ("lpo", {"init_scale": 1.0}), ("lpo", {"start": "none", "init_scale": 1.0}),
    ("lpo", {"start": "none", "init_scale": 1.0, "num_layers": 2, "hidden_size": 16}),
    ("lpo", {"start": "dpo", "init_scale": 1.0}),
    ("ta_lpo", {"init_scale": 1.0}), ("ta_lpo", {"start": "none", "init_scale": 1.0}),
    ("lpo_v1", {"init_scale": 1.0}), ("ta_lpo_v1", {"start": "none", "init_scale": 1.0}),
]
IDS = [f"{n}-{o}" for n, o in ZOO_CASES]


def scaled_params(drift, seed, scale):
    params = drift.init(jax.random.PRNGKey(seed))
    return jax.tree.map(lambda p: p * scale, params)


def inputs(seed, n=512):
    """Points of the domain training reaches: log r in +-LOG_RATIO_CLIP, |A| up to ADVANTAGE_MAX."""
    rng = np.random.default_rng(seed)
    ratio = np.exp(rng.uniform(-drifts.LOG_RATIO_CLIP, drifts.LOG_RATIO_CLIP, n))
    ratio[:8] = [np.exp(-drifts.LOG_RATIO_CLIP), np.exp(drifts.LOG_RATIO_CLIP), 1.0, 1 - 1e-7, 1 + 1e-7, 0.5, 2.0, 1.0]
    adv = rng.uniform(-1e4, 1e4, n)
    adv[8:16] = [0.0, drifts.ADVANTAGE_MAX, -drifts.ADVANTAGE_MAX, 1e-8, -1e-8, 1.0, -1.0, 0.0]
    adv[:2] = [drifts.ADVANTAGE_MAX, -drifts.ADVANTAGE_MAX]  # with the extreme ratios
    progress = rng.uniform(0, 1, n)
    progress[:4] = [0.0, 1.0, 0.0, 1.0]
    return (jnp.asarray(ratio, jnp.float32), jnp.asarray(adv, jnp.float32), jnp.asarray(progress, jnp.float32))


def one_sided_quotients(drift_fn, adv, h):
    """|d(1 +- h, A) - d(1, A)| / h for both sides (float64)."""
    return [jnp.abs(drift_fn(jnp.full_like(adv, 1.0 + side * h), adv) - drift_fn(jnp.ones_like(adv), adv)) / h
            for side in (-1.0, 1.0)]


def vanishes_from_both_sides(drift_fn, adv):
    """Zero one-sided derivatives: the quotients shrink with h (a kink or a slope keeps them
    constant). Not jax.grad: relu's derivative at 0 is 0, so grad cannot see a kink at r = 1."""
    large = one_sided_quotients(drift_fn, adv, 1e-7)
    small = one_sided_quotients(drift_fn, adv, 1e-11)
    return all(bool(jnp.all(s <= 1e-2 * l + 1e-9)) for s, l in zip(small, large))


# Flatness is judged with h >= 1e-11, so |A| times the weights must stay well below 1e11 / 1e4
# (the net's curvature at r = 1 grows like (weight |A|)^2; beyond, h sees its saturated shape).
ADVANTAGES = [-1e4, -3.0, -0.1, 0.1, 3.0, 1e4]


def flat_at_identity(drift, params, adv, progress):
    """`vanishes_from_both_sides` for zoo `drift` with `params`, in float64, at each progress."""
    with jax.enable_x64(True):
        params64 = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), params)
        adv64 = jnp.asarray(adv, jnp.float64)
        return all(vanishes_from_both_sides(lambda r, a: drift(params64, r, a, p), adv64)
                   for p in sorted({float(progress.min()), float(progress.max())}))


@pytest.mark.parametrize("name,options", ZOO_CASES, ids=IDS)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), log_scale=st.floats(-3, 4))
def test_axioms_hold_for_random_params_and_extreme_inputs(name, options, seed, log_scale):
    drift = drifts.get(name, **options)
    params = scaled_params(drift, seed, 10.0 ** log_scale)
    ratio, adv, progress = inputs(seed)
    d = drift(params, ratio, adv, progress)
    assert d.shape == ratio.shape
    assert bool(jnp.all(jnp.isfinite(d))), "drift must be finite"
    assert bool(jnp.all(d >= 0)), f"negative drift {float(d.min())}"
    at_identity = drift(params, jnp.ones_like(adv), adv, progress)
    assert bool(jnp.all(at_identity == 0)), "drift must be 0 at r = 1"
    if log_scale <= 2:  # see ADVANTAGES
        assert flat_at_identity(drift, params, jnp.asarray(ADVANTAGES), progress), "slope or kink at r = 1"
    grads = jax.vmap(jax.grad(lambda r, a, p: drift(params, r, a, p)))(ratio, adv, progress)
    assert bool(jnp.all(jnp.isfinite(grads))), "gradient must be finite at extreme inputs"


@pytest.mark.parametrize("start", ["none", "ppo", "dpo"])
@pytest.mark.parametrize("scale", [1.0, 10.0, 100.0])
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_family_axioms_for_random_params_at_scales_1_10_100(start, scale, seed):
    """Every layer random (read-out too), times 1, 10, 100; on the domain training reaches."""
    drift = drifts.get("lpo", start=start, hidden_size=16, num_layers=2, init_scale=1.0)
    params = scaled_params(drift, seed, scale)
    ratio, adv, progress = inputs(seed)
    d = drift(params, ratio, adv, progress)
    assert bool(jnp.all(jnp.isfinite(d))) and bool(jnp.all(d >= 0))
    assert bool(jnp.all(drift(params, jnp.ones_like(adv), adv, progress) == 0))
    assert flat_at_identity(drift, params, jnp.asarray(ADVANTAGES), progress)


@pytest.mark.parametrize("name,options", ZOO_CASES, ids=IDS)
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_flat_at_identity_from_both_sides(name, options, scale):
    """No kink at r = 1 hidden by relu'(0) = 0, and no flat region that weights can shrink."""
    with jax.enable_x64(True):
        drift = drifts.get(name, **options)
        params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64) * scale, drift.init(jax.random.PRNGKey(3)))
        adv = jnp.asarray(ADVANTAGES, jnp.float64)
        for progress in (0.0, 1.0):
            assert vanishes_from_both_sides(lambda r, a: drift(params, r, a, progress), adv)


def test_the_two_sided_check_catches_the_published_relu_construction():
    """ReLU(net - 1e-4) with large weights: its flat region shrinks below any h, a kink."""
    with jax.enable_x64(True):
        adv = jnp.asarray(ADVANTAGES, jnp.float64)
        assert not vanishes_from_both_sides(lambda r, a: jax.nn.relu(1e10 * (r - 1.0) * a - 1e-4), adv)


def test_the_flatness_test_catches_a_relu_kink_that_grad_cannot_see():
    """relu(0.3 (r - 1) A): a kink at r = 1 with slope 0.3|A| on one side; jax.grad there is 0."""
    def kinked(r, a):
        return jax.nn.relu(0.3 * (r - 1.0) * a)

    with jax.enable_x64(True):
        adv = jnp.asarray(ADVANTAGES, jnp.float64)
        assert bool(jnp.all(jax.vmap(jax.grad(kinked))(jnp.ones_like(adv), adv) == 0))  # grad sees nothing
        assert not vanishes_from_both_sides(kinked, adv)


@pytest.mark.parametrize("name", ["lpo", "ta_lpo"])
@pytest.mark.parametrize("start", ["ppo", "dpo"])
def test_neural_drifts_are_finite_wherever_their_start_is(name, start):
    """The features are computed without overflow: at init the drift equals its start even at
    ratios (1e19, 2e19, 1e38) where u|u| overflows float32."""
    drift = drifts.get(name, start=start)
    r = jnp.asarray([1e19, 2e19, 1e38, 1e19, 2e19, 1e38], jnp.float32)
    a = jnp.asarray([1.0, 1.0, 1.0, -1.0, -1.0, -1.0], jnp.float32)
    expected = drifts.get(start)({}, r, a)
    assert bool(jnp.all(jnp.isfinite(expected)))
    np.testing.assert_array_equal(drift(drift.init(jax.random.PRNGKey(0)), r, a, 0.5), expected)


def test_dpo_matches_its_closed_form():
    rng = np.random.default_rng(0)
    r = 10.0 ** rng.uniform(-2, 2, 1000)
    a = rng.normal(0, 3, 1000)
    alpha, beta = 2.0, 0.6
    expected = np.where(
        a >= 0,
        np.maximum(0, (r - 1) * a - alpha * np.tanh((r - 1) * a / alpha)),
        np.maximum(0, np.log(r) * a - beta * np.tanh(np.log(r) * a / beta)),
    )
    got = drifts.get("dpo")({}, jnp.asarray(r, jnp.float32), jnp.asarray(a, jnp.float32))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=2e-4, atol=1e-5)


def test_ppo_drift_gives_the_clipped_objective():
    rng = np.random.default_rng(1)
    r = jnp.asarray(rng.uniform(0.2, 3, 1000), jnp.float32)
    a = jnp.asarray(rng.normal(size=1000), jnp.float32)
    eps = 0.2
    objective = r * a - drifts.get("ppo", eps=eps)({}, r, a)
    np.testing.assert_allclose(objective, jnp.minimum(r * a, jnp.clip(r, 1 - eps, 1 + eps) * a), rtol=1e-6, atol=1e-6)


def test_kl_drift_expectation_is_the_kl_divergence():
    rng = np.random.default_rng(2)
    p_old = rng.dirichlet(np.ones(5))
    p_new = rng.dirichlet(np.ones(5))
    ratio = jnp.asarray(p_new / p_old, jnp.float32)
    expected = 3.0 * np.sum(p_old * np.log(p_old / p_new))
    got = jnp.sum(jnp.asarray(p_old, jnp.float32) * drifts.get("kl", coef=3.0)({}, ratio, jnp.zeros(5)))
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


@pytest.mark.parametrize("name", ["lpo", "ta_lpo"])
@pytest.mark.parametrize("start", ["none", "ppo", "dpo"])
def test_init_is_exactly_the_start(name, start):
    r, a, progress = inputs(7)
    drift = drifts.get(name, start=start, hidden_size=8)
    expected = drifts.get(start if start != "none" else "zero")({}, r, a)
    np.testing.assert_array_equal(drift(drift.init(jax.random.PRNGKey(0)), r, a, progress), expected)


def _skip_only(drift, weights):
    """Params of `drift` whose only non-zero layer is the linear skip, set to `weights`."""
    params = jax.tree.map(jnp.zeros_like, drift.init(jax.random.PRNGKey(0)))
    params["params"]["skip"]["kernel"] = jnp.asarray(weights, jnp.float32)[:, None]
    return params


# Feature order (drifts.lpo_features): odd(r-1), even(r-1), odd(log r), even(log r), then
# each times A, then each times |A|.
EVEN_ABS_ADV = 8 + 1


def test_family_goes_below_ppo_and_is_zero_on_an_interval():
    lpo = drifts.get("lpo", start="ppo", hidden_size=4)
    r = jnp.linspace(0.3, 3.0, 271)
    a = jnp.full_like(r, 2.0)
    lowered = lpo(_skip_only(lpo, -0.5 * np.eye(12)[EVEN_ABS_ADV]), r, a)
    ppo = drifts.get("ppo")({}, r, a)
    assert bool(jnp.all(lowered <= ppo)) and bool(jnp.any(lowered < ppo - 0.1))
    # From no drift: even(r-1)|A| with a negative and an odd(log r)-free positive part is
    # zero near r = 1 and positive far from it (`h` changes sign), through the tanh layer.
    none = drifts.get("lpo", start="none", hidden_size=1)
    params = _skip_only(none, 1.0 * np.eye(12)[EVEN_ABS_ADV])
    params["params"]["Dense_0"]["kernel"] = jnp.asarray(10.0 * np.eye(12)[EVEN_ABS_ADV], jnp.float32)[:, None]
    params["params"]["out"]["kernel"] = jnp.asarray([[-0.3]], jnp.float32)
    d = none(params, r, a)
    near = jnp.abs(r - 1.0) < 0.1
    assert bool(jnp.all(d[near] == 0)) and int(jnp.sum(near)) > 10
    assert float(d[-1]) > 1.0


def test_family_grows_linearly_in_ratio_times_advantage():
    lpo = drifts.get("lpo", start="none", hidden_size=4)
    params = _skip_only(lpo, np.eye(12)[EVEN_ABS_ADV])
    r = jnp.asarray([11.0, 101.0, 1001.0])
    for adv in (1.0, -5.0):
        d = lpo(params, r, jnp.full_like(r, adv))
        np.testing.assert_allclose(d / ((r - 1.0) * abs(adv)), 1.0, rtol=0.02)
    assert float(lpo(params, jnp.asarray([1e-6]), jnp.asarray([3.0]))[0]) > 0.9 * 3.0  # |r - 1| |A| toward r = 0


def test_family_goes_above_ppo():
    lpo = drifts.get("lpo", start="ppo", hidden_size=4)
    r, a = jnp.asarray([1.5, 0.5]), jnp.asarray([1.0, -1.0])
    raised = lpo(_skip_only(lpo, 0.5 * np.eye(12)[EVEN_ABS_ADV]), r, a)
    assert bool(jnp.all(raised > drifts.get("ppo")({}, r, a)))


def test_ta_lpo_depends_on_progress():
    drift = drifts.get("ta_lpo", start="none", init_scale=1.0)
    params = drift.init(jax.random.PRNGKey(0))
    r, a = jnp.asarray([1.5]), jnp.asarray([1.0])
    assert float(drift(params, r, a, 0.0)[0]) != float(drift(params, r, a, 1.0)[0])


def test_vmap_over_a_population_of_params_matches_a_loop():
    drift = drifts.get("lpo", start="none", init_scale=1.0)
    population = jax.vmap(drift.init)(jax.random.split(jax.random.PRNGKey(0), 4))
    r, a = inputs(0, 64)[:2]
    batched = jax.jit(jax.vmap(lambda p: drift(p, r, a)))(population)
    for i in range(4):
        member = jax.tree.map(lambda x: x[i], population)
        np.testing.assert_allclose(batched[i], drift(member, r, a), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("call,message", [
    (lambda: drifts.get("nope"), "unknown drift 'nope'"),
    (lambda: drifts.get("ppo", alpha=1.0), "drift 'ppo' has no option 'alpha'"),
    (lambda: drifts.get("zero", eps=1.0), "drift 'zero' has no option 'eps'; allowed: none"),
    (lambda: drifts.get("ppo", eps=-0.1), "eps=-0.1"),
    (lambda: drifts.get("lpo", start="sideways"), "start='sideways'"),
])
def test_bad_drift_requests_are_one_line_errors(call, message):
    with pytest.raises(ConfigError) as err:
        call()
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
@pytest.mark.parametrize("start,target", [("ppo", "dpo"), ("none", "ppo")])
def test_family_reaches_dpo_from_ppo_and_ppo_from_nothing(start, target):
    """Fitted by gradient descent on the (r, A) samples of a real (short, lr 1e-2) PPO run;
    scripts/reach.py gives 3-5 % with the full run and more steps."""
    from discover.training.reach import collect_samples, fit_family
    from inner_loop import TrainConfig

    config = TrainConfig(env_id="CartPole-v1", total_timesteps=8192, lr=1e-2)
    samples = collect_samples(config, drifts.get("ppo"), {}, jax.random.PRNGKey(0), every=2)
    assert float(jnp.percentile(samples.ratio, 99)) > 1.2  # the samples leave PPO's clip range
    # A random quarter (the samples of every epoch are update_epochs = 4 times an update's batch):
    # the fit's cost grows with the samples, its error does not shrink.
    n = samples.ratio.size
    kept = jax.random.choice(jax.random.PRNGKey(2), n, (n // 4,), replace=False)
    _, error = fit_family(drifts.get("lpo", start=start, hidden_size=64), drifts.get(target),
                          jax.tree.map(lambda x: x[kept], samples), jax.random.PRNGKey(1), steps=2000)
    assert error < 0.15
