"""Evosax 0.3 distribution-based strategies by name, with the published LPO defaults.

evosax's own defaults are wrong for drift nets (std 1.0, SGD 1e-3): we pass the search std
(0.03-0.1 in the LPO work), Adam, centred-rank shaping and antithetic sampling explicitly,
to whichever of these the chosen strategy takes.
"""

from __future__ import annotations

import inspect
from typing import Any

import optax
from evosax.algorithms import distribution_based_algorithms
from evosax.core.fitness_shaping import centered_rank_fitness_shaping_fn

from inner_loop.errors import ConfigError


def strategy_names() -> list[str]:
    return sorted(distribution_based_algorithms)


def make_strategy(name: str, population_size: int, solution: Any, *, std: float = 0.05,
                  lr: float = 0.01, antithetic: bool = True):
    """(strategy, es_params) for evosax strategy `name` over the pytree `solution`."""
    if name not in distribution_based_algorithms:
        raise ConfigError(f"unknown strategy {name!r}; allowed: {', '.join(strategy_names())}")
    if isinstance(population_size, bool) or not isinstance(population_size, int) or population_size < 2:
        raise ConfigError(f"population_size={population_size!r} is not allowed; it must be an integer >= 2")
    cls = distribution_based_algorithms[name]
    takes = inspect.signature(cls.__init__).parameters
    if antithetic and "use_antithetic_sampling" in takes and population_size % 2:
        raise ConfigError(f"population_size={population_size} is not allowed for {name} with antithetic "
                          "sampling (pairs i, i + N/2); use an even size")
    kwargs: dict[str, Any] = {}
    if "use_antithetic_sampling" in takes:
        kwargs["use_antithetic_sampling"] = antithetic
    if "optimizer" in takes:
        kwargs["optimizer"] = optax.adam(lr)
    if "std_schedule" in takes:
        kwargs["std_schedule"] = optax.constant_schedule(std)
    if "fitness_shaping_fn" in takes:
        kwargs["fitness_shaping_fn"] = centered_rank_fitness_shaping_fn
    try:
        strategy = cls(population_size=population_size, solution=solution, **kwargs)
    except AssertionError as err:  # evosax checks sizes with asserts
        raise ConfigError(f"population_size={population_size} is not allowed for {name}: {err}") from None
    params = strategy.default_params
    if hasattr(params, "std_init"):
        params = params.replace(std_init=std)
    return strategy, params
