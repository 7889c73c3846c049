"""The statistics of `discover compare` (`report/paired.py`, `report/summary.py`) on data whose
answers are known: PPO = 1 by construction, paired CIs, failed seeds counted, envs that cannot
normalise, tuned rows on disjoint seeds, and no CIs from too few seeds."""

import numpy as np
import pytest
import scipy.stats

from discover.report import paired
from discover.report.markdown import markdown_report
from discover.report.summary import WHOLE_GRID, summarize

ENVS = ["E0", "E1", "E2"]


def _summary(finals, zero=None, labels=("a", "ppo"), points=("p",), training=None, seed=0):
    labels, envs = list(labels), ENVS[:finals.shape[1]]
    zero = np.zeros(finals.shape[1:3]) if zero is None else zero
    training = training or {label: None for label in labels}
    return summarize(finals, zero, labels, envs, list(points), training, seed)


def _ratio(results, group, label, point="p"):
    return results["ratio_to_ppo"][group]["by_points"][point][label]


def test_iqm_on_known_cases_and_along_an_axis():
    assert paired.iqm(np.arange(8.0)) == pytest.approx(np.mean([2, 3, 4, 5]))
    rows = np.array([np.arange(8.0), np.arange(8.0)[::-1] * 10])
    np.testing.assert_allclose(paired.iqm(rows, axis=1), [3.5, 35.0])  # the axis is honoured
    np.testing.assert_allclose(paired.iqm(rows.T, axis=0), [3.5, 35.0])
    x = np.random.default_rng(0).normal(size=(3, 17, 2))  # scipy's 25 % trimmed mean is the same statistic
    np.testing.assert_allclose(paired.iqm(x, axis=1), scipy.stats.trim_mean(x, 0.25, axis=1))


@pytest.mark.parametrize("data_seed", range(5))
def test_ppo_ratio_is_exactly_one_on_any_data(data_seed):
    rng = np.random.default_rng(data_seed)
    finals = rng.normal(rng.normal(0, 100, (1, 3, 2, 1)), 50, (3, 3, 2, 8))  # negative returns too
    finals[rng.random(finals.shape) < 0.2] = np.nan  # failed seeds, PPO's included
    finals[2, :, :, :] = np.abs(finals[2]) + 200  # PPO well above the untrained policy (0)
    finals[2, :, 0, 0] = np.nan  # one failed PPO seed per env: its IQM stays above the untrained policy's
    results = _summary(finals, labels=("a", "b", "ppo"), points=("x", "y"))
    for group, entry in results["ratio_to_ppo"].items():
        for point in ("x", "y", WHOLE_GRID):
            ppo = entry["by_points"][point]["ppo"]
            # (no CI where PPO's IQM is at the untrained policy's in over 5 % of draws: failed seeds)
            assert ppo["value"] == 1.0 and ppo["ci"] in ([1.0, 1.0], [None, None]), (group, point)
        assert results["tuned"]["ratio_to_ppo_tuned"][group]["ppo"]["value"] == 1.0


def _ci_width(results, group="E0"):
    lo, hi = _ratio(results, group, "a")["ci"]
    return hi - lo


def _unpaired_ci_width(finals, resamples=2000, seed=0):
    """The same ratio's CI when each label's seeds are resampled on their own (unpaired)."""
    rng = np.random.default_rng(seed)
    seeds = finals.shape[-1]
    a = finals[0, 0, 0][rng.integers(0, seeds, (resamples, seeds))]
    ppo = finals[1, 0, 0][rng.integers(0, seeds, (resamples, seeds))]
    ratio = paired.iqm(a) / paired.iqm(ppo)
    lo, hi = np.quantile(ratio, [0.025, 0.975])
    return hi - lo


def test_paired_ci_is_narrower_where_seeds_track_and_no_narrower_on_independent_data():
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(100, 30, 16)  # a hard seed is hard for every label
    tracking = np.stack([seed_effect * 1.05 + rng.normal(0, 2, 16), seed_effect])[:, None, None, :]
    assert _ci_width(_summary(tracking)) < 0.3 * _unpaired_ci_width(tracking)
    ratios = []
    for trial in range(12):
        independent = np.random.default_rng(trial + 1).normal(100, 30, (2, 1, 1, 16))
        ratios.append(_ci_width(_summary(independent, seed=trial)) / _unpaired_ci_width(independent, seed=trial))
    assert 0.8 < np.mean(ratios) < 1.2


def test_failed_seeds_are_scored_as_the_untrained_policy_and_counted():
    finals = np.array([[[[np.nan, 5.0, 7.0, 9.0, 11.0, 13.0]]], [[[4.0, 6.0, 8.0, 10.0, 12.0, 14.0]]]])
    zero = np.array([[1.0]])
    results = _summary(finals, zero)
    row = results["returns"]["E0"]["p"]["a"]
    assert row["failed_seeds"] == 1 and results["failed_seeds"]["a"] == {"E0": 1}
    assert row["mean"] == pytest.approx(np.mean([1.0, 5, 7, 9, 11, 13]))  # not 9.0, the mean of the others
    assert row["final_returns"][0] is None  # as trained: failed
    assert results["probability_beats_ppo"]["a"]["E0"]["p"]["value"] == pytest.approx(0.0)
    everything_failed = finals.copy()
    everything_failed[0] = np.nan
    ratio = _ratio(_summary(everything_failed, zero), "E0", "a")
    assert ratio["value"] == 0.0  # all at the untrained policy's return: normalised 0, never dropped


