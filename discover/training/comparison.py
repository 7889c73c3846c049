"""A comparison's runs: every drift (and the untrained policy) on every env and grid point with
the same seeds; what `discover compare` trains and `discover.report` reads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import jax
import numpy as np

from discover.training.grid import AS_SET, GridPoint
from discover.training.references import UNTRAINED_LR, standard_error, untrained_returns
from discover.training.resolver import ResolvedDrift, resolve_drift
from discover.training.seeds import train_seeds
from inner_loop.drifts import Drift
from inner_loop.errors import ConfigError


@dataclass(frozen=True)
class Entry:
    """One drift of a comparison. `baseline` marks a zoo drift named in --baselines: a reference,
    not a drift under test (a zoo drift given as a drift to compare has no training envs either)."""

    resolved: ResolvedDrift  # what the resolver made of the argument
    params: Any  # its parameters (a zoo drift's drawn with PRNGKey(0))
    baseline: bool = False

    @property
    def label(self) -> str:
        return self.resolved.label

    @property
    def drift(self) -> Drift:
        return self.resolved.drift

    @property
    def training_envs(self) -> list[str] | None:
        return self.resolved.training_envs

    @property
    def source(self) -> str:
        return self.resolved.source


def resolve_entries(specs: list[str], baselines: list[str]) -> list[Entry]:
    """An Entry for every drift the resolver takes, baselines last."""
    entries, seen = [], set()
    for spec in specs + [b for b in baselines if b not in specs]:
        resolved = resolve_drift(spec)
        label = resolved.label
        if label in seen:
            raise ConfigError(f"drift {spec!r} appears twice (label {label!r}); give each drift once")
        seen.add(label)
        entries.append(Entry(resolved, resolved.init_params(jax.random.PRNGKey(0)),
                             baseline=resolved.path is None and spec in baselines))
    return entries


def entry_configs(entries: list[Entry], envs: list[str], settings: dict[str, list[str]],
                  points: list[GridPoint]) -> dict:
    """{(label, env, point name): the inner config that drift trains with}: the env's preset, the
    drift's own fields (trpo: a KL ball), the --set pairs, then the grid point's values."""
    configs = {}
    for point in points:
        for env in envs:
            for e in entries:
                try:
                    configs[(e.label, env, point.name)] = e.resolved.train_config(env, settings[env] + list(
                        point.settings))
                except ConfigError as err:
                    raise ConfigError(f"--grid {point.name}: {err}" if point.settings else str(err)) from None
    return configs


def train_all(entries: list[Entry], envs: list[str], points: list[str], configs: dict, plain_configs: dict,
              seeds: int, seed: int, progress: Callable[[str, int], None] = lambda description, done: None) -> dict:
    """{(label, env, point): {final_return, curve}} for every drift on every env and grid point
    with the same seeds, and {(None, env, point): {mean, se}}: the untrained policy's return
    (learning rate ~0, same seeds), the zero point of the normalised scores and a bound on a
    failed run's score; NaN where no untrained seed ended an episode (never a made-up 0).
    `progress(description, done)` is called before each of the `run_count` runs, with the
    number done."""
    runs, untrained, done = {}, {}, 0
    key = jax.random.PRNGKey(seed)
    for env in envs:
        env_key = jax.random.fold_in(key, envs.index(env))  # the same seeds at every point
        for point in points:
            at = "" if point == AS_SET else f" at {point}"
            for entry in entries:
                progress(f"{entry.label} on {env}{at}", done)
                result = train_seeds(configs[(entry.label, env, point)], entry.drift, entry.params, seeds, env_key)
                runs[(entry.label, env, point)] = {"final_return": result.final_return, "curve": result.curve}
                done += 1
            config = plain_configs[(env, point)]
            untrained_key = _untrained_key(config)
            if untrained_key not in untrained:  # an lr grid: one untrained run per env
                progress(f"untrained policy on {env}{at}", done)
                finite = untrained_returns(config, seeds, env_key)
                se = standard_error(finite)
                untrained[untrained_key] = {"mean": float(np.mean(finite)) if finite.size else float("nan"),
                                            "se": float("nan") if se is None else se}
                done += 1
            runs[(None, env, point)] = untrained[untrained_key]
    return runs


def _untrained_key(config) -> str:
    """What the untrained run depends on: every field it reads except the learning rate (~0)."""
    return json.dumps(config.replace(lr=UNTRAINED_LR).fields_read(), sort_keys=True)


def env_configs(envs: list[str], settings: dict[str, list[str]], points: list[GridPoint]) -> dict:
    """{(env, point name): the env's config with no drift's own fields}: the untrained policy's,
    and the one results.json records."""
    configs = entry_configs([Entry(resolve_drift("zero"), {})], envs, settings, points)
    return {(env, point): config for (_, env, point), config in configs.items()}


def run_count(entries: list[Entry], envs: list[str], points: list[str], plain_configs: dict) -> int:
    """How many runs `train_all` makes: each entry on each env and point, one untrained run per
    distinct untrained config."""
    return len(entries) * len(envs) * len(points) + len({_untrained_key(c) for c in plain_configs.values()})
