"""Minibatch shuffling: `random_permutation` is a permutation, and a uniform one."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inner_loop.permutation import random_permutation, sort_passes


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000, 1024, 8192, 12_345])
def test_is_a_permutation_of_range_n(n):
    perm = jax.jit(random_permutation, static_argnums=1)(jax.random.PRNGKey(n), n)
    assert perm.dtype == jnp.int32
    np.testing.assert_array_equal(np.sort(np.asarray(perm)), np.arange(n))


def test_pass_counts_and_the_fallback():
    assert sort_passes(1024) == 2
    assert sort_passes(8192) == 2  # 13 index bits, 19 random bits per pass
    assert sort_passes(2**16) == 3
    assert sort_passes(750_300) == 4
    assert sort_passes(750_301) is None  # too few random bits left: jax.random.permutation


def test_all_orders_of_four_items_are_equally_likely():
    draws = 48_000
    perms = jax.jit(jax.vmap(lambda k: random_permutation(k, 4)))(jax.random.split(jax.random.PRNGKey(1), draws))
    index = {p: i for i, p in enumerate(itertools.permutations(range(4)))}
    counts = np.bincount([index[tuple(p)] for p in np.asarray(perms).tolist()], minlength=24)
    expected = draws / 24
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < 52.6  # 23 degrees of freedom, p = 0.0005


def test_where_each_item_lands_is_uniform_for_a_ppo_sized_batch():
    """Every item of an 8192-item batch is equally likely to land in each of 8 minibatches,
    and different epochs (keys) give different, unrelated orders."""
    n, draws, minibatches = 8192, 256, 8
    perms = np.asarray(jax.jit(jax.vmap(lambda k: random_permutation(k, n)))(
        jax.random.split(jax.random.PRNGKey(2), draws)))
    minibatch_of_item = np.empty_like(perms)
    rows = np.arange(draws)[:, None]
    minibatch_of_item[rows, perms] = np.arange(n)[None, :] // (n // minibatches)
    # item 0..n-1 land in each minibatch with probability 1/8: counts over draws and items
    counts = np.stack([(minibatch_of_item == m).sum(axis=0) for m in range(minibatches)])  # (8, n)
    total = counts.sum(axis=1)
    assert np.all(np.abs(total / (draws * n) - 1 / minibatches) < 0.002)
    # low items do not cluster at the front, as an index-order bias would make them
    first_items_minibatch = minibatch_of_item[:, : n // 16].mean()
    assert abs(first_items_minibatch - (minibatches - 1) / 2) < 0.05
    # consecutive items are not kept together
    same = (minibatch_of_item[:, 1:] == minibatch_of_item[:, :-1]).mean()
    assert abs(same - (n // minibatches - 1) / (n - 1)) < 0.005
    assert len({p.tobytes() for p in perms}) == draws
