"""The one drift resolver: what a drift argument names, for every command.

A drift argument is a zoo name (`ppo`, `lpo`, ...), an algorithm alias (`trpo`: the zero
drift in a KL ball), a packaged drift (`transfer-v1`) or a drift file path. Options of a zoo
drift are given as `--set drift.<option>=value`; a drift file carries its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import jax

from discover.files.drift_file import LoadedDrift, axiom_report, drift_file_path, load_drift, packaged_drifts
from discover.training.settings import apply_train_overrides, parse_value, split_pairs
from inner_loop import TrainConfig, drifts, preset
from inner_loop.errors import ConfigError

DRIFT_PREFIX = "drift."

# Algorithms that are a zoo drift in a neighbourhood other than "all policies".
ALGORITHM_ALIASES = {"trpo": ("zero", {"neighbourhood": "kl_ball"})}

# Per-env defaults of an alias over the env's preset, which --set may still change: TRPO's
# value function needs a larger lr on CartPole-v1 (docs/design.md, Measured decisions).
ALIAS_ENV_DEFAULTS = {("trpo", "CartPole-v1"): {"lr": 1e-3}}


@dataclass(frozen=True)
class ResolvedDrift:
    """A drift argument resolved: the drift, its stored params (drift files), the config
    fields it fixes (aliases) and where it came from."""

    spec: str  # the argument as given
    drift: drifts.Drift  # the parameterisation with its options
    params: Any = None  # a drift file's params; None for a zoo drift (drawn by `drift.init`)
    config_changes: dict = field(default_factory=dict)  # fields an alias fixes (trpo: neighbourhood)
    path: str | None = None  # the drift file, if one
    metadata: dict = field(default_factory=dict)  # the drift file's metadata

    @property
    def label(self) -> str:
        """A short name for tables: the zoo name or alias, or the file's name without suffix."""
        if self.path is None:
            return self.spec
        return os.path.basename(self.spec).removesuffix(".npz").removesuffix(".drift")

    @property
    def source(self) -> str:
        return self.spec if self.path else f"zoo:{self.spec}"

    @property
    def training_envs(self) -> list[str] | None:
        """The envs a drift file was trained on (None for a zoo drift)."""
        if self.path is None:
            return None
        return list(self.metadata.get("provenance", {}).get("training_envs", []))

    def env_defaults(self, env_id: str) -> dict:
        """Config fields this drift sets on `env_id` over the preset (which --set may change)."""
        return dict(ALIAS_ENV_DEFAULTS.get((self.spec, env_id), {}))

    def init_params(self, key: jax.Array) -> Any:
        """The stored params of a drift file, else `drift.init(key)`."""
        return self.params if self.params is not None else self.drift.init(key)

    def train_config(self, env_id: str, settings: list[str] = ()) -> TrainConfig:
        """The env's preset, this drift's fields (trpo: a KL ball), then `settings`; validated."""
        config = preset(env_id).replace(**self.env_defaults(env_id), **self.config_changes)
        return apply_train_overrides(config, list(settings), fixed=("env_id",) + tuple(self.config_changes)).validate()

    def bind(self, key: jax.Array) -> LoadedDrift:
        """The drift with its params bound: `fn(ratio, advantage, progress)`."""
        return LoadedDrift(self.drift, self.init_params(key), self.metadata)


def split_drift_settings(pairs: list[str]) -> tuple[list[str], list[str]]:
    """(`drift.<option>=value` pairs, every other pair)."""
    drift_pairs = [p for p in pairs if p.strip().startswith(DRIFT_PREFIX)]
    return drift_pairs, [p for p in pairs if not p.strip().startswith(DRIFT_PREFIX)]


# Zoo drifts that take a formula rather than being one: named apart in the allowed lists.
FORMULA_DRIFTS = ("closed_form",)
FORMULA_HINT = "or closed_form with --set drift.expression=FORMULA"


def allowed_drifts() -> list[str]:
    """The drift names a command takes as they are (closed_form also needs its formula)."""
    return [n for n in drifts.names() if n not in FORMULA_DRIFTS] + list(ALGORITHM_ALIASES) + packaged_drifts()


def zoo_drift(name: str, options: dict | None = None) -> drifts.Drift:
    """The zoo drift `name` with `options` (ConfigError for an unknown name)."""
    if name not in drifts.names():
        raise ConfigError(f"unknown drift {name!r}; allowed: {', '.join(allowed_drifts())}, {FORMULA_HINT}")
    return drifts.get(name, **(options or {}))


def drift_options(name: str, drift_pairs: list[str]) -> dict:
    """`drift.<option>=value` pairs parsed by the types of zoo drift `name`'s options."""
    types = drifts.option_types(name)
    options: dict[str, Any] = {}
    for key, text in split_pairs(drift_pairs):
        option = key[len(DRIFT_PREFIX):]
        if option not in types:
            allowed = ", ".join(f"{DRIFT_PREFIX}{k}" for k in types) or "none"
            raise ConfigError(f"drift {name!r} has no option {option!r}; allowed: {allowed}")
        options[option] = parse_value(key, text, types[option])
    return options


def resolve_drift(spec: str, drift_pairs: list[str] = (), *, check_axioms: bool = True) -> ResolvedDrift:
    """What `spec` names, with `drift.<option>=value` pairs applied; ConfigError (one line)
    for an unknown name, an unknown option, or options on a drift file."""
    path = drift_file_path(spec)
    if path is not None:
        if drift_pairs:
            raise ConfigError(f"--set drift.<option> cannot change the drift stored in {spec!r}")
        loaded = load_drift(path, check_axioms=check_axioms)
        return ResolvedDrift(spec, loaded.drift, loaded.params, path=path, metadata=loaded.metadata)
    name, config_changes = ALGORITHM_ALIASES.get(spec, (spec, {}))
    if name not in drifts.names():
        raise ConfigError(f"unknown drift {spec!r}; allowed: {', '.join(allowed_drifts())}, "
                          f"or the path of a drift file, {FORMULA_HINT}")
    drift = zoo_drift(name, drift_options(name, list(drift_pairs)))
    if check_axioms and name == "closed_form":  # the one zoo drift that is not valid by construction
        report = axiom_report(LoadedDrift(drift, {}, {}))
        if not report["passed"]:
            raise ConfigError(f"closed_form expression {drift.expression!r} violates the mirror-learning axioms: "
                              f"{report['problem']}")
    return ResolvedDrift(spec, drift, config_changes=dict(config_changes))
