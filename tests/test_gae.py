"""GAE against a plain Python loop, and truncation bootstrapping."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from inner_loop.gae import compute_gae


def gae_loop(rewards, values, next_values, terminated, truncated, gamma, lam):
    T, N = rewards.shape
    adv = np.zeros((T, N))
    for n in range(N):
        running = 0.0
        for t in reversed(range(T)):
            done = terminated[t, n] or truncated[t, n]
            bootstrap = 0.0 if terminated[t, n] else gamma * next_values[t, n]
            delta = rewards[t, n] + bootstrap - values[t, n]
            running = delta + (0.0 if done else gamma * lam * running)
            adv[t, n] = running
    return adv, adv + values


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), gamma=st.floats(0.0, 1.0), lam=st.floats(0.0, 1.0))
def test_gae_matches_a_python_loop(seed, gamma, lam):
    rng = np.random.default_rng(seed)
    T, N = 17, 3
    rewards, values, next_values = rng.normal(size=(3, T, N))
    terminated = rng.random((T, N)) < 0.1
    truncated = (rng.random((T, N)) < 0.1) & ~terminated
    expected_adv, expected_target = gae_loop(rewards, values, next_values, terminated, truncated, gamma, lam)
    adv, target = compute_gae(*(jnp.asarray(x, jnp.float32) for x in (rewards, values, next_values)),
                              jnp.asarray(terminated), jnp.asarray(terminated | truncated), gamma, lam)
    np.testing.assert_allclose(adv, expected_adv, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(target, expected_target, rtol=1e-4, atol=1e-4)


def test_truncation_bootstraps_from_the_final_observation_and_termination_does_not():
    rewards = jnp.asarray([[1.0, 1.0]])
    values = jnp.asarray([[0.5, 0.5]])
    final_values = jnp.asarray([[10.0, 10.0]])  # critic's value of the pre-reset observation
    terminated = jnp.asarray([[False, True]])
    done = jnp.asarray([[True, True]])  # env 0 truncated, env 1 terminated
    adv, _ = compute_gae(rewards, values, final_values, terminated, done, 0.9, 0.95)
    np.testing.assert_allclose(adv[0], [1.0 + 0.9 * 10.0 - 0.5, 1.0 - 0.5], rtol=1e-6)
