"""Splitting a batch of independent runs (seeds, population members) over local devices.

Runs of a vmapped trainer never talk to each other, so scaling out is a one-axis mesh over
the local devices with the runs axis split over it (`shard_map`): each device trains its
share, with no communication. On CPU, `configure_cpu()` asks XLA for one device per core (see
`inner_loop.cpu`), so this is how a vmapped batch of runs uses every core. A batch that
does not divide over the devices is padded with copies of its last run, whose results are
dropped.

Each run computes what it computes in the plain vmap, but XLA compiles the vmap for the
per-device batch size, and (as for any change of vmap batch size, on one device too) that
can change float rounding. Short runs agree to 1e-5 (tests); long, chaotic ones drift
apart after some updates (docs/design.md, Measured decisions).
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

RUNS_AXIS = "runs"


def runs_mesh(num_runs: int, devices=None) -> Mesh | None:
    """A one-axis mesh over at most `num_runs` of `devices` (default: this process's).

    None when there is nothing to split (one device, or one run).
    """
    devices = list(jax.local_devices() if devices is None else devices)
    count = min(num_runs, len(devices))
    if count <= 1:
        return None
    return Mesh(np.asarray(devices[:count]), (RUNS_AXIS,))


def padded_size(num_runs: int, mesh: Mesh | None) -> int:
    """`num_runs` rounded up to a multiple of the mesh's devices."""
    if mesh is None:
        return num_runs
    return math.ceil(num_runs / mesh.size) * mesh.size


def pad_runs(tree, size: int):
    """Every leaf's leading axis extended to `size` with copies of its last entry."""

    def pad(x):
        extra = size - x.shape[0]
        return x if extra == 0 else jnp.concatenate([x, jnp.repeat(x[-1:], extra, axis=0)])

    return jax.tree.map(pad, tree)


def shard_runs(fn: Callable, mesh: Mesh | None, whole_leading_args: int = 0) -> Callable:
    """`fn` (vmapped over axis 0 of every argument and output) with that axis split over
    the one axis of `mesh`; `fn` itself when `mesh` is None. Axis 0 must be a multiple of
    the mesh's size. The first `whole_leading_args` arguments are not split: every device
    gets them whole (e.g. loop bounds that all runs share)."""
    if mesh is None:
        return fn
    spec = PartitionSpec(*mesh.axis_names)

    def sharded(*args):
        in_specs = (PartitionSpec(),) * whole_leading_args + (spec,) * (len(args) - whole_leading_args)
        # check_vma=False: the runs never communicate, so no collective is needed (values `fn`
        # closes over, e.g. drift params, are constants every device holds; tests/sharded_seeds.py
        # checks the compiled program has no collective). The check would ask every scan carry
        # the trainer builds from constants to be marked "varying" by hand.
        return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=spec, check_vma=False)(*args)

    return sharded
