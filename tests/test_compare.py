"""`discover compare` on a tiny config, and the statistics behind it."""

import json
import os
import re
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from discover.report import stats
from discover.cli.main import main
from discover.files.drift_file import save_drift
from inner_loop import drifts

TINY = ["total_timesteps=512", "num_envs=4", "num_steps=32", "update_epochs=1", "num_minibatches=2"]


def test_iqm_and_bootstrap_cis_on_known_cases():
    assert stats.iqm(np.arange(8.0)) == pytest.approx(np.mean([2, 3, 4, 5]))
    assert stats.bootstrap_ci(np.full(10, 3.0), stats.statistic("mean")) == (3.0, 3.0)
    rng = np.random.default_rng(0)
    x = rng.normal(10.0, 2.0, 400)
    lo, hi = stats.bootstrap_ci(x, stats.statistic("mean"), resamples=4000, seed=1)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)  # the normal-theory interval
    assert lo == pytest.approx(x.mean() - half, abs=0.05) and hi == pytest.approx(x.mean() + half, abs=0.05)
    # Stratified: resampling within strata keeps each stratum's size, so with constant strata
    # the pooled mean cannot move.
    assert stats.stratified_bootstrap_ci([np.full(5, 1.0), np.full(3, 2.0)],
                                         stats.statistic("mean")) == pytest.approx((1.375, 1.375))
    assert stats.probability_of_improvement([2, 3], [1, 1]) == 1.0
    assert stats.probability_of_improvement([1, 1], [1, 1]) == 0.5
    assert stats.probability_of_improvement([0, 2], [1, 1]) == 0.5


