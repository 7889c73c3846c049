"""Multi-host sweeps: starting `jax.distributed` from the cluster environment."""

from __future__ import annotations

import os

import jax

from inner_loop.errors import ConfigError


def initialize_distributed() -> None:
    """`jax.distributed.initialize()`, once: coordinator, process count and id from the cluster
    environment (SLURM, ...), or from JAX_COORDINATOR_ADDRESS (which JAX reads itself),
    JAX_NUM_PROCESSES and JAX_PROCESS_ID (which it does not). ConfigError (one line) when it
    cannot start."""
    if jax.distributed.is_initialized():
        return
    counts = {}
    for name, var in (("num_processes", "JAX_NUM_PROCESSES"), ("process_id", "JAX_PROCESS_ID")):
        if os.environ.get(var, "").strip():
            try:
                counts[name] = int(os.environ[var])
            except ValueError:
                raise ConfigError(f"{var}={os.environ[var]!r} is not allowed; it must be an integer") from None
    try:
        jax.distributed.initialize(**counts)
    except (ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"--distributed: jax.distributed.initialize() failed: {first} (set the cluster "
                          "environment, e.g. SLURM, or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and "
                          "JAX_PROCESS_ID)") from None
