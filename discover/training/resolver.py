"""The one drift resolver: what a drift argument names, for every command.

A drift argument is a zoo name (`ppo`, `lpo`, ...), an algorithm alias (`trpo`: the zero
drift in a KL ball), a packaged drift (`transfer-v1`) or a drift file path. Options of a zoo
drift are given as `--set drift.<option>=value`; a drift file carries its own.
"""

from __future__ import annotations

import os
import reprlib
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from discover.files.drift_file import LoadedDrift, axiom_report, drift_file_path, packaged_drifts, read_drift_file
from inner_loop import TrainConfig, drifts, preset
from inner_loop.errors import ConfigError
from inner_loop.settings import apply_settings, parse_value, split_pairs

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

    @property
    def validation(self) -> dict | None:
        """A sweep's validation score of this drift at export (the search mean's fitness on its
        training envs, with seeds of its own): {"fitness", "seeds_per_env", "generation"}, or None."""
        provenance = self.metadata.get("provenance", {})
        fitness, seeds = provenance.get("fitness"), provenance.get("fitness_seeds_per_env")
        if self.path is None or provenance.get("which") != "mean" or not isinstance(fitness, (int, float)):
            return None
        return {"fitness": float(fitness), "seeds_per_env": seeds, "generation": provenance.get("generation")}

    def env_defaults(self, env_id: str) -> dict:
        """Config fields this drift sets on `env_id` over the preset (which --set may change)."""
        return dict(ALIAS_ENV_DEFAULTS.get((self.spec, env_id), {}))

    def init_params(self, key: jax.Array) -> Any:
        """The stored params of a drift file, else `drift.init(key)`."""
        return self.params if self.params is not None else self.drift.init(key)

    def train_config(self, env_id: str, settings: list[str] = ()) -> TrainConfig:
        """The env's preset, this drift's fields (trpo: a KL ball), then `settings`; validated."""
        config = preset(env_id).replace(**self.env_defaults(env_id), **self.config_changes)
        fixed = dict.fromkeys(("env_id", *self.config_changes), "the command line (--env / --drift)")
        return apply_settings(config, split_pairs(list(settings)), fixed=fixed,
                              also_allowed=("drift.<option>",)).validate()

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
PYTHON_FORMULA_HINT = "or closed_form with expression=FORMULA"


def allowed_drifts(aliases: bool = True) -> list[str]:
    """The drift names a command takes as they are (closed_form also needs its formula);
    `aliases=False` leaves out the algorithm aliases (`trpo`), which are not a drift alone."""
    return ([n for n in drifts.names() if n not in FORMULA_DRIFTS] + (list(ALGORITHM_ALIASES) if aliases else [])
            + packaged_drifts())


def drift_options(name: str, drift_pairs: list[str], label: str | None = None) -> dict:
    """`drift.<option>=value` pairs parsed by the types of zoo drift `name`'s options (`label`:
    the name the user gave, e.g. an alias, for the message)."""
    options: dict[str, Any] = {}
    for key, text in split_pairs(drift_pairs):
        option = key.removeprefix(DRIFT_PREFIX)
        options[option] = parse_value(key, text, drifts.option_kind(name, option, label=label, prefix=DRIFT_PREFIX))
    return options


def resolve_drift(spec: str, drift_pairs: list[str] = (), *, check_axioms: bool = True) -> ResolvedDrift:
    """What `spec` names, with `drift.<option>=value` pairs applied; ConfigError (one line)
    for an unknown name, an unknown option, or options on a drift file."""
    path = drift_file_path(spec)
    if path is not None:
        if drift_pairs:
            raise ConfigError(f"--set drift.<option> cannot change the drift stored in {spec!r}")
        return _from_file(spec, path, check_axioms)
    name, config_changes = ALGORITHM_ALIASES.get(spec, (spec, {}))
    if name not in drifts.names():
        raise ConfigError(f"unknown drift {spec!r}; allowed: {', '.join(allowed_drifts())}, "
                          f"or the path of a drift file, {FORMULA_HINT}")
    return _from_zoo(spec, name, drift_options(name, list(drift_pairs), spec), config_changes, check_axioms)


def _from_file(spec: str, path: str, check_axioms: bool) -> ResolvedDrift:
    loaded = read_drift_file(path, check_axioms=check_axioms)
    return ResolvedDrift(spec, loaded.drift, loaded.params, path=path, metadata=loaded.metadata)


