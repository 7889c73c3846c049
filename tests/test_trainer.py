"""The trainer: it learns, bootstraps truncation, respects the KL ball, and vmaps exactly."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discover.training.seeds import SeedRunner
from inner_loop import TrainConfig, drifts, make_train, preset
from inner_loop.envs import make_env
from inner_loop.gae import compute_gae
from inner_loop.parallel import pad_runs, shard_runs
from inner_loop.train import Trainer
from tests.probe_envs import ConstantRewardTimeLimit, ContextualBandit, spec

TINY = TrainConfig(env_id="CartPole-v1", total_timesteps=4 * 16 * 3, num_envs=4, num_steps=16,
                   update_epochs=2, num_minibatches=2)


@pytest.mark.slow
def test_ppo_learns_the_contextual_bandit_probe():
    config = TrainConfig(total_timesteps=16 * 8 * 40, num_envs=16, num_steps=8, lr=3e-3,
                         anneal_lr=False, ent_coef=0.0)
    trainer = Trainer(config, drifts.get("ppo"), env_spec=spec(ContextualBandit()))
    metrics = jax.jit(trainer)(jax.random.PRNGKey(0), {})
    assert float(metrics["curve"][0]) < 0.75  # starts near random (0.5)
    assert float(metrics["final_return"]) > 0.95


@pytest.mark.slow
def test_truncated_episodes_are_bootstrapped_not_treated_as_deaths():
    gamma = 0.5  # V = 1 / (1 - gamma) = 2 if truncation bootstraps; 1.25 if it were a death
    config = TrainConfig(total_timesteps=8 * 8 * 150, num_envs=8, num_steps=8, lr=3e-3, gamma=gamma,
                         gae_lambda=0.9, anneal_lr=False, vf_clip=0.0)
    trainer = Trainer(config, drifts.get("ppo"), env_spec=spec(ConstantRewardTimeLimit()))
    state, _ = jax.jit(trainer.run)(jax.random.PRNGKey(0), {})
    value = float(trainer.net.critic.apply(state.params["critic"], jnp.ones(1)))
    assert abs(value - 2.0) < 0.1, value


@pytest.mark.slow
@pytest.mark.parametrize("name,options", [
    ("ppo", {}), ("dpo", {}), ("kl", {}), ("zero", {}),
    ("lpo", {"init_scale": 0.5}), ("ta_lpo", {"start": "none", "init_scale": 0.5})])
def test_every_zoo_drift_trains_with_finite_metrics(name, options):
    drift = drifts.get(name, **options)
    metrics = jax.jit(make_train(TINY, drift))(jax.random.PRNGKey(0), drift.init(jax.random.PRNGKey(1)))
    assert metrics["curve"].shape == (TINY.num_updates,)
    for key in ("policy_loss", "value_loss", "entropy", "approx_kl", "drift"):
        assert bool(jnp.all(jnp.isfinite(metrics[key]))), key
    if name in ("lpo", "ta_lpo", "kl", "dpo"):
        assert float(metrics["drift"].max()) > 0  # the drift really acts on the update


@pytest.mark.slow
def test_kl_ball_update_respects_the_ball():
    config = TINY.replace(neighbourhood="kl_ball", kl_delta=0.005, total_timesteps=4 * 16 * 6)
    metrics = jax.jit(make_train(config, drifts.get("zero")))(jax.random.PRNGKey(0), {})
    assert bool(jnp.all(metrics["approx_kl"] <= 0.005 + 1e-6)), metrics["approx_kl"]
    assert float(metrics["kl_ball_accepted"].mean()) > 0.5
    assert float(metrics["approx_kl"].max()) > 0.0005  # the policy really moves (within the ball)


@pytest.mark.slow
def test_continuous_actions_with_observation_normalisation():
    # Pendulum episodes are 200 steps (all truncated): 256 steps per update finish one per env
    config = TrainConfig(env_id="Pendulum-v1", total_timesteps=4 * 256 * 2, num_envs=4, num_steps=256,
                         update_epochs=2, num_minibatches=4, normalize_obs=True, normalize_reward=True)
    metrics = jax.jit(make_train(config, drifts.get("ppo")))(jax.random.PRNGKey(0), {})
    for key in ("policy_loss", "value_loss", "entropy", "approx_kl"):
        assert bool(jnp.all(jnp.isfinite(metrics[key]))), key
    assert int(metrics["episode_count"].sum()) >= 4
    assert -2000 < float(metrics["final_return"]) < 0  # Pendulum returns are negative


def _close(a, b):
    for key in ("curve", "final_return", "policy_loss", "value_loss"):
        np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), rtol=2e-4, atol=2e-4, err_msg=key)


@pytest.mark.slow
def test_vmap_over_seeds_and_population_matches_separate_runs():
    drift = drifts.get("lpo", init_scale=0.5)
    population = jax.vmap(drift.init)(jax.random.split(jax.random.PRNGKey(7), 2))
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    trainer = make_train(TINY, drift)
    together = jax.jit(jax.vmap(jax.vmap(trainer, in_axes=(0, None)), in_axes=(None, 0)))(keys, population)
    single = jax.jit(trainer)
    for m in range(2):
        for s in range(2):
            member = jax.tree.map(lambda x: x[m], population)
            _close(jax.tree.map(lambda x: x[m, s], together), single(keys[s], member))


@pytest.mark.slow
def test_kl_ball_vmapped_over_8_seeds_matches_separate_runs():
    """Regression: jax.scipy's tolerance-based CG, batched over 8 members, gave zero steps."""
    config = preset("CartPole-v1").replace(neighbourhood="kl_ball", total_timesteps=512 * 3)
    trainer = make_train(config, drifts.get("zero"))
    keys = jax.random.split(jax.random.PRNGKey(0), 8)
    together = jax.jit(jax.vmap(trainer, in_axes=(0, None)))(keys, {})
    single = jax.jit(trainer)
    for s in (0, 7):
        alone = single(keys[s], {})
        assert float(alone["approx_kl"].min()) > 0
        np.testing.assert_allclose(together["approx_kl"][s], alone["approx_kl"], rtol=1e-3, atol=1e-6)
        _close(jax.tree.map(lambda x: x[s], together), alone)


