"""examples/ppo_drift.py, the single-file PPO whose loss is a loaded drift: it runs, its loss
with the PPO drift is PPO's, and, run as a user runs it, it learns without a warning."""

import importlib.util
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import discover

EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "ppo_drift.py")


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("ppo_drift", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ppo_drift"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_its_policy_loss_with_the_ppo_drift_is_the_clipped_loss(example):
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    log_prob, old_log_prob = (jax.random.normal(k, (256,)) for k in keys[:2])
    advantages = 3.0 * jax.random.normal(keys[2], (256,))
    progress = 0.4
    got = example.policy_loss(discover.load_drift("ppo"), log_prob, old_log_prob, advantages, progress)
    ratio = jnp.exp(log_prob - old_log_prob)
    norm = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    clipped = -jnp.mean(jnp.minimum(ratio * norm, jnp.clip(ratio, 0.8, 1.2) * norm))
    np.testing.assert_allclose(got, clipped, rtol=1e-6)


def test_it_trains_a_tiny_config_with_a_discovered_drift(example):
    config = example.Config(total_timesteps=4 * 32 * 3, num_steps=32)
    returns = jax.jit(example.make_train(config, discover.load_drift("transfer-v1")))(jax.random.PRNGKey(0))
    returns = np.asarray(returns["episode_return"])
    assert returns.shape == (3,) and np.all(np.isfinite(returns)) and np.all(returns > 0)  # CartPole episodes end


@pytest.mark.parametrize("argv, message", [
    (["--drift", "dpo", "--option", "alpha=x"], "drift 'dpo' option alpha='x' (str) is not allowed; it must be a number"),
    (["--env", "NotAnEnv-v0"], "--env 'NotAnEnv-v0' is not a gymnax env"),
    (["--env", "Pendulum-v1"], "--env 'Pendulum-v1' has continuous actions"),
    (["--timesteps", "nan"], "--timesteps nan is not allowed; give at least one batch (512)"),
    (["--timesteps", "100"], "--timesteps 100 is not allowed"),
    (["--seeds", "0"], "--seeds 0 is not allowed; give at least 1"),
    (["--seeds", "1.5"], "argument --seeds: invalid int value: '1.5'"),
    (["--option", "eps"], "--option 'eps' is not of the form name=value"),
])
def test_bad_input_is_one_line_and_exit_2(example, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        example.main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.startswith("ppo_drift.py: error: ") and message in err and "\n" not in err


@pytest.mark.slow
def test_run_as_a_script_it_learns_cartpole_without_a_warning():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # a user's environment: no flags of ours
    out = subprocess.run([sys.executable, "-W", "error", EXAMPLE, "--drift", "dpo", "--timesteps", "1e5",
                          "--seeds", "2"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    mean = float(re.search(r"\(mean ([0-9.]+)\)", out.stdout).group(1))
    assert mean > 150  # a random policy scores about 22