def _from_zoo(spec: str, name: str, options: dict, config_changes: dict, check_axioms: bool) -> ResolvedDrift:
    drift = drifts.get(name, **options)  # its callers checked the name
    if check_axioms and name == "closed_form":  # the one zoo drift that is not valid by construction
        report = axiom_report(LoadedDrift(drift, {}, {}))
        if not report["passed"]:
            raise ConfigError(f"closed_form expression {drift.expression!r} violates the mirror-learning axioms: "
                              f"{report['problem']}")
    return ResolvedDrift(spec, drift, config_changes=dict(config_changes))


def load_drift(spec: str | os.PathLike, *, key: jax.Array | None = None, check_axioms: bool = True,
               **options: Any) -> LoadedDrift:
    """Load a drift by name or file, ready to call as `drift(ratio, advantage, progress)`.

    `spec` is one of
      * a zoo drift, with its options as keywords: `"ppo"` (eps=0.2), `"dpo"` (alpha=2.0,
        beta=0.6), `"kl"` (coef=1.0, TRPO's KL as a penalty), `"zero"`, `"closed_form"`
        (expression="0.5*(r-1)**2"), or the neural families `"lpo"`/`"ta_lpo"` (drawn by
        `init(key)`; at their default init_scale=0 they equal their start, PPO);
      * a drift that ships with the package: `"transfer-v1"`;
      * the path of a drift file (`discover export`, `discover distill`).
    `key` draws a zoo drift's parameters (default `PRNGKey(0)`; closed forms have none).
    A name is a zoo or packaged name unless a file of that name exists here; a `pathlib.Path`
    always names a file.

    The same resolver as every `discover` command. A drift file's format, shapes and the
    mirror-learning axioms are checked (`check_axioms=False` skips the axioms), as is a
    closed form's formula; the other zoo drifts are valid by construction for every option
    value in range (sizes up to 4096 wide and 16 deep, coefficients 1e-6 to 1e6). Bad input
    raises `ConfigError` (a `ValueError`) with one line naming the value and what is allowed:
    an unknown name or option, a value of the wrong type or range, options given to a drift
    file, an unreadable file, a bad `key`, or `"trpo"` (a neighbourhood, not a drift).
    """
    if not isinstance(check_axioms, bool):
        raise ConfigError(f"check_axioms={check_axioms!r} is not allowed; it must be True or False")
    key = _prng_key(key)
    if isinstance(spec, os.PathLike):  # a path means a file, whatever its name
        spec = path = os.fspath(spec)
    elif isinstance(spec, str):
        path = drift_file_path(spec)
    else:
        raise ConfigError(f"drift {reprlib.repr(spec)} ({type(spec).__name__}) is not allowed; give a drift name "
                          f"or the path of a drift file")
    if path is not None:
        if options:
            raise ConfigError(f"options ({', '.join(options)}) cannot change the drift stored in {spec!r}")
        resolved = _from_file(spec, path, check_axioms)
    elif spec in ALGORITHM_ALIASES:
        name, changes = ALGORITHM_ALIASES[spec]
        raise ConfigError(f"{spec!r} is the {name} drift inside a {changes['neighbourhood']} neighbourhood that a "
                          f"trainer enforces, not a drift function; load 'kl' (a KL penalty) or {name!r}")
    elif spec in drifts.names():
        resolved = _from_zoo(spec, spec, options, {}, check_axioms)
    else:
        raise ConfigError(f"unknown drift {spec!r}; allowed: {', '.join(allowed_drifts(aliases=False))}, "
                          f"or the path of a drift file, {PYTHON_FORMULA_HINT}")
    metadata = resolved.metadata or {"parameterisation": resolved.drift.name, "options": resolved.drift.options()}
    return LoadedDrift(resolved.drift, resolved.init_params(key), metadata)


KEY_HINT = "one PRNG key, such as jax.random.PRNGKey(0) or jax.random.key(0)"


def _prng_key(key: Any) -> jax.Array:
    """`key` if it is one PRNG key (typed, or raw uint32 of shape (2,)), PRNGKey(0) for None."""
    if key is None:
        return jax.random.PRNGKey(0)
    if isinstance(key, (jax.Array, np.ndarray)):
        if (jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ()) or \
                (key.dtype == np.uint32 and key.shape == (2,)):
            return key
        raise ConfigError(f"key of shape {tuple(key.shape)} and dtype {key.dtype} is not allowed; give {KEY_HINT}")
    raise ConfigError(f"key={reprlib.repr(key)} ({type(key).__name__}) is not allowed; give {KEY_HINT}")