def test_a_crash_never_scores_above_a_run_that_ended_badly():
    finals = np.stack([np.full((1, 1, 6), np.nan), np.full((1, 1, 6), -50.0), np.full((1, 1, 6), 100.0)])
    results = _summary(finals, labels=("crashes", "bad", "ppo"))
    crashes, bad = (_ratio(results, "E0", label)["value"] for label in ("crashes", "bad"))
    assert bad == pytest.approx(-0.5) and crashes == pytest.approx(bad)  # scored as the lowest finished run
    assert results["returns"]["E0"]["p"]["crashes"]["mean"] == -50.0


def test_a_grid_does_not_narrow_the_intervals_of_the_statistics_other_than_the_tuned_rows():
    rng = np.random.default_rng(3)
    one_point = rng.normal(50, 10, (2, 1, 1, 6))
    grid = np.concatenate([one_point, rng.normal(50, 10, (2, 1, 1, 6))], axis=2)
    alone, with_grid = _summary(one_point), _summary(grid, points=("p", "q"))
    assert "tuned" in with_grid  # the tuned rows are resampled within halves, the rest as without a grid
    assert with_grid["returns"]["E0"]["p"]["a"]["mean_ci"] == alone["returns"]["E0"]["p"]["a"]["mean_ci"]
    assert with_grid["probability_beats_ppo"]["a"]["E0"]["p"] == alone["probability_beats_ppo"]["a"]["E0"]["p"]


def test_grid_points_are_named_apart_whenever_their_values_differ():
    from discover.training.grid import parse_grid

    points = parse_grid(["lr=0.001,0.0010000001", "update_epochs=1,2"], [])
    assert len({p.name for p in points}) == 4 and points[0].name == "lr=0.001, update_epochs=1"
    assert points[2].settings == ("lr=0.0010000001", "update_epochs=1")


def test_an_env_where_ppo_is_not_above_untrained_is_left_out_for_every_label():
    rng = np.random.default_rng(0)
    finals = rng.normal(50, 5, (2, 2, 1, 8))
    finals[1, 1] = rng.normal(-10, 5, 8)  # PPO below the untrained policy (0) on E1
    finals[0, 1] = rng.normal(40, 5, 8)  # a drift far above PPO there: no score -7.6 for it
    results = _summary(finals)
    assert list(results["excluded_envs"]) == ["E1"] and "no PPO run ended above" in results["excluded_envs"]["E1"]
    assert results["ratio_to_ppo"]["all envs"]["envs"] == ["E0"] and "E1" not in results["ratio_to_ppo"]
    assert _ratio(results, "all envs", "a")["value"] == pytest.approx(_ratio(results, "E0", "a")["value"])
    within_noise = finals.copy()
    within_noise[1, 1] = rng.normal(1.0, 5, 8)  # above 0 but within 3 standard errors
    assert "margin" in _summary(within_noise)["excluded_envs"]["E1"]


def test_tuned_rows_choose_on_one_half_and_score_on_the_other():
    # Point "lucky" looks best for `a` on seeds 0-3 only; its seeds 4-7 are poor.
    seeds = 8
    finals = np.full((2, 1, 2, seeds), 10.0)
    finals[0, 0, 0, :4], finals[0, 0, 0, 4:] = 100.0, 1.0
    finals[0, 0, 1] = 20.0
    results = _summary(finals, points=("lucky", "steady"))
    tuned = results["tuned"]
    assert set(tuned["choose_seeds"]).isdisjoint(tuned["score_seeds"])
    assert sorted(tuned["choose_seeds"] + tuned["score_seeds"]) == list(range(seeds))
    assert tuned["chosen"]["a"] == {"E0": "lucky"}
    # Scored on seeds 4-7: 1.0 against PPO's 10.0, not the 100.0 it was chosen by.
    assert tuned["ratio_to_ppo_tuned"]["all envs"]["a"]["value"] == pytest.approx(0.1)


def test_fewer_than_five_seeds_give_numbers_without_cis_and_say_why():
    finals = np.random.default_rng(0).normal(50, 5, (2, 1, 1, 4))
    results = _summary(finals)
    assert "4 seeds" in results["ci_note"]
    assert _ratio(results, "E0", "a")["value"] is not None and _ratio(results, "E0", "a")["ci"] == [None, None]
    assert results["returns"]["E0"]["p"]["a"]["mean_ci"] == [None, None]
    assert _summary(np.concatenate([finals, finals], -1))["ci_note"] is None
    meta = {"seeds": 4, "settings": [], "created": "now", "training": {"a": None, "ppo": None},
            "baselines": ["ppo"], "sources": {"a": "zoo:a", "ppo": "zoo:ppo"}, "grid": {"specs": []}}
    report = markdown_report("t", meta, results, ["a", "ppo"], ["E0"], {})
    assert "**No confidence intervals**: 4 seeds per label and env" in report


def test_no_env_left_prints_no_ratio():
    finals = np.random.default_rng(0).normal(50, 5, (2, 1, 1, 6))
    results = _summary(finals, zero=np.array([[np.nan]]))
    assert results["ratio_to_ppo"] == {} and "not measured" in results["excluded_envs"]["E0"]
    meta = {"seeds": 6, "settings": [], "created": "now", "training": {"a": None, "ppo": None},
            "baselines": ["ppo"], "sources": {"a": "zoo:a", "ppo": "zoo:ppo"}, "grid": {"specs": []}}
    report = markdown_report("t", meta, results, ["a", "ppo"], ["E0"], {})
    assert "No env is left, so there is no ratio to PPO." in report and "E0 not measured" in report
