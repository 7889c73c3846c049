"""PPO's reference must beat the untrained policy's return by a margin of standard errors, on
a sweep's start and on its resume, or the PPO-normalised fitness of that env is noise."""

import json
import shutil

import numpy as np
import pytest

from discover.cli.main import main
from discover.sweep.config import get_preset
from discover.sweep.run_folder import RunFolder
from discover.training.references import MARGIN_SES, check_learnable, find_reference, reference_margin
from inner_loop.errors import ConfigError
from sweep_helpers import sweep_args


def _entry(ppo, untrained=None, **extra):
    entry = {"env_id": "CartPole-v1", "ppo_reference_return": float(np.mean(ppo)), "final_returns": ppo, **extra}
    if untrained is not None:
        entry.update(untrained_return=float(np.mean(untrained)), untrained_returns=untrained)
    return entry


def _error(capsys, argv):
    code = main(argv)
    return code, capsys.readouterr().err.strip()


def test_the_margin_is_three_standard_errors_of_the_difference_of_the_means():
    ppo, untrained = [9.0, 11.0], [-2.0, 2.0]  # standard errors 1 and 2: a margin of 3 sqrt(1 + 4)
    assert MARGIN_SES == 3 and reference_margin(_entry(ppo, untrained)) == pytest.approx(3 * np.sqrt(5))
    check_learnable(_entry(ppo, untrained))  # a span of 10 > 6.71
    with pytest.raises(ConfigError, match=r"^PPO's reference return on CartPole-v1 \(10\) does not beat the "
                                          r"untrained policy's \(4\) by the margin of 6.71 .*; give that env"):
        check_learnable(_entry(ppo, [2.0, 6.0]))  # a span of 6


def test_entries_without_the_untrained_seeds_fall_back_to_documented_rules():
    ppo = [9.0, 11.0]  # se 1
    older = {**_entry(ppo), "untrained_return": 0.0}  # no per-seed untrained returns: PPO's se for both
    assert reference_margin(older) == pytest.approx(3 * np.sqrt(2))
    assert reference_margin(_entry(ppo)) == pytest.approx(3.0)  # format 1: the zero point 0 is exact
    with pytest.raises(ConfigError, match="CartPole-v1 has no per-seed final_returns of 2 or more seeds"):
        reference_margin({"env_id": "CartPole-v1", "ppo_reference_return": 1.0, "final_returns": [1.0]})
    with pytest.raises(ConfigError, match=r"\(0\) does not beat the untrained policy's \(0\) by the margin of 0 "):
        check_learnable(_entry([0.0, 0.0], [0.0, 0.0]))  # a span of 0 never passes, even with no noise


@pytest.mark.parametrize("preset", ["quick", "transfer", "robust"])
def test_every_stored_reference_of_the_cpu_presets_clears_its_margin(preset):
    config = get_preset(preset)
    for train_config in config.train_configs() + config.test_configs():
        entry = find_reference(train_config)
        assert len(entry["untrained_returns"]) == entry["untrained_seeds"] >= 16
        assert entry["untrained_return"] == pytest.approx(np.mean(entry["untrained_returns"]))
        assert entry["ppo_reference_return"] - entry["untrained_return"] > 5 * reference_margin(entry)
        check_learnable(entry)


def test_per_seed_returns_of_the_wrong_type_make_references_json_corrupt(tmp_path):
    entry = _entry([1.0, 2.0], [0.0, 0.0])
    (tmp_path / "references.json").write_text(json.dumps({"references": [{**entry, "untrained_returns": "0, 0"}]}))
    with pytest.raises(ConfigError, match=r"references.json is corrupt \(TypeError\)"):
        RunFolder(str(tmp_path)).read_references()


@pytest.mark.slow
def test_a_measured_reference_within_the_noise_is_refused_at_start(capsys, tmp_path):
    # Catch in 1,024 steps: PPO barely moves from the untrained policy (-0.56 against -0.61
    # with 16 seeds each), well within 3 standard errors (0.11). The only env, so only its
    # references are measured.
    code, err = _error(capsys, sweep_args(tmp_path, "noise", 1, ["envs=Catch-bsuite",
                                                                 "inner.Catch-bsuite.total_timesteps=1024"]))
    last = err.splitlines()[-1]
    assert code == 2 and last.startswith("discover sweep: error: PPO's reference return on Catch-bsuite"), err
    assert "by the margin of" in last and "give that env a larger total_timesteps" in last
    assert not (tmp_path / "noise").exists()


@pytest.mark.xdist_group("reference-sweep")  # the worker that has the shared sweep
@pytest.mark.slow
def test_resuming_a_run_folder_whose_references_lost_their_span_is_refused(capsys, tmp_path, uninterrupted):
    run = tmp_path / "run"
    shutil.copytree(uninterrupted, run)
    stored = json.loads((run / "references.json").read_text())
    (entry,) = stored["references"]
    check_learnable(entry)  # as measured at its start
    entry["untrained_return"] = entry["ppo_reference_return"]  # a span of 0
    (run / "references.json").write_text(json.dumps(stored))
    metrics = (run / "metrics.jsonl").read_text()
    code, err = _error(capsys, ["sweep", "--resume", str(run), "--set", "generations=8", "--wandb", "disabled"])
    last = err.splitlines()[-1]
    assert code == 2 and last.startswith("discover sweep: error: PPO's reference return on CartPole-v1"), err
    assert "by the margin of" in last and f"{str(run)!r} cannot go on; start a new sweep" in last
    assert "from generation" not in err and (run / "metrics.jsonl").read_text() == metrics  # before any work
