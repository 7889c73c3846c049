"""Sweeps over several envs: held-out test envs, per-env inner tables, randomised inner
runs, negative-return envs, and their bad input (tiny configs of the real thing)."""

import json
import os

import numpy as np
import pytest

from discover.cli.main import main
from discover.files.drift_file import read_drift_file
from discover.sweep.config import apply_sweep_overrides, get_preset, load_config_file
from sweep_helpers import FITNESS_KEYS, read_metrics, sweep_args


# Catch's episodes last 9 steps, so a tiny budget still gives every seed a final return; with
# 4 epochs PPO beats the untrained policy by 6 standard errors (1: within the margin).
HELD_OUT = ["test_envs=Catch-bsuite", "inner.Catch-bsuite.total_timesteps=1024", "inner.Catch-bsuite.update_epochs=4"]
TRAINING_KEYS = tuple(k for k in FITNESS_KEYS if k != "mean_drift_fitness")


@pytest.fixture(scope="module")
def with_and_without_test_envs(tmp_path_factory, uninterrupted):
    """The shared 6-generation sweep, and its first 4 generations with a held-out env."""
    runs = tmp_path_factory.mktemp("runs")
    assert main(sweep_args(runs, "held_out", 4, HELD_OUT)) == 0
    return uninterrupted, runs / "held_out"


@pytest.mark.xdist_group("reference-sweep")  # the worker that has the shared sweep
@pytest.mark.slow
def test_held_out_envs_are_logged_at_checkpoints_and_never_change_the_search(with_and_without_test_envs):
    plain, held_out = with_and_without_test_envs
    rows = read_metrics(held_out)
    checkpoints = [r for r in rows if "mean_drift_fitness" in r]
    assert [r["generation"] for r in checkpoints] == [2, 4]
    for row in checkpoints:
        assert np.isfinite(row["test_fitness"]) and row["test_fitness"] == row["test_fitness/Catch-bsuite"]
    assert not any("test_fitness" in r for r in rows if r not in checkpoints)
    # The search never sees them: every training number equals the run without test envs.
    same = [{k: r[k] for k in TRAINING_KEYS + ("mean_drift_fitness",) if k in r} for r in rows]
    assert same == [{k: r[k] for k in TRAINING_KEYS + ("mean_drift_fitness",) if k in r}
                    for r in read_metrics(plain)[:4]]

    refs = json.loads((held_out / "references.json").read_text())
    (test_ref,) = refs["test_references"]
    assert test_ref["env_id"] == "Catch-bsuite" and test_ref["config"]["total_timesteps"] == 1024
    assert test_ref["ppo_reference_return"] > test_ref["untrained_return"]
    assert refs["references"][0]["config"]["total_timesteps"] == 512  # the table is for Catch only
    mean = read_drift_file(str(held_out / "drifts" / "gen_000004_mean.drift.npz"))
    assert mean.metadata["provenance"]["test_envs"] == ["Catch-bsuite"]
    assert mean.metadata["provenance"]["test_fitness"] == pytest.approx(checkpoints[-1]["test_fitness"])


