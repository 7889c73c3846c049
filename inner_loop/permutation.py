"""Random permutations for minibatch shuffling, by single-array sorts.

`jax.random.permutation(key, n)` sorts (random key, index) pairs with a two-operand sort,
one or more rounds; XLA's CPU backend runs such a sort several times slower than a sort of
one uint32 array, and PPO shuffles the batch every epoch (timings: docs/design.md, Measured
decisions). Here each index rides in the low `b = ceil(log2 n)` bits of its own random
uint32, so a single-operand sort orders the indices by their `32 - b` random high bits.

Indices whose random bits tie keep their relative order from the previous pass. A second
pass over the first pass's order (fresh bits) makes those ties random as well: a pair is
left in index order only if it ties in *every* pass, with probability `2**-(passes * (32 - b))`.
`passes` is the smallest number (at most 4) for which the expected number of such pairs,
`n (n - 1) / 2 * 2**-(passes * (32 - b))`, is below 1e-3 (n = 8192: 2 passes, 1.2e-4).
Above 750,300 items, where 4 passes do not reach that, it falls back to
`jax.random.permutation`. Up to that residue the result is a uniformly random permutation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_MAX_TIED_PAIRS = 1e-3
_MAX_PASSES = 4


def _index_bits(n: int) -> int:
    """Low bits of each uint32 that carry an index in range(n)."""
    return max(1, (n - 1).bit_length())


def sort_passes(n: int) -> int | None:
    """Passes needed for `n` items, or None where `jax.random.permutation` is used."""
    random_bits = 32 - _index_bits(n)
    pairs = n * (n - 1) / 2
    for passes in range(1, _MAX_PASSES + 1):
        if pairs * 2.0 ** (-passes * random_bits) < _MAX_TIED_PAIRS:
            return passes
    return None


def random_permutation(key: jax.Array, n: int) -> jax.Array:
    """A random permutation of `range(n)` (int32), see the module docstring."""
    passes = sort_passes(n)
    if passes is None:
        return jax.random.permutation(key, n)
    index_mask = jnp.uint32((1 << _index_bits(n)) - 1)
    positions = jnp.arange(n, dtype=jnp.uint32)
    order = positions
    for pass_key in jax.random.split(key, passes):
        random_high = jax.random.bits(pass_key, (n,), jnp.uint32) & ~index_mask
        # sorting random_high | j orders positions j by their random bits, ties by j
        order = order[jnp.sort(random_high | positions) & index_mask]
    return order.astype(jnp.int32)
