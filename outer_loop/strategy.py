"""Evosax 0.3 distribution-based strategies by name, with the published LPO defaults.

evosax's own defaults are wrong for drift nets (std 1.0, SGD 1e-3): we pass the search std
(0.03-0.1 in the LPO work) and antithetic sampling to whichever strategy takes them, and
to strategies that estimate a gradient from fitness (Open_ES, PGPE, ARS, ...) Adam and
centred-rank shaping too. Strategies that recombine by rank weights (CMA_ES, SNES, xNES,
...) keep their own shaping and mean update, so `lr` does not apply to them.
"""

from __future__ import annotations

import inspect
from typing import Any

import optax
from evosax.algorithms import distribution_based_algorithms
from evosax.core.fitness_shaping import centered_rank_fitness_shaping_fn

from inner_loop.errors import ConfigError


# Constructible with only a population size and a solution, yet it diverges on a quadratic
# (docs/design.md, Measured decisions; tests/test_outer_loop.py runs every other name on it).
UNUSABLE = {"LM_MA_ES": "its mean becomes NaN within 30 generations even with evosax's defaults"}


def strategy_names() -> list[str]:
    """Every evosax distribution-based strategy this project can run."""
    return sorted(name for name, cls in distribution_based_algorithms.items()
                  if name not in UNUSABLE and not _required_options(cls))


def _required_options(cls) -> list[str]:
    """Constructor arguments without a default besides population_size and solution (e.g.
    SV_Open_ES's num_populations, RandomSearch's sampling_fn), which a sweep cannot supply."""
    return [name for name, p in inspect.signature(cls.__init__).parameters.items()
            if name not in ("self", "population_size", "solution") and p.default is inspect.Parameter.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def recombines_by_weights(cls) -> bool:
    """True for strategies (CMA_ES, SNES, xNES, ...) whose own fitness shaping turns ranks
    into recombination weights: their update needs those weights, and their own mean
    update rule; centred ranks or Adam in their place make CMA-ES diverge."""
    shaping = inspect.signature(cls.__init__).parameters.get("fitness_shaping_fn")
    return shaping is not None and getattr(shaping.default, "__name__", "") == "weights_fitness_shaping_fn"


def make_strategy(name: str, population_size: int, solution: Any, *, std: float = 0.05,
                  lr: float = 0.01, antithetic: bool = True):
    """(strategy, es_params) for evosax strategy `name` over the pytree `solution`."""
    if name not in strategy_names():
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
    if "std_schedule" in takes:
        kwargs["std_schedule"] = optax.constant_schedule(std)
    if not recombines_by_weights(cls):
        # A gradient estimate from (shaped) fitness: centred ranks and Adam, as in LPO.
        if "optimizer" in takes:
            kwargs["optimizer"] = optax.adam(lr)
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