@pytest.mark.xdist_group("reference-sweep")  # the worker that has the shared sweep
@pytest.mark.slow
def test_export_best_ranks_by_training_fitness_not_held_out(with_and_without_test_envs, tmp_path):
    _, held_out = with_and_without_test_envs
    rows = read_metrics(held_out)
    # Make the held-out score point the other way from the training score.
    lower = min((r for r in rows if "mean_drift_fitness" in r), key=lambda r: r["mean_drift_fitness"])
    for row in rows:
        if "test_fitness" in row:
            row["test_fitness"] = 100.0 if row is lower else -100.0
    (held_out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "best.drift.npz"
    assert main(["export", str(held_out), "--generation", "best", "-o", str(out)]) == 0
    best = max((r for r in rows if "mean_drift_fitness" in r), key=lambda r: (r["mean_drift_fitness"], r["generation"]))
    assert read_drift_file(str(out)).metadata["provenance"]["generation"] == best["generation"] != lower["generation"]


def test_per_env_tables_and_randomisation_from_a_toml_file(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text('preset = "quick"\nenvs = ["CartPole-v1", "Acrobot-v1"]\ntest_envs = ["Catch-bsuite"]\n'
                    '[inner]\nnum_envs = 8\n[inner."Acrobot-v1"]\ntotal_timesteps = 131072\nlr = 3e-3\n'
                    '[inner_randomize]\nlr = [3e-4, 3e-2]\n')
    config = load_config_file(str(path)).validate()
    cartpole, acrobot = config.train_configs()
    assert (cartpole.total_timesteps, cartpole.lr, cartpole.num_envs) == (32_768, 1e-2, 8)
    assert (acrobot.total_timesteps, acrobot.lr, acrobot.num_envs) == (131_072, 3e-3, 8)
    assert config.test_configs()[0].env_id == "Catch-bsuite" and config.randomize() == {"lr": (3e-4, 3e-2)}
    same = apply_sweep_overrides(get_preset("quick"), [
        "envs=CartPole-v1,Acrobot-v1", "test_envs=Catch-bsuite", "num_envs=8",
        "inner.Acrobot-v1.total_timesteps=131072", "inner.Acrobot-v1.lr=3e-3", "inner_randomize.lr=3e-4,3e-2"])
    assert same == config


@pytest.mark.xdist_group("reference-sweep")  # the worker that has the shared sweep
@pytest.mark.slow
def test_randomised_sweep_runs_and_differs_from_the_fixed_one(tmp_path, uninterrupted):
    """The draws come from each run's seed key (part of the checkpointed state), so resuming
    repeats them as it repeats the seeds (tests/test_sweep.py checks resume)."""
    assert main(sweep_args(tmp_path, "randomised", 2, ["inner_randomize.lr=1e-4,1e-1"])) == 0
    rows, fixed = read_metrics(tmp_path / "randomised"), read_metrics(uninterrupted)
    assert [r["generation"] for r in rows] == [1, 2] and all(np.isfinite(r["fitness_mean"]) for r in rows)
    assert rows[0]["fitness_mean"] != fixed[0]["fitness_mean"]  # the same sweep with the lr fixed
    saved = json.loads((tmp_path / "randomised" / "config.json").read_text())
    assert saved["sweep"]["inner_randomize"] == {"lr": [1e-4, 1e-1]}


@pytest.mark.slow
def test_a_sweep_on_acrobot_runs_with_its_negative_returns(tmp_path):
    """Acrobot's returns are negative (-500 untrained): the old return/PPO fitness could not
    meta-train on it. A budget where PPO learns something: 16k steps, 2 epochs (PPO beats the
    untrained policy by 5.7 standard errors; with 1 epoch by 2.9, within the margin)."""
    argv = sweep_args(tmp_path, "acrobot", 2, ["envs=Acrobot-v1", "total_timesteps=16384", "num_steps=64",
                                               "num_envs=8", "final_window=0.25", "lr=3e-3", "update_epochs=2"])
    assert main(argv) == 0
    (ref,) = json.loads((tmp_path / "acrobot" / "references.json").read_text())["references"]
    assert ref["untrained_return"] < ref["ppo_reference_return"] < 0
    rows = read_metrics(tmp_path / "acrobot")
    assert len(rows) == 2 and all(np.isfinite(r["fitness_mean"]) for r in rows)
    assert -1.0 < rows[-1]["mean_drift_fitness"] < 2.0  # PPO-normalised: on PPO's scale, not -500's


def _error(capsys, argv):
    code = main(argv)
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("settings,fragment", [
    (["test_envs=CartPole-v9"], "CartPole-v9"),
    (["test_envs=CartPole-v1"], "test env 'CartPole-v1' is also a training env"),
    (["inner_randomize.lr=1e-2,1e-3"], "inner_randomize.lr=[0.01, 0.001] is not allowed"),
    (["inner_randomize.lr=0,1e-3"], "inner_randomize.lr=[0.0, 0.001] is not allowed"),
    (["inner_randomize.lr=1e-3,1e-3"], "0 < low < high"),
    (["inner_randomize.lr=1e-3"], "give [low, high]"),
    (["inner_randomize.colour=1,2"], "inner_randomize.colour is not allowed; randomisable: lr"),
    (["inner.Acrobot-v1.total_timesteps=4096"], "inner.Acrobot-v1 sets an env that is not in the sweep"),
    (["inner.Catch-bsuite.colour=4"], "'colour' is not an inner-loop field"),
    (["inner..lr=1e-2"], "--set inner..lr: the env id is missing"),
])
def test_bad_multi_env_settings_are_one_line_errors_and_write_nothing(capsys, tmp_path, settings, fragment):
    code, err = _error(capsys, sweep_args(tmp_path / "runs", "bad", 1, ["test_envs=Catch-bsuite", *settings]))
    assert code == 2 and fragment in err and "\n" not in err and "Traceback" not in err, err
    assert not os.path.exists(tmp_path / "runs" / "bad")


@pytest.mark.slow
def test_an_env_where_ppo_does_not_beat_the_untrained_policy_is_a_one_line_error(capsys, tmp_path):
    # MountainCar in 4,096 steps: no policy reaches the flag, every return is the -200 time-out.
    code, err = _error(capsys, sweep_args(tmp_path / "runs", "flat", 1, [
        "envs=MountainCar-v0", "total_timesteps=4096", "num_steps=128", "final_window=1.0"]))
    assert code == 2 and "does not beat the untrained policy" in err.splitlines()[-1], err
    assert not os.path.exists(tmp_path / "runs" / "flat")
