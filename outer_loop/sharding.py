"""Splitting the population over devices (and hosts) with `jax.sharding` and `shard_map`.

Members are independent inner runs, so the whole scale-out is: a one-axis mesh of every
device (every host's devices after `jax.distributed.initialize()`), the members axis split
over it with `shard_map`, each device training its members with no communication, and the
final returns gathered for `tell`. Every input of the mapped function carries the members
axis (the common seed keys are broadcast to it): were any input replicated, reverse-mode
AD inside the trainer would insert an all-reduce for it (`psum_invariant`) in every
gradient step.
"""

from __future__ import annotations

from typing import Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from inner_loop.errors import ConfigError
from inner_loop.parallel import shard_runs

MEMBERS_AXIS = "members"


def member_mesh(population_size: int, devices=None, *, use_all: bool | None = None) -> Mesh | None:
    """A one-axis mesh for the members axis over `devices` (default: all of them).

    With `use_all` (the default across several hosts, where every process must take part)
    the mesh spans every device and the population must divide evenly over them. Otherwise
    (the default on one host) it spans the largest number of the devices that divides the
    population: on a 2-core CPU (one device per core) a population of 7 runs on one device.
    None when that is one device (nothing to split).
    """
    devices = list(jax.devices() if devices is None else devices)
    use_all = jax.process_count() > 1 if use_all is None else use_all
    if use_all:
        if len(devices) > 1 and population_size % len(devices):
            raise ConfigError(f"population_size={population_size} does not split over {len(devices)} devices; "
                              f"use a multiple of {len(devices)}")
        count = len(devices)
    else:
        count = max(k for k in range(1, min(len(devices), population_size) + 1) if population_size % k == 0)
    return None if count == 1 else Mesh(np.asarray(devices[:count]), (MEMBERS_AXIS,))


def shard_members(fn: Callable, mesh: Mesh) -> Callable:
    """`fn(*args)` with axis 0 of every argument split over `mesh`; outputs gathered."""
    sharded = shard_runs(fn, mesh)
    replicated = NamedSharding(mesh, PartitionSpec())

    def gathered(*args):
        # Gather the (small) outputs to every device, so what follows (fitness shaping, the
        # ES update) runs unpartitioned, with the same reduction order as on one device.
        return jax.lax.with_sharding_constraint(sharded(*args), replicated)

    return gathered


def replicate(tree, mesh: Mesh | None):
    """`tree`'s arrays replicated over every device of `mesh` (unchanged without a mesh).

    The generation's outputs (the ES state) come back replicated over the mesh, so its
    inputs must be too: jit keys its cache on input shardings, and a state on one device
    (the initial one, or one loaded from a checkpoint) would compile the program a second
    time (docs/design.md, Measured decisions). Each process supplies the whole value,
    as every replica holds it, which also places it across hosts under jax.distributed.
    """
    if mesh is None:
        return tree
    sharding = NamedSharding(mesh, PartitionSpec())

    def place(x):
        if isinstance(x, jax.Array) and x.sharding == sharding:
            return x
        x = np.asarray(x)
        return jax.make_array_from_process_local_data(sharding, x, x.shape)

    return jax.tree.map(place, tree)
