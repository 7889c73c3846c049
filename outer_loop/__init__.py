"""Evolution of drift parameters with evosax: strategies, population fitness, generations.

Knows nothing of files or wandb (that is `discover`'s job).
"""

from outer_loop.evolution import (EvolutionState, Normalisation, evolve, make_drift_fitness, make_generation,
                                  make_population_fitness)
from outer_loop.fitness import (fitness_standard_error, normalised_fitness, per_env_scores, search_noise,
                                worst_if_not_finite)
from outer_loop.strategy import make_strategy, strategy_names

__all__ = ["EvolutionState", "Normalisation", "evolve", "make_drift_fitness", "make_generation", "make_population_fitness",
           "normalised_fitness", "per_env_scores", "worst_if_not_finite", "fitness_standard_error", "search_noise",
           "make_strategy", "strategy_names"]
