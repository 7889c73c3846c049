"""The settings layer: each config field's check beside its definition, one way to apply pairs."""

from __future__ import annotations

import dataclasses
import math

import pytest

from discover.distill.config import DistillConfig, distill_config
from discover.sweep.config import StrategyConfig, SweepConfig, apply_sweep_settings
from discover.theorem.config import VerifyConfig
from inner_loop.config import TrainConfig
from inner_loop.errors import ConfigError
from inner_loop.settings import apply_settings, check_fields, field_kind, settable_fields, split_pairs, typed

CONFIGS = (TrainConfig, VerifyConfig, SweepConfig, StrategyConfig, DistillConfig)
# Fields that need no check of their own: free text a later step resolves (env ids, the
# strategy name: make_strategy checks it), booleans, dicts the config's validate checks.
UNCHECKED = {"env_id", "name", "anneal_lr", "normalize_advantages", "normalize_obs", "normalize_reward",
             "antithetic", "strategy", "drift_options", "inner", "inner_env"}
# Values no numeric field allows.
HOSTILE = (-1, math.nan, math.inf, True, "7")


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_numeric_field_declares_its_check(cls):
    unchecked = [f.name for f in dataclasses.fields(cls)
                 if f.metadata.get("check") is None and f.name not in UNCHECKED]
    assert not unchecked, f"{cls.__name__} fields without a check: {unchecked}"


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_defaults_pass_their_checks(cls):
    check_fields(cls())


@pytest.mark.parametrize("cls,field", [(cls, f) for cls in CONFIGS for f in dataclasses.fields(cls)
                                       if f.metadata.get("check") and field_kind(f) in (int, float)],
                         ids=lambda x: getattr(x, "__name__", getattr(x, "name", "")))
@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_a_bad_number_is_one_line_naming_its_key(cls, field, value):
    config = dataclasses.replace(cls(), **{field.name: value})
    with pytest.raises(ConfigError) as err:
        check_fields(config)
    message = str(err.value)
    key = field.metadata.get("key") or field.name
    assert message.startswith(f"{key}=") and "\n" not in message
    assert "not allowed" in message or "leaves no samples" in message


def test_checks_say_what_is_allowed():
    cases = [(TrainConfig(gamma=1.5), "gamma=1.5 is not allowed; it must be in [0, 1]"),
             (TrainConfig(final_window=0.0), "final_window=0.0 is not allowed; it must be in (0, 1]"),
             (TrainConfig(lr=0.0), "lr=0.0 is not allowed; it must be > 0"),
             (TrainConfig(activation="swish"), "activation='swish' is not allowed; choose one of tanh, relu"),
             (VerifyConfig(num_actions=1), "num_actions=1 is not allowed; it must be an integer >= 2"),
             (VerifyConfig(seed=-1), "seed=-1 is not allowed; a seed is an integer in [0, 4294967295]"),
             (DistillConfig(grid_share=1.0), "samples.grid_share=1.0 is not allowed; it must be in [0, 1)"),
             (DistillConfig(seeds=0), "samples.seeds=0 is not allowed; it must be a positive integer")]
    for config, message in cases:
        with pytest.raises(ConfigError, match=None) as err:
            config.validate()
        assert str(err.value).startswith(message), str(err.value)


def test_a_part_config_is_checked_with_its_prefix():
    with pytest.raises(ConfigError, match=r"^strategy\.std=0\.0 is not allowed; it must be > 0"):
        check_fields(StrategyConfig(std=0.0), "strategy.")


def test_set_text_and_toml_values_give_the_same_config():
    text = apply_sweep_settings(SweepConfig(), split_pairs(["generations=1e1", "strategy.std=0.5", "envs=Acrobot-v1",
                                                            "inner.Acrobot-v1.lr=3e-3", "num_envs=8"]))
    toml = apply_sweep_settings(SweepConfig(), [("generations", 10), ("strategy.std", 0.5), ("envs", ["Acrobot-v1"]),
                                                ("inner.Acrobot-v1.lr", 0.003), ("num_envs", 8)])
    assert text == toml
    assert (text.generations, text.strategy.std, text.envs) == (10, 0.5, ("Acrobot-v1",))
    assert text.inner == {"num_envs": 8} and text.inner_env == {"Acrobot-v1": {"lr": 3e-3}}


@pytest.mark.parametrize("kind,value,expected", [
    (int, "1e6", 1_000_000), (int, 3.0, 3), (float, 2, 2.0), (float, "3e-4", 3e-4), (bool, "off", False),
    (bool, "YES", True), (tuple, "a, b,,", ("a", "b")), (tuple, ["a", " b "], ("a", "b")), (str, "x", "x")])
def test_values_are_typed_by_their_field(kind, value, expected):
    assert typed("k", value, kind) == expected and type(typed("k", value, kind)) is type(expected)


@pytest.mark.parametrize("kind,value", [(int, "1.5"), (int, True), (float, "fast"), (bool, "maybe"), (int, 2.5),
                                        (float, [1.0]), (bool, 1)])
def test_a_value_of_the_wrong_type_is_one_line(kind, value):
    with pytest.raises(ConfigError, match=rf"^k={value!r}".replace("[", r"\[").replace("(", r"\(")) as err:
        typed("k", value, kind)
    assert "is not a valid" in str(err.value) and "\n" not in str(err.value)


def test_apply_settings_names_unknown_and_fixed_keys():
    with pytest.raises(ConfigError, match=r"^unknown setting 'colour'; allowed: num_mdps, num_states"):
        apply_settings(VerifyConfig(), [("colour", "blue")])
    with pytest.raises(ConfigError, match=r"^setting 'neighbourhood' is fixed by trpo \(kl_ball\) and cannot be set"):
        apply_settings(VerifyConfig(), [("neighbourhood", "none")], fixed={"neighbourhood": "trpo (kl_ball)"})
    with pytest.raises(ConfigError, match=r"^unknown setting 'strategy.colour'; allowed: strategy.name, strategy.std"):
        apply_settings(StrategyConfig(), [("strategy.colour", "1")], prefix="strategy.")


def test_distill_settings_use_their_keys():
    config = distill_config(["samples.seeds=3", "env=CartPole-v1,Acrobot-v1", "samples.max=100"])
    assert (config.seeds, config.envs, config.max_samples) == (3, ("CartPole-v1", "Acrobot-v1"), 100)
    assert list(settable_fields(DistillConfig))[:3] == ["env", "samples.timesteps", "samples.seeds"]
    with pytest.raises(ConfigError, match="^env= is empty"):
        distill_config(["env= , "])