@pytest.mark.slow
def test_vmap_over_hyperparameter_variants_matches_separate_configs():
    lrs = [1e-4, 1e-2]
    trainer = make_train(TINY, drifts.get("ppo"))
    base = trainer.default_hparams()
    variants = jax.tree.map(lambda x: jnp.stack([x, x]), base).replace(lr=jnp.asarray(lrs))
    together = jax.jit(jax.vmap(trainer, in_axes=(None, None, 0)))(jax.random.PRNGKey(0), {}, variants)
    for i, lr in enumerate(lrs):
        alone = jax.jit(make_train(TINY.replace(lr=lr), drifts.get("ppo")))(jax.random.PRNGKey(0), {})
        _close(jax.tree.map(lambda x: x[i], together), alone)


@pytest.mark.slow
def test_a_run_split_into_chunks_gives_the_numbers_of_one_call_bit_for_bit():
    config, drift = TINY.replace(total_timesteps=4 * 16 * 7), drifts.get("lpo")
    params = drift.init(jax.random.PRNGKey(0))
    runner = SeedRunner(config, drift, params, 2)
    reported = []
    chunked = runner(jax.random.PRNGKey(3), lambda done, total: reported.append((done, total)), chunk_seconds=0.0)
    assert reported == [(u, 7) for u in range(1, 8)]  # 7 chunks of one update, each reported once
    by_time = runner(jax.random.PRNGKey(3), lambda done, total: None)  # chunks sized by time
    keys = pad_runs(jax.random.split(jax.random.PRNGKey(3), 2), runner.padded)
    train = make_train(config, drift)
    one_call = jax.jit(shard_runs(lambda k: jax.vmap(train, in_axes=(0, None))(k, params), runner.mesh))(keys)
    for result in (chunked, by_time):
        np.testing.assert_array_equal(result.curve, np.asarray(one_call["curve"])[:2])
        np.testing.assert_array_equal(result.final_return, np.asarray(one_call["final_return"])[:2])
        for name, values in result.metrics.items():
            np.testing.assert_array_equal(values, np.asarray(one_call[name])[:2], err_msg=name)
    assert chunked.env_steps_per_second > 0 and chunked.compile_seconds > 0


def _batch_with_the_critic_on_2t_rows(trainer, state, traj, hparams):
    """The batch as it was computed before the T + 1 path: the critic on every step's
    observation and on every step's pre-reset final observation."""
    values = trainer.net.critic.apply(state.params["critic"], jnp.concatenate([traj.obs, traj.final_obs]))
    value, next_value = values[:trainer.config.num_steps], values[trainer.config.num_steps:]
    advantage, target = compute_gae(traj.reward, value, next_value, traj.terminated, traj.done,
                                    hparams.gamma, hparams.gae_lambda)
    return [x.reshape(-1) for x in (value, advantage, target)]


