"""Whether a run can have a final return at all: episode length against the final window.

A run's `final_return` is the mean return of the episodes that end in its last
`ceil(final_window * num_updates)` updates (`Trainer.summarize`), NaN if none ends there. For
an env that can end an episode early (a pole falls, a game is lost) nothing is known before
training: any window can hold an end. An env that never ends one early (MinAtar Freeway,
Pendulum) is only truncated, after exactly `max_steps_in_episode` steps, and every env of a
run resets at step 0, so each env's episodes end at steps L, 2L, 3L, ... (L the episode
length, steps counted per env from 1). Its final window, steps `(U - W) S + 1 .. U S` of
each env (U updates, W of them in the window, S steps each), holds an end exactly when a
multiple of L falls in it: `U S // L > (U - W) S // L`. Only a run where none does is
hopeless; `check_final_window` refuses exactly those, before any compilation. The hopeless set
is not monotonic in total_timesteps (a window shorter than L holds an end only when aligned
with one), so the total_timesteps it names is the budget from which on every run has one; in
final_window it is (a wider window only reaches further back), so it names the smallest.
"""

from __future__ import annotations

import functools
import math

import jax
from jax.extend.core import Literal

from inner_loop.config import TrainConfig
from inner_loop.envs import make_env
from inner_loop.errors import ConfigError


@functools.lru_cache(maxsize=None)
def fixed_episode_length(env_id: str) -> int | None:
    """Every episode's length if `env_id` never ends one early (truncation only), else None."""
    spec = make_env(env_id)
    length = getattr(spec.env_params, "max_steps_in_episode", None)
    if length is None:  # no time limit in its params: its episode lengths are unknown, so no check
        return None
    key = jax.random.PRNGKey(0)
    # Abstract arguments: the step is traced, never compiled nor run.
    _, state = jax.eval_shape(spec.env.reset, key, spec.env_params)
    action = jax.eval_shape(spec.env.action_space(spec.env_params).sample, key)
    traced = jax.make_jaxpr(lambda s, a: spec.env.step_env(key, s, a, spec.env_params)[3])(state, action)
    terminated = traced.jaxpr.outvars[0]
    # `terminated` is a literal False only when the env's code cannot end an episode early;
    # anything computed (even if it never fires in practice) counts as "may end early".
    never_early = isinstance(terminated, Literal) and not bool(terminated.val)
    return int(length) if never_early else None


def window_updates(final_window: float, num_updates: int) -> int:
    """Updates in the final window, as the trainer counts them (`Trainer.final_window`)."""
    return max(1, math.ceil(final_window * num_updates))


def ends_in_window(length: int, num_steps: int, num_updates: int, final_window: float) -> bool:
    """Whether an episode of exactly `length` steps (back to back from step 0) ends in the final window."""
    window = window_updates(final_window, num_updates)
    return num_updates * num_steps // length > (num_updates - window) * num_steps // length


def always_ends_from(length: int, num_steps: int, final_window: float) -> int:
    """The fewest updates from which on every run's final window spans an episode length
    (so holds an end whatever the alignment)."""
    needed = -(-length // num_steps)  # window updates whose steps cover `length`
    updates = max(needed, math.floor((needed - 1) / final_window) - 1)  # at or below the answer
    while window_updates(final_window, updates) < needed:
        updates += 1
    return updates


def smallest_window(needed: int, num_updates: int) -> float:
    """The smallest final_window, in thousandths, whose window holds `needed` of `num_updates` updates."""
    thousandths = math.ceil(1000 * (needed - 1) / num_updates)
    while window_updates(thousandths / 1000, num_updates) < needed:
        thousandths += 1
    return thousandths / 1000


def check_final_window(config: TrainConfig) -> None:
    """ConfigError (one line) if no episode can end in the final window of `config`'s run."""
    length = fixed_episode_length(config.env_id)
    updates, steps = config.num_updates, config.num_steps
    if length is None or ends_in_window(length, steps, updates, config.final_window):
        return
    window = window_updates(config.final_window, updates)
    enough = always_ends_from(length, steps, config.final_window) * config.batch_size
    # With the run's length fixed, a wider window reaches back to its last episode end, if any.
    last_end = updates * steps // length * length
    end_update = -(-last_end // steps)  # the update (counted from 1) that holds that end
    wider = (f" or final_window to at least {smallest_window(updates - end_update + 1, updates):g}"
             if last_end else "")
    raise ConfigError(
        f"{config.env_id}: no episode can end in the final window, so final_return would be NaN: its "
        f"episodes last {length} steps (it never ends one early) and the final window is the last {window} of "
        f"{updates} updates, {window * steps} steps per env (steps {(updates - window) * steps + 1}-"
        f"{updates * steps}); raise total_timesteps to at least {enough}{wider}")
