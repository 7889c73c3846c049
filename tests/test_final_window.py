"""A run where no episode can end in the final window (final_return NaN for every seed) is
refused before any work: sweeps (training and held-out envs), train and compare."""

import os
import re
import time

import jax
import numpy as np
import pytest

from discover.cli.main import main
from discover.sweep.config import apply_sweep_overrides, get_preset
from inner_loop import TrainConfig, drifts, make_train
from inner_loop.episodes import (always_ends_from, check_final_window, ends_in_window, fixed_episode_length,
                                  window_updates)
from inner_loop.errors import ConfigError

# minatar's inner config (64 envs x 128 steps) at 262,144 steps: 32 updates, the last 2 in the
# window, steps 3841-4096 of each env; Freeway's episodes end at steps 2500 and 5000.
FREEWAY_LINE = ("Freeway-MinAtar: no episode can end in the final window, so final_return would be NaN: its "
                "episodes last 2500 steps (it never ends one early) and the final window is the last 2 of 32 "
                "updates, 256 steps per env (steps 3841-4096); raise total_timesteps to at least 3121152 "
                "or final_window to at least 0.376")


def _error(capsys, argv):
    code = main(argv)
    return code, capsys.readouterr().err.strip()


def test_only_envs_that_never_end_an_episode_early_have_a_fixed_length():
    assert fixed_episode_length("Freeway-MinAtar") == 2500
    assert fixed_episode_length("Pendulum-v1") == 200
    for env in ("CartPole-v1", "Breakout-MinAtar", "Acrobot-v1", "Catch-bsuite"):
        assert fixed_episode_length(env) is None, env  # these may end early: any window may hold an end


def test_the_minatar_preset_with_few_steps_exits_2_at_once_with_one_line(capsys, tmp_path):
    started = time.perf_counter()
    code, err = _error(capsys, ["sweep", "--preset", "minatar", "--set", "total_timesteps=262144",
                                "--runs-dir", str(tmp_path), "--name", "m", "--wandb", "disabled"])
    seconds = time.perf_counter() - started
    assert code == 2 and err == f"discover sweep: error: {FREEWAY_LINE}", err
    assert not os.listdir(tmp_path) and seconds < 30  # no reference run (minutes), no folder


def test_minatar_configs_that_can_end_an_episode_in_the_window_are_not_refused():
    for steps in (10_000_000, 3_121_152, 163_840):  # 163,840: 2560 steps per env, the window holds step 2500
        apply_sweep_overrides(get_preset("minatar"), [f"total_timesteps={steps}"]).validate()
    with pytest.raises(ConfigError, match="raise total_timesteps to at least 3121152 or final_window"):
        # 371 updates: a window of 19 x 128 = 2432 steps (steps 45057-47488) between two episode ends
        apply_sweep_overrides(get_preset("minatar"), ["total_timesteps=3039232"]).validate()
    # The last 13 of 32 updates (steps 2433-4096) hold step 2500; the last 12 (from 2561) do not.
    apply_sweep_overrides(get_preset("minatar"), ["total_timesteps=262144", "final_window=0.376"]).validate()
    with pytest.raises(ConfigError, match="final_window to at least 0.376$"):
        apply_sweep_overrides(get_preset("minatar"), ["total_timesteps=262144", "final_window=0.375"]).validate()


def test_a_held_out_env_is_checked_too(capsys, tmp_path):
    # Pendulum's preset at one update of 16 envs x 128 steps: 128 steps per env, episodes of 200.
    code, err = _error(capsys, ["sweep", "--set", "test_envs=Pendulum-v1", "--set",
                                "inner.Pendulum-v1.total_timesteps=2048", "--runs-dir", str(tmp_path)])
    assert code == 2 and "\n" not in err and err.startswith("discover sweep: error: Pendulum-v1: no episode can end")
    assert "episodes last 200 steps" in err and "raise total_timesteps to at least 43008" in err
    assert "final_window to" not in err  # no window of a 128-step run holds a 200-step episode's end


def test_train_and_compare_refuse_it_before_training(capsys, tmp_path):
    code, err = _error(capsys, ["train", "--env", "Freeway-MinAtar", "--set", "total_timesteps=262144"])
    assert code == 2 and err == f"discover train: error: {FREEWAY_LINE}", err
    out = tmp_path / "report"
    code, err = _error(capsys, ["compare", "ppo", "--envs", "CartPole-v1,Freeway-MinAtar", "--seeds", "2",
                                "--set", "total_timesteps=262144", "-o", str(out)])
    assert code == 2 and err == f"discover compare: error: {FREEWAY_LINE}", err
    assert not out.exists()


def test_the_remedy_is_the_budget_from_which_every_run_has_an_end_in_its_window():
    for length, steps, final_window in [(2500, 128, 0.05), (200, 16, 0.05), (200, 16, 0.3), (100, 7, 0.11),
                                        (2500, 128, 1.0), (200, 256, 0.05), (999, 10, 0.013)]:
        enough = always_ends_from(length, steps, final_window)
        assert all(ends_in_window(length, steps, u, final_window) for u in range(enough, enough + 500))
        # One update fewer and the window no longer covers an episode's length.
        assert enough == 1 or window_updates(final_window, enough - 1) * steps < length


@pytest.mark.slow
def test_the_rule_matches_the_episodes_the_trainer_finishes():
    # One Pendulum run (never ends an episode early, 200 steps) of 30 updates of 16 steps: its
    # first u updates are those of a u-update run (the episode ends do not depend on the policy).
    config = TrainConfig(env_id="Pendulum-v1", total_timesteps=30 * 16, num_envs=1, num_steps=16,
                         num_minibatches=1, update_epochs=1)
    counts = np.asarray(make_train(config, drifts.get("ppo"))(jax.random.PRNGKey(0), {})["episode_count"])
    assert np.flatnonzero(counts).tolist() == [12, 24]  # steps 200 and 400 of 480
    decided = set()
    for updates in range(1, 31):
        for final_window in (0.05, 0.1, 0.2, 0.5, 1.0):
            finishes = counts[:updates][-window_updates(final_window, updates):].sum() > 0
            short = config.replace(total_timesteps=updates * 16, final_window=final_window)
            assert ends_in_window(200, 16, updates, final_window) == finishes, (updates, final_window)
            if finishes:
                check_final_window(short)
            else:
                with pytest.raises(ConfigError, match="Pendulum-v1: no episode can end in the final window") as err:
                    check_final_window(short)
                wider = re.search(r"final_window to at least ([0-9.]+)$", str(err.value))
                assert (wider is not None) == (updates * 16 >= 200)  # named when an episode ends at all
                if wider:  # the smallest window (in thousandths) that holds an end of this run
                    widest = float(wider.group(1))
                    assert counts[:updates][-window_updates(widest, updates):].sum() > 0
                    assert counts[:updates][-window_updates(widest - 0.001, updates):].sum() == 0
            decided.add(finishes)
    assert decided == {True, False}
    # Not monotonic: 13 updates (steps 193-208 in the window) end an episode, 14 (209-224) do not.
    assert ends_in_window(200, 16, 13, 0.05) and not ends_in_window(200, 16, 14, 0.05)
