"""Configuration of a discovery sweep: presets, a TOML config file, `--set` overrides.

A sweep evolves the parameters of a drift family (`lpo` or `ta_lpo`, neural; `atoms`, a
weighted sum of valid atoms) with an evosax strategy; each member is scored by inner
mirror-learning runs on the training envs (docs/design.md, section 5). The resolved config
is saved with the run, so a run folder says exactly what produced it.

Config file (TOML), every key optional:

    preset = "quick"              # start from a preset, then apply the keys below
    envs = ["CartPole-v1"]
    generations = 40
    population_size = 16
    test_envs = ["Acrobot-v1"]    # held-out envs, scored at checkpoints, never selected on
    [strategy]                    # name, std, lr, antithetic
    name = "Open_ES"
    [drift]                       # name and the drift's options
    name = "lpo"
    hidden_size = 16
    [inner]                       # inner-loop TrainConfig fields, for every env
    total_timesteps = 65536
    [inner."Acrobot-v1"]          # ... and for one env (over the above)
    total_timesteps = 131072
    [inner_randomize]             # per inner run, drawn log-uniformly from [low, high]
    lr = [3e-4, 3e-2]

On the command line the same keys are `--set generations=40`, `--set strategy.std=0.05`,
`--set drift.hidden_size=16`, `--set total_timesteps=65536` (or `inner.total_timesteps`),
`--set inner.Acrobot-v1.total_timesteps=131072`, `--set envs=CartPole-v1,Acrobot-v1`,
`--set test_envs=Catch-bsuite`, `--set inner_randomize.lr=3e-4,3e-2`.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from typing import Any

import jax

from inner_loop import drifts
from inner_loop.config import Hyperparams, TrainConfig, preset
from inner_loop.envs import make_env
from inner_loop.episodes import check_final_window
from inner_loop.errors import ConfigError
from inner_loop.settings import (apply_settings, check_fields, field_kind, positive, positive_int, seed_value,
                                 setting, settable_fields, split_pairs, typed)
from outer_loop.sharding import member_mesh
from outer_loop.strategy import make_strategy

EVOLVABLE_DRIFTS = ("lpo", "ta_lpo", "atoms")  # the families valid for every parameter value
RANDOMIZABLE = tuple(f.name for f in dataclasses.fields(Hyperparams))


def check_evolvable(key: str, name: str) -> None:
    if name not in EVOLVABLE_DRIFTS:
        raise ConfigError(f"{key}={name!r} cannot be evolved; allowed: {', '.join(EVOLVABLE_DRIFTS)}")


def _training_envs(key: str, envs: tuple[str, ...]) -> None:
    if not envs:
        raise ConfigError(f"{key} is empty; name at least one gymnax env id")
    _known_envs(key, envs)


def _known_envs(key: str, envs: tuple[str, ...]) -> None:
    for env in envs:
        make_env(env)  # unknown env ids: one line with the allowed list


def _check_randomize(key: str, ranges: dict) -> None:
    """ConfigError (one line) unless every entry is a Hyperparams field with 0 < low <= high < inf."""
    for name, bounds in ranges.items():
        if name not in RANDOMIZABLE:
            raise ConfigError(f"{key}.{name} is not allowed; randomisable: {', '.join(RANDOMIZABLE)}")
        ok = (isinstance(bounds, (list, tuple)) and len(bounds) == 2
              and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds))
        if not ok or not 0 < bounds[0] < bounds[1] < math.inf:
            raise ConfigError(f"{key}.{name}={bounds!r} is not allowed; give [low, high] with "
                              "0 < low < high (log-uniform)")


@dataclass(frozen=True)
class StrategyConfig:
    """The evosax strategy and the options we set on it (LPO's published defaults)."""

    name: str = "Open_ES"  # any distribution-based evosax strategy (make_strategy checks the name)
    std: float = setting(0.05, positive)  # search std of the perturbations (0.03-0.1 in the LPO work)
    lr: float = setting(0.01, positive)  # Adam learning rate of the search mean (strategies with an optimiser)
    antithetic: bool = True  # mirrored pairs i and i + N/2 (strategies that support it)


@dataclass(frozen=True)
class SweepConfig:
    """Everything that determines a sweep's numbers (the run name and folder do not)."""

    envs: tuple[str, ...] = setting(("CartPole-v1",), _training_envs)  # training envs; fitness averages over them
    generations: int = setting(40, positive_int)  # total generations (raise it on --resume to go on)
    population_size: int = setting(16, positive_int)  # drift candidates per generation
    seeds_per_member: int = setting(2, positive_int)  # inner runs per member per env (common to all members)
    checkpoint_every: int = setting(5, positive_int)  # generations between checkpoints (and drift files, heat maps)
    generations_per_call: int = setting(1, positive_int)  # generations per compiled call (lax.scan); 1 = finest progress
    mean_drift_seeds: int = setting(16, positive_int)  # validation: fresh seeds per env scoring the search mean
    seed: int = setting(0, seed_value)  # root PRNG seed of the sweep
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    drift: str = setting("lpo", check_evolvable)  # the drift family evolved: lpo, ta_lpo or atoms
    drift_options: dict = field(default_factory=dict)  # options of that drift (hidden_size, start, ...)
    inner: dict = field(default_factory=dict)  # TrainConfig overrides applied to every env's preset
    test_envs: tuple[str, ...] = setting((), _known_envs)  # held-out envs: the search mean is scored on them at checkpoints
    inner_env: dict = field(default_factory=dict)  # {env: TrainConfig overrides} over `inner`, per env
    inner_randomize: dict = setting(default_factory=dict, check=_check_randomize)  # {hyperparameter: [low, high]}, log-uniform per run

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["envs"], out["test_envs"] = list(self.envs), list(self.test_envs)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "SweepConfig":
        data = dict(data)
        strategy = StrategyConfig(**data.pop("strategy", {}))
        return cls(strategy=strategy, envs=tuple(data.pop("envs", cls.envs)),
                   test_envs=tuple(data.pop("test_envs", ())), **data)

    def env_config(self, env: str) -> TrainConfig:
        """The inner-loop config of `env`: its preset, plus `inner`, plus `inner_env[env]`."""
        return preset(env).replace(env_id=env, **{**self.inner, **self.inner_env.get(env, {})}).validate()

    def train_configs(self) -> list[TrainConfig]:
        """The inner-loop config of each training env."""
        return [self.env_config(env) for env in self.envs]

    def test_configs(self) -> list[TrainConfig]:
        """The inner-loop config of each held-out env."""
        return [self.env_config(env) for env in self.test_envs]

    def randomize(self) -> dict | None:
        """`inner_randomize` as {field: (low, high)}, or None."""
        return {k: (float(v[0]), float(v[1])) for k, v in self.inner_randomize.items()} or None

    def make_drift(self) -> drifts.Drift:
        return drifts.get(self.drift, **self.drift_options)

    def validate(self) -> "SweepConfig":
        check_fields(self)
        check_fields(self.strategy, "strategy.")
        for env in self.test_envs:
            if env in self.envs:
                raise ConfigError(f"test env {env!r} is also a training env; a held-out env must not be trained on")
        if len(set(self.test_envs)) < len(self.test_envs) or len(set(self.envs)) < len(self.envs):
            raise ConfigError(f"envs={list(self.envs)} / test_envs={list(self.test_envs)} name an env twice")
        for env in self.inner_env:
            if env not in self.envs + self.test_envs:
                raise ConfigError(f"inner.{env} sets an env that is not in the sweep; its envs are "
                                  f"{', '.join(self.envs + self.test_envs)}")
        drift = self.make_drift()
        # The strategy itself checks its name and the population size (even for antithetic pairs, ...).
        make_strategy(self.strategy.name, self.population_size, drift.init(jax.random.PRNGKey(0)),
                      std=self.strategy.std, lr=self.strategy.lr, antithetic=self.strategy.antithetic)
        member_mesh(self.population_size)
        for train_config in self.train_configs() + self.test_configs():
            check_final_window(train_config)  # before any reference run: a NaN final return fails only after them
        return self


# Presets -----------------------------------------------------------------------------
# quick: from no drift (atoms, start="none") on CartPole-v1 at lr 1e-2, where no drift collapses
# and PPO holds, so the ES must discover a trust region; held out: Catch-bsuite alike (there
# a seed's score varies 10x less than on Acrobot-v1, whose failed seeds decide its mean).
# transfer: from PPO on two envs where the drift matters (CartPole-v1 at lr 1e-2, Pendulum-v1);
# held out: Acrobot-v1 and Breakout-MinAtar. robust: the atoms family from DPO on three
# envs at learning rates drawn from [1e-3, 3e-2], held out: Catch and two MinAtar games.
# minatar: the published LPO set-up (a GPU job).
# The measurements behind each choice: docs/design.md, Measured decisions.
_HIGH_LR_CARTPOLE = {"total_timesteps": 32_768, "lr": 1e-2}
PRESETS: dict[str, SweepConfig] = {
    "quick": SweepConfig(
        envs=("CartPole-v1",), generations=40, population_size=16, seeds_per_member=2,
        checkpoint_every=5, mean_drift_seeds=16,
        strategy=StrategyConfig(name="Open_ES", std=0.2, lr=0.1),
        drift="atoms", drift_options={"start": "none"},
        inner=dict(_HIGH_LR_CARTPOLE), test_envs=("Catch-bsuite",),
    ),
    "transfer": SweepConfig(
        envs=("CartPole-v1", "Pendulum-v1"), generations=120, population_size=16, seeds_per_member=2,
        checkpoint_every=10, mean_drift_seeds=16,
        strategy=StrategyConfig(name="Open_ES", std=0.05, lr=0.03),
        drift="lpo", drift_options={"hidden_size": 32, "start": "ppo"},
        test_envs=("Acrobot-v1", "Breakout-MinAtar"),
        inner_env={"CartPole-v1": dict(_HIGH_LR_CARTPOLE), "Pendulum-v1": {"total_timesteps": 65_536},
                   "Acrobot-v1": dict(_HIGH_LR_CARTPOLE), "Breakout-MinAtar": {"total_timesteps": 131_072}},
    ),
    "robust": SweepConfig(
        envs=("CartPole-v1", "Acrobot-v1", "Pendulum-v1"), generations=100, population_size=16,
        seeds_per_member=2, checkpoint_every=10, mean_drift_seeds=16,
        strategy=StrategyConfig(name="Open_ES", std=0.2, lr=0.1),
        drift="atoms", drift_options={"start": "dpo"},
        inner_randomize={"lr": [1e-3, 3e-2]},
        test_envs=("Catch-bsuite", "Breakout-MinAtar", "SpaceInvaders-MinAtar"),
        inner_env={"CartPole-v1": dict(_HIGH_LR_CARTPOLE), "Acrobot-v1": dict(_HIGH_LR_CARTPOLE),
                   "Pendulum-v1": {"total_timesteps": 65_536},
                   "Catch-bsuite": dict(_HIGH_LR_CARTPOLE), "Breakout-MinAtar": {"total_timesteps": 131_072},
                   "SpaceInvaders-MinAtar": {"total_timesteps": 131_072}},
    ),
    "minatar": SweepConfig(
        envs=("Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "SpaceInvaders-MinAtar"),
        generations=256, population_size=64, seeds_per_member=4, checkpoint_every=8,
        mean_drift_seeds=16,
        strategy=StrategyConfig(name="Open_ES", std=0.03, lr=0.01),
        drift="lpo", drift_options={"hidden_size": 128, "start": "ppo"},
    ),
}


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> SweepConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}")
    return PRESETS[name]


def load_config_file(path: str, base: SweepConfig | None = None) -> SweepConfig:
    """A SweepConfig from a TOML file (on top of its `preset` key, or `base`)."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path!r} is not valid TOML: {err}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path!r} is a folder; give a TOML file") from None
    except OSError as err:
        raise ConfigError(f"config file {path!r} cannot be read: {err.strerror}") from None
    if "preset" in data:
        try:
            base = get_preset(str(data.pop("preset")))
        except ConfigError as err:
            raise ConfigError(f"config file {path!r}: {err}") from None
    config = base or SweepConfig()
    pairs: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict) and key in ("strategy", "drift", "inner", "inner_randomize"):
            for k, v in value.items():
                if isinstance(v, dict) and key == "inner":  # [inner."Acrobot-v1"]: one env's table
                    pairs += [(f"inner.{k}.{field_name}", x) for field_name, x in v.items()]
                else:
                    pairs.append((f"{key}.{k}", v))
        else:
            pairs.append((key, value))
    try:
        return apply_sweep_settings(config, pairs)
    except ConfigError as err:
        raise ConfigError(f"config file {path!r}: {err}") from None


def apply_sweep_overrides(config: SweepConfig, settings: list[str]) -> SweepConfig:
    """Apply `--set key=value` strings."""
    return apply_sweep_settings(config, split_pairs(settings))


def settable_keys(config: SweepConfig) -> list[str]:
    top = list(settable_fields(SweepConfig))
    strategy = [f"strategy.{key}" for key in settable_fields(StrategyConfig)]
    drift = [f"drift.{k}" for k in drifts.option_types(config.drift)]
    return top + strategy + drift + ["<inner-loop field> (e.g. total_timesteps, lr, num_envs)",
                                     "inner.<env>.<inner-loop field>", "inner_randomize.<hyperparameter>"]


def apply_sweep_settings(config: SweepConfig, pairs: list[tuple[str, Any]]) -> SweepConfig:
    """Apply (key, value) pairs; values are strings (from --set) or typed (from TOML)."""
    # The drift name first (its options depend on it), then the envs (a preset's per-env
    # settings of an env they drop go with it; a setting given here for one still fails validate).
    pairs = sorted(pairs, key=lambda kv: (kv[0] not in ("drift", "drift.name"),
                                          kv[0] not in ("envs", "test_envs")))
    for key, value in pairs:
        config = _setter(key)(config, key, value)
    return config


def _set_drift(config: SweepConfig, key: str, value: Any) -> SweepConfig:
    name = str(value)
    check_evolvable("drift", name)
    keep = {k: v for k, v in config.drift_options.items() if k in drifts.option_types(name)}
    return dataclasses.replace(config, drift=name, drift_options=keep)


def _set_strategy(config: SweepConfig, key: str, value: Any) -> SweepConfig:
    key = "strategy.name" if key == "strategy" else key
    return dataclasses.replace(config, strategy=apply_settings(config.strategy, [(key, value)], prefix="strategy."))


def _set_drift_option(config: SweepConfig, key: str, value: Any) -> SweepConfig:
    option = key.removeprefix("drift.")
    kind = drifts.option_kind(config.drift, option, prefix="drift.")
    return dataclasses.replace(config, drift_options={**config.drift_options, option: typed(key, value, kind)})


def _set_envs(config: SweepConfig, key: str, value: Any) -> SweepConfig:
    config = dataclasses.replace(config, **{key: typed(key, value, tuple)})
    kept = config.envs + config.test_envs
    return dataclasses.replace(config, inner_env={e: v for e, v in config.inner_env.items() if e in kept})


def _set_randomize(config: SweepConfig, key: str, value: Any) -> SweepConfig:
    bounds = value if isinstance(value, (list, tuple)) else str(value).split(",")
    bounds = [typed(key, b, float) for b in bounds]
    name = key.removeprefix("inner_randomize.")
    return dataclasses.replace(config, inner_randomize={**config.inner_randomize, name: bounds})


def inner_target(key: str) -> tuple[str, str]:
    """(env, field) of an inner-loop key: `inner.<env>.<field>` sets one env's field, and
    `inner.<field>` or a bare `<field>` every env's (env ""). Env ids have no dots."""
    if not key.startswith("inner."):
        return "", key
    env, dot, name = key.removeprefix("inner.").rpartition(".")
    if dot and not env:
        raise ConfigError(f"--set {key}: the env id is missing; use inner.<env>.<field> or inner.<field>")
    return env, name


def _set_inner(config: SweepConfig, key: str, value: Any) -> SweepConfig:
    """`inner.<field>` (or a bare inner-loop field) for every env, `inner.<env>.<field>` for one."""
    env, name = inner_target(key)
    inner_fields = settable_fields(TrainConfig)
    if name not in inner_fields or name == "env_id":
        if env:
            raise ConfigError(f"unknown setting {key!r}; {name!r} is not an inner-loop field")
        _unknown(config, key)
    value = typed(key, value, field_kind(inner_fields[name]))
    if not env:
        return dataclasses.replace(config, inner={**config.inner, name: value})
    return dataclasses.replace(config, inner_env={**config.inner_env, env: {**config.inner_env.get(env, {}), name: value}})


def _set_top(config: SweepConfig, key: str, value: Any) -> SweepConfig:
    """A SweepConfig field by name, else an inner-loop field for every env."""
    if key in settable_fields(SweepConfig):
        return apply_settings(config, [(key, value)])
    if "." in key:
        _unknown(config, key)
    return _set_inner(config, key, value)


def _unknown(config: SweepConfig, key: str):
    raise ConfigError(f"unknown setting {key!r}; allowed: {', '.join(settable_keys(config))}")


# Which function applies a key: exact keys, then prefixes (ending in "."), then `_set_top`.
_ROUTES = (("drift", _set_drift), ("drift.name", _set_drift), ("strategy", _set_strategy),
           ("envs", _set_envs), ("test_envs", _set_envs), ("strategy.", _set_strategy),
           ("drift.", _set_drift_option), ("inner_randomize.", _set_randomize), ("inner.", _set_inner))


def _setter(key: str):
    for match, setter in _ROUTES:
        if key == match or (match.endswith(".") and key.startswith(match)):
            return setter
    return _set_top


RESUMABLE_KEYS = ("generations", "checkpoint_every", "generations_per_call")


def resume_config(saved: dict, settings: list[tuple[str, Any]]) -> SweepConfig:
    """The saved config with `settings` applied; only RESUMABLE_KEYS may change."""
    old = SweepConfig.from_dict(saved["sweep"])
    new = apply_sweep_settings(old, settings)
    for f in dataclasses.fields(SweepConfig):
        before, after = getattr(old, f.name), getattr(new, f.name)
        if before != after and f.name not in RESUMABLE_KEYS:
            raise ConfigError(f"--set {f.name}: conflicts with the run's config ({before!r} -> {after!r}); "
                              f"on --resume only {', '.join(RESUMABLE_KEYS)} can change")
    return new.validate()
