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
    [strategy]                    # name, std, lr, antithetic
    name = "Open_ES"
    [drift]                       # name and the drift's options
    name = "lpo"
    hidden_size = 16
    test_envs = ["Acrobot-v1"]    # held-out envs, scored at checkpoints, never selected on
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

from discover.training.settings import parse_value, split_pairs
from inner_loop import drifts
from inner_loop.config import Hyperparams, TrainConfig, check_seed, field_types, preset
from inner_loop.envs import make_env
from inner_loop.episodes import check_final_window
from inner_loop.errors import ConfigError
from outer_loop.sharding import member_mesh
from outer_loop.strategy import make_strategy, strategy_names

EVOLVABLE_DRIFTS = ("lpo", "ta_lpo", "atoms")  # the families valid for every parameter value


def check_evolvable(name: str) -> None:
    if name not in EVOLVABLE_DRIFTS:
        raise ConfigError(f"drift={name!r} cannot be evolved; allowed: {', '.join(EVOLVABLE_DRIFTS)}")


@dataclass(frozen=True)
class StrategyConfig:
    """The evosax strategy and the options we set on it (LPO's published defaults)."""

    name: str = "Open_ES"  # any distribution-based evosax strategy
    std: float = 0.05  # search std of the perturbations (0.03-0.1 in the LPO work)
    lr: float = 0.01  # Adam learning rate of the search mean (strategies with an optimiser)
    antithetic: bool = True  # mirrored pairs i and i + N/2 (strategies that support it)


@dataclass(frozen=True)
class SweepConfig:
    """Everything that determines a sweep's numbers (the run name and folder do not)."""

    envs: tuple[str, ...] = ("CartPole-v1",)  # training envs; fitness averages over them
    generations: int = 40  # total generations (raise it on --resume to go on)
    population_size: int = 16  # drift candidates per generation
    seeds_per_member: int = 2  # inner runs per member per env (common to all members)
    checkpoint_every: int = 5  # generations between checkpoints (and drift files, heat maps)
    generations_per_call: int = 1  # generations per compiled call (lax.scan); 1 = finest progress
    mean_drift_seeds: int = 16  # validation: fresh seeds per env scoring the search mean at checkpoints
    seed: int = 0  # root PRNG seed of the sweep
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    drift: str = "lpo"  # the drift family evolved: lpo, ta_lpo or atoms
    drift_options: dict = field(default_factory=dict)  # options of that drift (hidden_size, start, ...)
    inner: dict = field(default_factory=dict)  # TrainConfig overrides applied to every env's preset
    test_envs: tuple[str, ...] = ()  # held-out envs: the search mean is scored on them at checkpoints
    inner_env: dict = field(default_factory=dict)  # {env: TrainConfig overrides} over `inner`, per env
    inner_randomize: dict = field(default_factory=dict)  # {hyperparameter: [low, high]}, log-uniform per run

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

        for name in ("generations", "population_size", "seeds_per_member", "checkpoint_every",
                     "generations_per_call", "mean_drift_seeds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} is not allowed; it must be a positive integer")
        if not self.envs:
            raise ConfigError("envs is empty; name at least one gymnax env id")
        for env in self.envs + self.test_envs:
            make_env(env)
        for env in self.test_envs:
            if env in self.envs:
                raise ConfigError(f"test env {env!r} is also a training env; a held-out env must not be trained on")
        if len(set(self.test_envs)) < len(self.test_envs) or len(set(self.envs)) < len(self.envs):
            raise ConfigError(f"envs={list(self.envs)} / test_envs={list(self.test_envs)} name an env twice")
        for env in self.inner_env:
            if env not in self.envs + self.test_envs:
                raise ConfigError(f"inner.{env} sets an env that is not in the sweep; its envs are "
                                  f"{', '.join(self.envs + self.test_envs)}")
        _check_randomize(self.inner_randomize)
        check_evolvable(self.drift)
        drift = self.make_drift()
        if self.strategy.name not in strategy_names():
            raise ConfigError(f"unknown strategy {self.strategy.name!r}; allowed: {', '.join(strategy_names())}")
        check_seed(self.seed)
        if not 0 < self.strategy.std < math.inf or not 0 < self.strategy.lr < math.inf:
            raise ConfigError(f"strategy.std={self.strategy.std!r} and strategy.lr={self.strategy.lr!r} "
                              "must both be finite numbers > 0")
        # The strategy itself checks the population size (even for antithetic pairs, ...).
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


RANDOMIZABLE = tuple(f.name for f in dataclasses.fields(Hyperparams))