@pytest.mark.parametrize("env_id,time_limit,normalize_obs,truncations,terminations", [
    ("CartPole-v1", None, False, False, True),  # terminations only
    ("CartPole-v1", 5, False, True, False),  # truncations only, several per env and rollout
    ("Pendulum-v1", 7, True, True, False),  # normalised observations
    ("ConstantRewardTimeLimit", None, False, True, False),  # a time limit of 2: K = 8 / 2
])
def test_the_critic_on_t_plus_1_rows_gives_the_batch_of_2t_rows_bit_for_bit(
        env_id, time_limit, normalize_obs, truncations, terminations):
    env_spec = spec(ConstantRewardTimeLimit()) if env_id == "ConstantRewardTimeLimit" else make_env(env_id)
    if time_limit:
        env_spec = dataclasses.replace(env_spec, env_params=env_spec.env_params.replace(max_steps_in_episode=time_limit))
    config = TrainConfig(env_id=env_id, num_envs=8, num_steps=32,
                         total_timesteps=8 * 32, normalize_obs=normalize_obs)
    trainer = Trainer(config, drifts.get("ppo"), env_spec=env_spec)
    assert trainer.max_truncations < config.num_steps  # the gathering path, not the fallback
    hparams = trainer.default_hparams()

    def both(state):
        state, traj, _ = trainer._rollout(state, hparams)
        new = trainer._batch(state, traj, hparams)
        ended = [jnp.sum(traj.done & ~traj.terminated), jnp.sum(traj.terminated)]
        return state, [new.value, new.advantage, new.target], _batch_with_the_critic_on_2t_rows(
            trainer, state, traj, hparams), ended

    states = jax.vmap(trainer.init, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(1), 2), hparams)
    step = jax.jit(jax.vmap(both))
    seen = np.zeros(2)
    for _ in range(3):  # later rollouts start mid-episode
        states, new, old, ended = step(states)
        seen += np.asarray(ended).sum(axis=1)
        for a, b in zip(new, old):
            if normalize_obs:  # V(s'_t) from the next step's normalisation of the same observation,
                # which XLA rounds by up to an ulp differently under vmap (the 2T path used the other)
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
            else:
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert (seen > 0).tolist() == [truncations, terminations]


def test_more_truncations_than_the_bound_make_that_envs_values_nan():
    env_spec = make_env("CartPole-v1")
    env_spec = dataclasses.replace(env_spec, env_params=env_spec.env_params.replace(max_steps_in_episode=3))
    trainer = Trainer(TrainConfig(num_envs=4, num_steps=16, total_timesteps=64), drifts.get("ppo"), env_spec=env_spec)
    trainer.max_truncations = 2  # the bound a wrong time limit would give (the true one is 6)
    hparams = trainer.default_hparams()
    state, traj, _ = trainer._rollout(trainer.init(jax.random.PRNGKey(0), hparams), hparams)
    batch = trainer._batch(state, traj, hparams)
    over = np.asarray(jnp.sum(traj.done & ~traj.terminated, axis=0) > 2)
    assert over.any()
    target = np.asarray(batch.target).reshape(16, 4)
    assert np.isnan(target[:, over]).any() and np.isfinite(target[:, ~over]).all()


