"""The outer-loop core: fitness normalisation, NaN handling, strategies, one generation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inner_loop import TrainConfig, drifts
from inner_loop.errors import ConfigError
from outer_loop import (EvolutionState, Normalisation, evolve, fitness_standard_error, make_drift_fitness,
                        make_generation, make_population_fitness, make_strategy, normalised_fitness, search_noise,
                        worst_if_not_finite)
from outer_loop.strategy import strategy_names


def norm(*ppo, untrained=None):
    return Normalisation(ppo=list(ppo), untrained=list(untrained or [0.0] * len(ppo)))


def test_fitness_is_mean_over_envs_of_seed_mean_over_reference():
    returns = jnp.asarray([[[100.0, 300.0], [10.0, 30.0]],     # member 0: 200/400, 20/10
                           [[400.0, 400.0], [5.0, 5.0]]])     # member 1: 400/400, 5/10
    np.testing.assert_allclose(normalised_fitness(returns, jnp.asarray([400.0, 10.0])), [1.25, 0.75])


def test_a_members_standard_error_is_that_of_its_ranking_over_resampled_seeds():
    # Two envs (Acrobot-like negative returns on the second), three seeds, four members: the
    # closed form sqrt(sum_e var_e / K) / E of the member's own noise, against the spread over
    # many redrawn seed sets of its fitness minus the population's. A large seed effect that
    # every member shares (common random numbers) must not count as noise.
    rng = np.random.default_rng(0)
    ppo, untrained = np.array([400.0, -100.0]), np.array([20.0, -500.0])
    means, sds = np.array([300.0, -200.0]), np.array([60.0, 90.0])
    shared = rng.normal(0.0, 500.0, (20000, 1, 2, 3))  # per seed, common to the members
    draws = (rng.normal(means[None, None, :, None], sds[None, None, :, None], (20000, 4, 2, 3)) + shared)
    draws = jnp.asarray(draws, jnp.float32)
    fitness = np.asarray(jax.vmap(lambda r: normalised_fitness(r, ppo, untrained))(draws))
    se = np.asarray(jax.vmap(lambda r: fitness_standard_error(r, ppo, untrained))(draws))
    relative = fitness[:, 0] - fitness.mean(axis=1)
    want = np.sqrt(np.sum((sds / (ppo - untrained)) ** 2) / 3) / 2 * np.sqrt(3 / 4)  # minus its 1/4 share
    assert abs(relative.std() / want - 1) < 0.02  # the closed form is the truth ...
    assert abs(np.sqrt(np.mean(se ** 2)) / want - 1) < 0.03  # ... and the estimate finds it from 3 seeds
    exact = jnp.asarray([[[100.0, 300.0]], [[300.0, 300.0]]])  # scores (0.25, 0.75), (0.75, 0.75): d = (-+0.25, 0)
    np.testing.assert_allclose(fitness_standard_error(exact, jnp.asarray([400.0])), [0.125, 0.125], rtol=1e-6)
    assert np.isnan(np.asarray(fitness_standard_error(exact[..., :1], jnp.asarray([400.0])))).all()
    broken = exact.at[1, 0, 0].set(jnp.nan)  # a diverged member: NaN, and out of the population mean
    np.testing.assert_allclose(fitness_standard_error(broken, jnp.asarray([400.0])), [0.0, np.nan])


def test_search_noise_is_the_spread_over_the_noise_of_the_finite_members():
    fitness = jnp.asarray([1.0, 1.2, 0.8, -5.0])  # the last one replaced a NaN member
    noise = search_noise(fitness, jnp.asarray([0.1, 0.1, 0.1, jnp.nan]))
    np.testing.assert_allclose(noise["fitness_noise"], 0.1, rtol=1e-6)
    np.testing.assert_allclose(noise["fitness_snr"], np.std([1.0, 1.2, 0.8]) / 0.1, rtol=1e-5)
    assert np.isnan(search_noise(fitness, jnp.full(4, jnp.nan))["fitness_noise"])  # one seed: unknown


def test_normalised_fitness_ranks_correctly_on_negative_returns():
    """Acrobot-like returns (untrained -500, PPO -100): closer to 0 is better, and 0 / 1
    mark the untrained policy / PPO; the old return/PPO ratio ranked them backwards."""
    returns = jnp.asarray([[[-500.0, -500.0]], [[-100.0, -100.0]], [[-80.0, -90.0]], [[-300.0, -300.0]]])
    ppo, untrained = jnp.asarray([-100.0]), jnp.asarray([-500.0])
    fitness = normalised_fitness(returns, ppo, untrained)
    np.testing.assert_allclose(fitness, [0.0, 1.0, 1.0375, 0.5])
    assert list(np.argsort(-np.asarray(fitness))) == [2, 1, 3, 0]
    assert list(np.argsort(-np.asarray(normalised_fitness(returns, ppo)))) != [2, 1, 3, 0]
    # Two envs of very different scales weigh alike: each is 0.5 of the way to PPO.
    two = jnp.asarray([[[-300.0], [250.0]]])
    np.testing.assert_allclose(normalised_fitness(two, jnp.asarray([-100.0, 500.0]),
                                                  jnp.asarray([-500.0, 0.0])), [0.5])


def test_non_finite_returns_make_the_worst_member():
    fitness = worst_if_not_finite(jnp.asarray([0.5, jnp.nan, 2.0, jnp.inf, -jnp.inf]))
    assert bool(jnp.all(jnp.isfinite(fitness)))
    assert float(fitness[1]) < 0.5 and float(fitness[3]) < 0.5 and float(fitness[4]) < 0.5
    assert bool(jnp.all(jnp.isfinite(worst_if_not_finite(jnp.asarray([jnp.nan, jnp.nan])))))


def test_antithetic_pairs_are_i_and_i_plus_half():
    solution = {"w": jnp.zeros(3)}
    strategy, params = make_strategy("Open_ES", 6, solution, std=0.1)
    state = strategy.init(jax.random.PRNGKey(0), solution, params)
    population, _ = strategy.ask(jax.random.PRNGKey(1), state, params)
    np.testing.assert_allclose(population["w"][:3], -population["w"][3:], rtol=1e-6)
    assert float(jnp.abs(population["w"]).max()) < 1.0  # std 0.1, not evosax's default 1.0


@pytest.mark.parametrize("call,fragment", [
    (lambda: make_strategy("NoSuchES", 8, {"w": jnp.zeros(2)}), "unknown strategy 'NoSuchES'; allowed:"),
    (lambda: make_strategy("Open_ES", 7, {"w": jnp.zeros(2)}), "population_size=7 is not allowed for Open_ES"),
    (lambda: make_strategy("SNES", 1, {"w": jnp.zeros(2)}), "population_size=1 is not allowed"),
])
def test_bad_strategy_requests_are_one_line_errors(call, fragment):
    with pytest.raises(ConfigError) as err:
        call()
    assert fragment in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["Open_ES", "SNES", "Sep_CMA_ES"])
def test_generations_on_a_tiny_config_run_jitted_and_move_the_mean(name):
    # Two epochs at a high lr: the ratio leaves 1, so members' drifts change their returns.
    config = TrainConfig(env_id="CartPole-v1", total_timesteps=4 * 16 * 2, num_envs=4, num_steps=16,
                         update_epochs=2, num_minibatches=2, lr=1e-2)
    drift = drifts.get("lpo", hidden_size=4)
    solution = drift.init(jax.random.PRNGKey(0))
    strategy, params = make_strategy(name, 4, solution, std=0.1)
    fitness_fn = make_population_fitness([config], drift, norm(20.0), seeds_per_member=2)
    generation = make_generation(strategy, params, fitness_fn, norm(20.0))
    state = EvolutionState(strategy.init(jax.random.PRNGKey(1), solution, params), jax.random.PRNGKey(2))
    new_state, metrics = jax.jit(evolve, static_argnums=(0, 2))(generation, state, 2)
    assert metrics["fitness"].shape == (2, 4)
    assert bool(jnp.all(jnp.isfinite(metrics["fitness"])))
    # The noise is measured; where every member scored alike on every seed (seen with
    # Sep_CMA_ES's second generation on this tiny config) it is 0 and the SNR undefined.
    noise, snr = np.asarray(metrics["fitness_noise"]), np.asarray(metrics["fitness_snr"])
    assert np.all(noise >= 0) and noise.max() > 0 and np.all(np.isfinite(snr[noise > 0]))
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()),
                         strategy.get_mean(new_state.es_state), strategy.get_mean(state.es_state))
    assert max(jax.tree.leaves(moved)) > 0


@pytest.mark.slow
@pytest.mark.parametrize("start", ["none", "ppo"])
def test_first_generation_gives_a_search_signal_on_every_layer(start):
    """From the exact start (read-out layers zero), antithetic pairs differ in fitness and
    the first update moves every layer of the mean (with g^2 the read-out was dead)."""
    config = TrainConfig(env_id="CartPole-v1", total_timesteps=4 * 32 * 2, num_envs=4, num_steps=32,
                         update_epochs=2, num_minibatches=2, lr=1e-2)
    drift = drifts.get("lpo", hidden_size=4, start=start)
    solution = drift.init(jax.random.PRNGKey(0))
    strategy, params = make_strategy("Open_ES", 8, solution, std=0.1, lr=0.05)
    generation = make_generation(strategy, params, make_population_fitness([config], drift, norm(100.0), 2))
    state = EvolutionState(strategy.init(jax.random.PRNGKey(1), solution, params), jax.random.PRNGKey(2))
    new_state, metrics = jax.jit(generation)(state)
    fitness = np.asarray(metrics["fitness"])
    assert np.sum(fitness[:4] != fitness[4:]) >= 2, "antithetic pairs must differ in fitness"
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).min()),
                         strategy.get_mean(new_state.es_state), strategy.get_mean(state.es_state))
    for path, value in jax.tree_util.tree_flatten_with_path(moved)[0]:
        assert value > 0, f"layer {jax.tree_util.keystr(path)} got no search signal"


@pytest.mark.slow
def test_randomised_learning_rate_is_drawn_per_run_and_common_to_members():
    from outer_loop.evolution import randomized_hparams
    from inner_loop import make_train

    config = TrainConfig(env_id="CartPole-v1", total_timesteps=4 * 16, num_envs=4, num_steps=16,
                         update_epochs=1, num_minibatches=1)
    trainer = make_train(config, drifts.get("ppo"))
    keys = jax.random.split(jax.random.PRNGKey(0), 256)
    lrs = np.asarray(jax.vmap(lambda k: randomized_hparams(trainer, k, {"lr": (1e-4, 1e-2)}).lr)(keys))
    assert lrs.min() >= 1e-4 * (1 - 1e-6) and lrs.max() <= 1e-2 * (1 + 1e-6)
    logs = np.log10(lrs)
    assert abs(logs.mean() + 3.0) < 0.15 and np.mean(logs < -3.5) > 0.15 and np.mean(logs > -2.5) > 0.15
    assert randomized_hparams(trainer, keys[0], None).lr == np.float32(config.lr)
    drift = drifts.get("lpo", hidden_size=4, init_scale=0.1)
    config = config.replace(total_timesteps=4 * 16 * 8, final_window=0.5)  # returns after some learning
    fitness_fn = make_population_fitness([config], drift, norm(1.0), 2, randomize={"lr": (1e-4, 1e-1)})
    params = drift.init(jax.random.PRNGKey(0))
    _, returns = jax.jit(fitness_fn)(jax.random.PRNGKey(0), jax.tree.map(lambda x: jnp.stack([x, x]), params))
    np.testing.assert_allclose(returns[0], returns[1])
    _, fixed = jax.jit(make_population_fitness([config], drift, norm(1.0), 2))(
        jax.random.PRNGKey(0), jax.tree.map(lambda x: x[None], params))
    assert not np.allclose(returns[0], fixed[0])


@pytest.mark.slow
def test_every_member_sees_the_same_seeds():
    """Common random numbers: identical members get identical returns, seed for seed."""
    config = TrainConfig(env_id="CartPole-v1", total_timesteps=4 * 16, num_envs=4, num_steps=16,
                         update_epochs=1, num_minibatches=1)
    drift = drifts.get("lpo", hidden_size=4, init_scale=0.1)
    fitness_fn = make_population_fitness([config], drift, norm(1.0), seeds_per_member=2)
    params = drift.init(jax.random.PRNGKey(0))
    identical = jax.tree.map(lambda x: jnp.stack([x, x, x]), params)
    _, returns = jax.jit(fitness_fn)(jax.random.PRNGKey(0), identical)
    assert returns.shape == (3, 1, 2)
    np.testing.assert_allclose(returns[0], returns[1])
    np.testing.assert_allclose(returns[0], returns[2])
    assert float(returns[0, 0, 0]) != float(returns[0, 0, 1])  # but different seeds differ


def _generation_numbers(devices):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    script = os.path.join(os.path.dirname(__file__), "sharded_generation.py")
    out = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_population_sharded_over_4_devices_gives_the_same_numbers_as_1_device():
    one, four = _generation_numbers(1), _generation_numbers(4)
    assert (one["devices"], four["devices"]) == (1, 4)
    assert len(set(map(tuple, one["fitness"]))) == 2 and len(set(one["fitness"][0])) > 1  # not degenerate
    assert four["fitness"] == one["fitness"]  # every inner run bit for bit
    # The ES update is compiled into a different program on 4 devices; XLA may order its
    # float32 reductions differently, so the new mean agrees to rounding (seen: 6e-9).
    for a, b in zip(four["mean"], one["mean"]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # The mean drift's 8 seeds run 2 per device on 4 devices: the same runs at another vmap
    # size, so equal up to float rounding (inner_loop.parallel).
    np.testing.assert_allclose(four["mean_drift_returns"], one["mean_drift_returns"], rtol=1e-5)
    assert len(set(np.ravel(one["mean_drift_returns"]))) > 1


@pytest.mark.slow
def test_one_drift_scored_over_split_seeds_equals_a_population_of_one():
    from inner_loop.parallel import runs_mesh

    config = TrainConfig(env_id="CartPole-v1", total_timesteps=4 * 16 * 2, num_envs=4, num_steps=16,
                         update_epochs=1, num_minibatches=1)
    acrobot = config.replace(env_id="Acrobot-v1")
    drift = drifts.get("lpo", hidden_size=4, init_scale=0.1)
    params = drift.init(jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(3)
    population = make_population_fitness([config, acrobot], drift, norm(20.0, -50.0, untrained=[5.0, -400.0]),
                                         seeds_per_member=3)
    want_fitness, want = jax.jit(population)(key, jax.tree.map(lambda x: x[None], params))
    for mesh in (None, runs_mesh(3)):  # 3 seeds: padded to a multiple of the devices
        fitness, returns = jax.jit(make_drift_fitness([config, acrobot], drift, norm(20.0, -50.0, untrained=[5.0, -400.0]), 3,
                                                    mesh=mesh))(
            key, params)
        assert returns.shape == (1, 2, 3)
        np.testing.assert_allclose(returns, want, rtol=1e-5)
        np.testing.assert_allclose(fitness, want_fitness, rtol=1e-5)


def test_population_that_does_not_split_over_every_device_of_several_hosts_is_a_one_line_error():
    from outer_loop.sharding import member_mesh

    with pytest.raises(ConfigError, match="population_size=6 does not split over 4 devices"):
        member_mesh(6, devices=[jax.devices()[0]] * 4, use_all=True)


def test_on_one_host_the_population_uses_the_most_devices_it_divides_over():
    from outer_loop.sharding import member_mesh

    four = [jax.devices()[0]] * 4  # a mesh only needs the list; nothing runs on it here
    assert member_mesh(8, devices=four).size == 4
    assert member_mesh(6, devices=four).size == 3
    assert member_mesh(2, devices=four).size == 2
    assert member_mesh(7, devices=four) is None  # prime: one device
    assert member_mesh(8, devices=four[:1]) is None


@pytest.mark.slow
def test_orthogonal_init_equals_flax_and_is_orthogonal_under_nested_vmap():
    import flax.linen as nn

    from inner_loop.networks import orthogonal

    keys = jax.random.split(jax.random.PRNGKey(0), (3, 2))
    for shape in [(4, 64), (64, 64), (64, 2)]:
        ours = jax.jit(jax.vmap(jax.vmap(lambda k: orthogonal(1.5)(k, shape))))(keys)
        flax_init = jax.vmap(jax.vmap(lambda k: nn.initializers.orthogonal(1.5)(k, shape)))(keys)
        np.testing.assert_allclose(ours, flax_init, atol=1e-6)
        q = np.asarray(ours[1, 1]) / 1.5
        small = min(shape)
        gram = q.T @ q if shape[0] >= shape[1] else q @ q.T
        np.testing.assert_allclose(gram, np.eye(small), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", strategy_names())
def test_every_listed_strategy_minimises_a_quadratic(name):
    """`strategy=NAME` takes any name in strategy_names(): each must run and move its mean
    towards the minimum of sum((x - 1)^2) (evosax minimises), with our std/lr/shaping."""
    solution = jnp.zeros(6)
    strategy, params = make_strategy(name, 16, solution, std=0.1, lr=0.05)

    @jax.jit
    def run(key):
        def generation(state, key):
            ask_key, tell_key = jax.random.split(key)
            x, state = strategy.ask(ask_key, state, params)
            state, _ = strategy.tell(tell_key, x, jnp.sum((x - 1.0) ** 2, axis=1), state, params)
            return state, None

        state = strategy.init(key, solution, params)
        state, _ = jax.lax.scan(generation, state, jax.random.split(key, 30))
        return strategy.get_mean(state)

    mean = run(jax.random.PRNGKey(0))
    loss = float(jnp.sum((mean - 1.0) ** 2))
    assert np.isfinite(loss) and loss < 0.9 * 6.0, (name, loss)  # 6.0 at the start