def _check_randomize(ranges: dict) -> None:
    """ConfigError (one line) unless every entry is a Hyperparams field with 0 < low <= high < inf."""
    for name, bounds in ranges.items():
        if name not in RANDOMIZABLE:
            raise ConfigError(f"inner_randomize.{name} is not allowed; randomisable: {', '.join(RANDOMIZABLE)}")
        ok = (isinstance(bounds, (list, tuple)) and len(bounds) == 2
              and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds))
        if not ok or not 0 < bounds[0] < bounds[1] < math.inf:
            raise ConfigError(f"inner_randomize.{name}={bounds!r} is not allowed; give [low, high] with "
                              "0 < low < high (log-uniform)")


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
    top = [f.name for f in dataclasses.fields(SweepConfig)
           if f.name not in ("drift_options", "inner", "inner_env", "inner_randomize")]
    strategy = [f"strategy.{f.name}" for f in dataclasses.fields(StrategyConfig) if f.name != "name"]
    drift = [f"drift.{k}" for k in drifts.option_types(config.drift)]
    return top + strategy + drift + ["<inner-loop field> (e.g. total_timesteps, lr, num_envs)",
                                     "inner.<env>.<inner-loop field>", "inner_randomize.<hyperparameter>"]


def apply_sweep_settings(config: SweepConfig, pairs: list[tuple[str, Any]]) -> SweepConfig:
    """Apply (key, value) pairs; values are strings (from --set) or typed (from TOML)."""
    top_types = field_types(SweepConfig)
    strategy_types = field_types(StrategyConfig)
    inner_types = field_types(TrainConfig)
    # The drift name first (its options depend on it), then the envs (a preset's per-env
    # settings of an env they drop go with it; a setting given here for one still fails validate).
    pairs = sorted(pairs, key=lambda kv: (kv[0] not in ("drift", "drift.name"),
                                          kv[0] not in ("envs", "test_envs")))
    for key, value in pairs:
        if key in ("drift", "drift.name"):
            name = str(value)
            check_evolvable(name)
            keep = {k: v for k, v in config.drift_options.items() if k in drifts.option_types(name)}
            config = dataclasses.replace(config, drift=name, drift_options=keep)
        elif key in ("strategy", "strategy.name"):
            config = dataclasses.replace(config, strategy=dataclasses.replace(config.strategy, name=str(value)))
        elif key.startswith("strategy."):
            option = key[len("strategy."):]
            if option not in strategy_types:
                allowed = ", ".join(f"strategy.{k}" for k in strategy_types)
                raise ConfigError(f"unknown setting {key!r}; allowed: {allowed}")
            config = dataclasses.replace(config, strategy=dataclasses.replace(
                config.strategy, **{option: _typed(key, value, strategy_types[option])}))
        elif key.startswith("drift."):
            option = key[len("drift."):]
            types = drifts.option_types(config.drift)
            if option not in types:
                raise ConfigError(f"drift {config.drift!r} has no option {option!r}; "
                                  f"allowed: {', '.join('drift.' + k for k in types)}")
            config = dataclasses.replace(config, drift_options={**config.drift_options,
                                                                option: _typed(key, value, types[option])})
        elif key in ("envs", "test_envs"):
            envs = value if isinstance(value, (list, tuple)) else [e for e in str(value).split(",")]
            config = dataclasses.replace(config, **{key: tuple(str(e).strip() for e in envs if str(e).strip())})
            kept = config.envs + config.test_envs
            config = dataclasses.replace(config, inner_env={e: v for e, v in config.inner_env.items() if e in kept})
        elif key.startswith("inner_randomize."):
            name = key[len("inner_randomize."):]
            bounds = value if isinstance(value, (list, tuple)) else str(value).split(",")
            bounds = [_typed(key, b, float) for b in bounds]
            config = dataclasses.replace(config, inner_randomize={**config.inner_randomize, name: bounds})
        elif key.startswith("inner.") and key.count(".") >= 2:  # inner.<env>.<field>; env ids have no dots
            env, name = key[len("inner."):].rsplit(".", 1)
            if name not in inner_types or name == "env_id":
                raise ConfigError(f"unknown setting {key!r}; {name!r} is not an inner-loop field")
            per_env = {**config.inner_env.get(env, {}), name: _typed(key, value, inner_types[name])}
            config = dataclasses.replace(config, inner_env={**config.inner_env, env: per_env})
        elif key in top_types and key not in ("drift_options", "inner", "strategy", "inner_env", "inner_randomize"):
            config = dataclasses.replace(config, **{key: _typed(key, value, top_types[key])})
        elif key.removeprefix("inner.") in inner_types and key.removeprefix("inner.") != "env_id":
            name = key.removeprefix("inner.")
            config = dataclasses.replace(config, inner={**config.inner,
                                                        name: _typed(key, value, inner_types[name])})
        else:
            raise ConfigError(f"unknown setting {key!r}; allowed: {', '.join(settable_keys(config))}")
    return config


def _typed(key: str, value: Any, kind: type) -> Any:
    """A TOML value checked against `kind`, or a --set string parsed as `kind`."""
    if isinstance(value, str) and kind is not str:
        return parse_value(key, value, kind)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{key}={value!r} is not a valid {kind.__name__}")
    return value


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