@pytest.mark.slow
def test_seeds_split_over_devices_give_the_numbers_of_one_device():
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    script = os.path.join(os.path.dirname(__file__), "sharded_seeds.py")
    out = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert (result["devices"], result["mesh"]) == (2, 2)
    assert result["collectives"] == []  # each device trains its own runs, no communication
    split, plain = result["split"], result["plain"]
    assert len(split["final_return"]) == 3  # the padded fourth run is dropped
    np.testing.assert_allclose(split["curve"], plain["curve"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(split["final_return"], plain["final_return"], rtol=1e-5, atol=1e-5)
    assert len(set(split["final_return"])) > 1  # the seeds differ


def test_final_return_is_the_mean_of_episodes_in_the_last_window():
    trainer = make_train(TINY.replace(total_timesteps=4 * 16 * 40), drifts.get("ppo"))  # window = 2 updates
    counts = jnp.where(jnp.arange(40) == 38, 0, 2)  # no episode ends in update 38
    sums = jnp.where(counts > 0, jnp.arange(40.0) * 10, 0.0)
    summary = trainer.summarize({"episode_return_sum": sums, "episode_count": counts})
    assert float(summary["final_return"]) == pytest.approx(390.0 / 2)
    assert float(summary["curve"][38]) == pytest.approx(370.0 / 2)  # carried forward


# ---- update_samples: the (ratio, advantage, progress) the drift is evaluated at in training ----

@pytest.fixture(scope="module")
def tiny_sampler():
    """TINY's PPO trainer, its jitted update_samples and its first state (one compile for the module)."""
    trainer = make_train(TINY, drifts.get("ppo"))
    return trainer, jax.jit(trainer.update_samples), trainer.init(jax.random.PRNGKey(0))


@pytest.mark.slow
def test_update_samples_are_each_minibatch_steps_inputs_normalised_per_minibatch(tiny_sampler):
    trainer, update_samples, state = tiny_sampler
    _, (ratio, advantage, progress) = update_samples(state, {}, trainer.default_hparams())
    steps = TINY.update_epochs * TINY.num_minibatches
    assert ratio.shape == advantage.shape == progress.shape == (TINY.update_epochs * TINY.batch_size,)
    per_step = np.asarray(advantage).reshape(steps, TINY.minibatch_size)
    np.testing.assert_allclose(per_step.mean(axis=1), 0.0, atol=1e-5)  # each minibatch, not just the batch
    np.testing.assert_allclose(per_step.std(axis=1), 1.0, atol=1e-4)
    ratio = np.asarray(ratio).reshape(steps, TINY.minibatch_size)
    np.testing.assert_allclose(ratio[0], 1.0, atol=1e-6)  # the first step is taken at the rollout's params
    assert float(np.abs(ratio[-1] - 1.0).max()) > 1e-3  # later steps at the params of that step
    assert np.all(np.asarray(progress) == 0.0)  # update 0 of TINY.num_updates


@pytest.mark.slow
def test_update_samples_clip_the_log_ratio_as_training_does(tiny_sampler):
    trainer, update_samples, state = tiny_sampler
    # lr 10: the policy jumps so far off the rollout's that some log ratios pass -20
    huge_lr = trainer.default_hparams().replace(lr=jnp.asarray(10.0, jnp.float32))
    _, (ratio, _, _) = update_samples(state, {}, huge_lr)
    floor = np.exp(np.float32(-drifts.LOG_RATIO_CLIP))
    assert float(ratio.min()) == pytest.approx(floor, rel=1e-6)  # clipped, so reached and not passed
    assert float(ratio.max()) <= np.exp(np.float32(drifts.LOG_RATIO_CLIP))


@pytest.mark.slow
def test_update_samples_without_normalisation_are_the_raw_gae_advantages():
    config = TINY.replace(normalize_advantages=False)
    trainer = make_train(config, drifts.get("ppo"))
    state, hparams = trainer.init(jax.random.PRNGKey(0)), trainer.default_hparams()
    _, (_, advantage, _) = jax.jit(trainer.update_samples)(state, {})
    after_rollout, traj, _ = trainer._rollout(state, hparams)  # the rollout and GAE update_samples' update makes
    gae = np.sort(np.asarray(trainer._batch(after_rollout, traj, hparams).advantage))
    for epoch in np.asarray(advantage).reshape(config.update_epochs, config.batch_size):
        np.testing.assert_allclose(np.sort(epoch), gae, rtol=1e-5, atol=1e-6)  # each epoch: a shuffle of them
    assert float(np.abs(gae.mean())) > 0.1  # raw, so not centred


@pytest.mark.slow
@pytest.mark.parametrize("neighbourhood", ["none", "kl_ball"])
def test_update_samples_leave_the_training_trajectory_unchanged(neighbourhood):
    trainer = make_train(TINY.replace(neighbourhood=neighbourhood), drifts.get("ppo"))
    state = trainer.init(jax.random.PRNGKey(0))
    sampled, (ratio, advantage, _) = jax.jit(trainer.update_samples)(state, {})
    trained, _ = jax.jit(trainer.update)(state, {}, trainer.default_hparams())
    for got, want in zip(jax.tree.leaves(sampled), jax.tree.leaves(trained)):
        np.testing.assert_array_equal(got, want)
    if neighbourhood == "kl_ball":  # one step on the whole batch, normalised over it
        assert ratio.shape == (TINY.batch_size,)
        assert abs(float(advantage.mean())) < 1e-5 and float(advantage.std()) == pytest.approx(1.0, abs=1e-4)