@pytest.mark.slow
def test_compare_report_has_every_section_and_matches_results_json(tmp_path, capsys):
    drift_path = tmp_path / "learned.drift.npz"
    drift = drifts.get("lpo", hidden_size=4, init_scale=0.5)
    import jax

    save_drift(str(drift_path), drift, drift.init(jax.random.PRNGKey(0)), {"training_envs": ["CartPole-v1"]})
    out = tmp_path / "reports" / "tiny"
    argv = ["compare", str(drift_path), "--envs", "CartPole-v1,Catch-bsuite", "--seeds", "3",
            "--baselines", "ppo,trpo", "-o", str(out)] + [x for s in TINY for x in ("--set", s)]
    argv += ["--set", "inner.Catch-bsuite.ent_coef=0.02"]  # one env's setting, as in sweep
    assert main(argv) == 0
    assert sorted(os.listdir(out)) == ["curves.png", "final_returns.png", "landscapes.png", "report.html",
                                       "report.md", "results.json"]
    report = (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    for section in ("## Final return per environment", "### CartPole-v1", "### Catch-bsuite",
                    "## Probability of beating PPO", "## PPO-normalised aggregate", "## Figures", "## Drifts"):
        assert section in report
    # Held-out marking: the learned drift trained on CartPole only.
    assert results["per_env"]["Catch-bsuite"]["learned"]["held_out"] is True
    assert results["per_env"]["CartPole-v1"]["learned"]["held_out"] is False
    assert re.search(r"\| learned \|[^\n]*\| held out \|", report.split("### Catch-bsuite")[1])
    # Every number in the tables is in results.json.
    for env in ("CartPole-v1", "Catch-bsuite"):
        for label in ("learned", "ppo", "trpo"):
            row = results["per_env"][env][label]
            finals = [v for v in row["final_returns"] if v is not None]
            assert row["mean"] == pytest.approx(np.mean(finals))
            assert row["median"] == pytest.approx(np.median(finals))
            assert row["mean_ci"][0] <= row["mean"] <= row["mean_ci"][1]
            cell = f"{row['mean']:.1f}" if abs(row["mean"]) >= 10 else f"{row['mean']:.3f}"
            assert cell in report.split(f"### {env}")[1].split("###")[0]
    # The aggregate from the raw returns (PPO's own score is 1 for any data, so it shows nothing).
    pooled = np.concatenate([
        (np.asarray([v for v in results["per_env"][e]["learned"]["final_returns"] if v is not None])
         - results["untrained_return"][e]) / (results["per_env"][e]["ppo"]["mean"] - results["untrained_return"][e])
        for e in ("CartPole-v1", "Catch-bsuite")])
    assert results["aggregate"]["learned"]["mean"] == pytest.approx(pooled.mean())
    held_out = results["aggregate_groups"]["held out by learned"]
    assert held_out["envs"] == ["Catch-bsuite"] and results["aggregate_groups"]["training by learned"]["envs"] == [
        "CartPole-v1"]
    catch = results["per_env"]["Catch-bsuite"]
    scores = (np.asarray(catch["learned"]["final_returns"]) - results["untrained_return"]["Catch-bsuite"]) / (
        catch["ppo"]["mean"] - results["untrained_return"]["Catch-bsuite"])
    assert held_out["by_drift"]["learned"]["mean"] == pytest.approx(scores.mean())
    assert "### Envs held out by learned: Catch-bsuite" in report
    p = results["probability_beats_ppo"]["learned"]["CartPole-v1"]["p"]
    assert 0.0 <= p <= 1.0 and len(results["curves"]["ppo|CartPole-v1"]) == 3
    assert results["configs"]["Catch-bsuite"]["ent_coef"] == 0.02 and results["configs"]["CartPole-v1"]["ent_coef"] == 0.01
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "http" not in page.replace("charset", "")
    # trpo, as in train: the zero drift in a KL ball, with its CartPole-v1 critic lr; the --set pairs still apply.
    trpo = results["drift_configs"]
    assert sorted(trpo) == ["trpo|CartPole-v1", "trpo|Catch-bsuite"] and results["baselines"] == ["ppo", "trpo"]
    assert trpo["trpo|CartPole-v1"]["neighbourhood"] == "kl_ball" and trpo["trpo|CartPole-v1"]["lr"] == 1e-3
    assert trpo["trpo|Catch-bsuite"]["ent_coef"] == 0.02 and trpo["trpo|Catch-bsuite"]["total_timesteps"] == 512


def test_compare_bad_input_is_one_line(tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    for argv, fragment in [
        (["compare", "nosuchdrift", "-o", str(tmp_path / "r")], "unknown drift 'nosuchdrift'"),
        (["compare", "ppo", "--envs", "Pong-v9", "-o", str(tmp_path / "r")], "Pong-v9"),
        (["compare", "ppo", "--seeds", "1", "-o", str(tmp_path / "r")], "--seeds 1 is not allowed"),
        (["compare", str(tmp_path / "missing.drift.npz"), "-o", str(tmp_path / "r")], "does not exist"),
        (["compare", "ppo", "-o", str(tmp_path / "full")], "exists and is not empty"),
        (["compare", "ppo", "--seeds", "2", "-o", str(tmp_path / "full" / "x")], "is an existing file"),
        (["compare", "ppo", "--set", "drift.eps=0.1", "-o", str(tmp_path / "r")], "drift.<option> is not allowed"),
        (["compare", "ppo", "--set", "inner.Acrobot-v1.lr=0.1", "-o", str(tmp_path / "r")],
         "'Acrobot-v1' is not one of --envs (CartPole-v1)"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert fragment in err and "\n" not in err, err
    assert not (tmp_path / "r").exists()


def test_failed_runs_are_reported_not_dropped():
    from discover.report.markdown import markdown_report
    from discover.report.summary import summarize

    runs = {("learned", "E"): {"final_return": np.array([np.nan, 5.0, 7.0])},
            ("broken", "E"): {"final_return": np.array([np.nan, np.nan, np.nan])},
            ("ppo", "E"): {"final_return": np.array([4.0, 6.0, 8.0])}}
    labels = ["learned", "broken", "ppo"]
    results = summarize(runs, labels, ["E"], {"learned": ["E"], "broken": None, "ppo": None}, seed=0)
    assert results["per_env"]["E"]["learned"]["failed_seeds"] == 1
    assert results["per_env"]["E"]["learned"]["mean"] == pytest.approx(6.0)
    assert results["per_env"]["E"]["broken"]["mean"] is None and results["per_env"]["E"]["broken"]["failed_seeds"] == 3
    assert results["probability_beats_ppo"]["broken"]["E"]["p"] is None
    meta = {"seeds": 3, "settings": [], "created": "now", "training": {"learned": ["E"], "broken": None, "ppo": None},
            "baselines": ["broken", "ppo"], "sources": {k: k for k in labels}}
    report = markdown_report("t", meta, results, labels, ["E"], {})
    assert "| broken | failed | failed | failed | 3 | baseline |" in report
    assert "| learned | 6.000 [" in report and "| 1 | training |" in report


def test_ppo_normalised_scores_keep_their_order_on_negative_returns():
    from discover.report.summary import summarize

    runs = {("worse", "Acro"): {"final_return": np.array([-300.0, -300.0])},
            ("ppo", "Acro"): {"final_return": np.array([-100.0, -100.0])}}
    results = summarize(runs, ["worse", "ppo"], ["Acro"], {"worse": None, "ppo": None}, seed=0,
                        untrained={"Acro": -500.0})
    assert results["aggregate"]["worse"]["mean"] == pytest.approx(0.5)  # (-300 + 500) / (-100 + 500)


def test_unmeasured_untrained_return_is_never_a_number_and_a_zoo_drift_under_test_is_no_baseline(
        tmp_path, monkeypatch, capsys):
    # Training is faked (this is about the report): every untrained (lr ~0) CartPole seed is
    # NaN, as when no episode finishes, so its PPO-normalised zero point is unknown.
    def fake_train_seeds(config, drift, params, num_seeds, key, **kwargs):
        if config.lr < 1e-9 and config.env_id == "CartPole-v1":
            final = np.full(num_seeds, np.nan)
        else:
            final = np.arange(num_seeds, dtype=np.float64) + (10.0 if drift.name == "ppo" else 4.0)
            final -= 3.0 * (config.lr < 1e-9)
        return SimpleNamespace(final_return=final, curve=np.tile(final[:, None], (1, config.num_updates)))

    for where in ("discover.cli.compare", "discover.training.references"):  # every importer of it
        monkeypatch.setattr(f"{where}.train_seeds", fake_train_seeds)
    out = tmp_path / "r"
    argv = ["compare", "zero", "--baselines", "ppo", "--envs", "CartPole-v1,Catch-bsuite", "--seeds", "2",
            "-o", str(out)] + [x for s in TINY for x in ("--set", s)]
    assert main(argv) == 0
    report = (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert results["untrained_return"] == {"CartPole-v1": None, "Catch-bsuite": pytest.approx(7.5)}
    assert results["aggregate_excluded_envs"] == {"CartPole-v1": "untrained return not measured"}
    assert "CartPole-v1 not measured" in report and "CartPole-v1 0.000" not in report
    assert "Left out of the aggregate (no zero or one point): CartPole-v1 (untrained return not measured)" in report
    assert results["aggregate"]["zero"]["mean"] == pytest.approx(-1.0)  # (4.5 - 7.5) / (10.5 - 7.5): Catch alone
    # zero is the drift under test (a zoo drift, not trained on any env); ppo is the baseline.
    assert results["baselines"] == ["ppo"]
    for env in ("CartPole-v1", "Catch-bsuite"):
        table = report.split(f"### {env}")[1].split("###")[0]
        assert re.search(r"\| zero \|[^\n]*\| zoo drift \|", table) and re.search(r"\| ppo \|[^\n]*\| baseline \|", table)


def test_no_env_left_for_the_aggregate_prints_no_score():
    from discover.report.markdown import markdown_report
    from discover.report.summary import summarize

    runs = {("zero", "E"): {"final_return": np.array([1.0, 2.0])}, ("ppo", "E"): {"final_return": np.array([3.0, 4.0])}}
    results = summarize(runs, ["zero", "ppo"], ["E"], {"zero": None, "ppo": None}, seed=0, untrained={"E": None})
    assert results["aggregate"]["zero"]["mean"] is None and results["aggregate"]["zero"]["mean_ci"] == [None, None]
    meta = {"seeds": 2, "settings": [], "created": "now", "training": {"zero": None, "ppo": None},
            "baselines": ["ppo"], "sources": {"zero": "zoo:zero", "ppo": "zoo:ppo"}}
    report = markdown_report("t", meta, results, ["zero", "ppo"], ["E"], {})
    aggregate = report.split("## PPO-normalised aggregate")[1]
    assert "E not measured" in aggregate and "No env is left, so there is no PPO-normalised score." in aggregate
    assert "| drift | mean | IQM |" not in aggregate


def test_learning_curve_table_does_not_warn_on_updates_without_episodes():
    # `discover train` printed "RuntimeWarning: Mean of empty slice" among its tables when an
    # update had no finished episode in any seed.
    from rich.console import Console

    from discover.cli.tables import curve_table

    curve = np.array([[np.nan, 1.0, np.nan], [np.nan, 3.0, np.nan]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = curve_table(curve, 128, rows=3)
    console = Console(width=80, record=True)
    console.print(table)
    text = console.export_text()
    assert "2.00" in text and text.count(" - ") >= 2


def test_html_report_renders_headings_tables_escaped_text_and_inlines_the_pngs(tmp_path):
    import base64
    import html.parser

    from discover.report.markdown import html_report

    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))  # any bytes: the page must carry them exactly
    (tmp_path / "fig.png").write_bytes(png)
    markdown = ("# Drift comparison: a<b\n\nIQM & mean of <final> return.\n\n## Table\n\n"
                "| drift | IQM |\n|---|---|\n| ppo | 1.000 [0.9, 1.1] |\n| lpo<x> | 0.5 |\n\n"
                "### A figure\n\n![curves & bands](fig.png)\n")
    page = html_report(markdown, str(tmp_path))

    class Collect(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.text, self.images = [], [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            if tag == "img":
                self.images.append(dict(attrs))

        def handle_data(self, data):
            self.text.append(data)

    parsed = Collect()
    parsed.feed(page)
    assert page.startswith("<!DOCTYPE html>")
    assert [t for t in parsed.tags if t in ("h1", "h2", "h3", "table", "th", "td", "img", "p")] == \
        ["h1", "p", "h2", "table", "th", "th", "td", "td", "td", "td", "h3", "img"]
    text = "".join(parsed.text)
    assert "Drift comparison: a<b" in text and "IQM & mean of <final> return." in text and "lpo<x>" in text
    assert "<final>" not in page and "a<b" not in page  # escaped, not markup
    (image,) = parsed.images
    assert image["alt"] == "curves & bands"
    assert base64.b64decode(image["src"].removeprefix("data:image/png;base64,")) == png
