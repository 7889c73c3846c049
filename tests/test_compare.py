"""`discover compare` on a tiny config, and the statistics behind it."""

import json
import os
import re
import warnings

import numpy as np
import pytest

from discover.report import paired
from discover.cli.main import main
from discover.files.drift_file import save_drift
from inner_loop import drifts

TINY = ["total_timesteps=512", "num_envs=4", "num_steps=32", "update_epochs=1", "num_minibatches=2"]


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
    for section in ("## Method", "## Ratio to PPO (PPO = 1)", "## Probability of beating PPO", "## Failed seeds",
                    "## Final return per environment", "### CartPole-v1", "### Catch-bsuite", "## Figures",
                    "## Drifts"):
        assert section in report
    assert results["schema_version"] == 2 and results["points"] == ["as set"] and "tuned" not in results
    tables = {env: results["returns"][env]["as set"] for env in ("CartPole-v1", "Catch-bsuite")}
    # Held-out marking: the learned drift trained on CartPole only.
    assert tables["Catch-bsuite"]["learned"]["held_out"] is True
    assert tables["CartPole-v1"]["learned"]["held_out"] is False
    assert re.search(r"\| learned \|[^\n]*\| held out \|", report.split("### Catch-bsuite")[1])
    # Every number in the tables is in results.json; failed seeds would be scored as the untrained policy.
    for env, table in tables.items():
        zero = results["untrained_return"][env]["as set"]
        for label in ("learned", "ppo", "trpo"):
            row = table[label]
            finals = [zero if v is None else v for v in row["final_returns"]]
            assert row["mean"] == pytest.approx(np.mean(finals)) and row["median"] == pytest.approx(np.median(finals))
            assert row["mean_ci"] == [None, None]  # 3 seeds: no CIs
            cell = f"{row['mean']:.1f}" if abs(row["mean"]) >= 10 else f"{row['mean']:.3f}"
            assert cell in report.split(f"### {env}")[1].split("###")[0]
    assert "**No confidence intervals**: 3 seeds per label and env" in report
    # The ratio to PPO from the raw returns: IQM of the pooled normalised scores over PPO's.
    kept = [e for e in ("CartPole-v1", "Catch-bsuite") if e not in results["excluded_envs"]]

    def scores(label):
        out = []
        for env in kept:
            zero = results["untrained_return"][env]["as set"]
            ppo = np.array([zero if v is None else v for v in tables[env]["ppo"]["final_returns"]])
            x = np.array([zero if v is None else v for v in tables[env][label]["final_returns"]])
            out.append((x - zero) / (ppo.mean() - zero))
        return np.concatenate(out)

    if kept:
        ratio = results["ratio_to_ppo"]["all envs"]["by_points"]["as set"]
        assert ratio["learned"]["value"] == pytest.approx(paired.iqm(scores("learned")) / paired.iqm(scores("ppo")))
        assert ratio["ppo"]["value"] == 1.0
    groups = results["ratio_to_ppo"]
    if "Catch-bsuite" in kept:
        assert groups["held-out envs of learned"]["envs"] == ["Catch-bsuite"]
        assert "| learned |" in report.split("## Ratio to PPO")[1]
    p = results["probability_beats_ppo"]["learned"]["CartPole-v1"]["as set"]["value"]
    assert 0.0 <= p <= 1.0 and len(results["curves"]["ppo|CartPole-v1|as set"]) == 3
    configs = results["configs"]
    assert configs["Catch-bsuite"]["as set"]["ent_coef"] == 0.02
    assert configs["CartPole-v1"]["as set"]["ent_coef"] == 0.01
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "http" not in page.replace("charset", "")
    # trpo, as in train: the zero drift in a KL ball, with its CartPole-v1 critic lr; the --set pairs still apply.
    trpo = results["drift_configs"]
    assert sorted(trpo) == ["trpo|CartPole-v1|as set", "trpo|Catch-bsuite|as set"]
    assert results["baselines"] == ["ppo", "trpo"]
    cartpole, catch = trpo["trpo|CartPole-v1|as set"], trpo["trpo|Catch-bsuite|as set"]
    assert cartpole["neighbourhood"] == "kl_ball" and cartpole["lr"] == 1e-3
    assert catch["ent_coef"] == 0.02 and catch["total_timesteps"] == 512


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
        (["compare", "ppo", "--set", "inner..lr=0.1", "-o", str(tmp_path / "r")], "the env id is missing"),
        (["compare", "ppo", "--grid", "foo=1,2", "-o", str(tmp_path / "r")],
         "--grid field 'foo' is not a numeric inner-loop setting; allowed: "),
        (["compare", "ppo", "--grid", "activation=1,2", "-o", str(tmp_path / "r")], "'activation' is not a numeric"),
        (["compare", "ppo", "--grid", "lr=", "-o", str(tmp_path / "r")], "--grid 'lr=' has an empty value"),
        (["compare", "ppo", "--grid", "lr=1e-3,,1e-2", "-o", str(tmp_path / "r")], "has an empty value"),
        (["compare", "ppo", "--grid", "lr", "-o", str(tmp_path / "r")], "is not of the form field=v1,v2"),
        (["compare", "ppo", "--grid", "lr=fast,slow", "-o", str(tmp_path / "r")], "lr='fast' is not a valid float"),
        (["compare", "ppo", "--grid", "update_epochs=1,2.5", "-o", str(tmp_path / "r")], "'2.5' is not a valid int"),
        (["compare", "ppo", "--grid", "lr=1e-3,-1e-2", "-o", str(tmp_path / "r")],
         "--grid lr=-0.01: lr=-0.01 is not allowed; it must be > 0"),
        (["compare", "ppo", "--grid", "lr=1e-3,1e-3", "-o", str(tmp_path / "r")], "repeats a value"),
        (["compare", "ppo", "--grid", "kl_delta=0.01,0.02", "-o", str(tmp_path / "r")],
         "--grid kl_delta: no drift of this comparison reads kl_delta"),
        (["compare", "ppo", "--grid", "lr=1e-3", "--grid", "lr=1e-2", "-o", str(tmp_path / "r")], "given twice"),
        (["compare", "ppo", "--grid", "lr=1e-3,1e-2", "--set", "lr=1e-2", "-o", str(tmp_path / "r")],
         "lr is given by both --grid and --set"),
        (["compare", "ppo", "--grid", "lr=1e-3,1e-2", "--set", "inner.CartPole-v1.lr=1e-2", "-o", str(tmp_path / "r")],
         "lr is given by both --grid and --set"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert fragment in err and "\n" not in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_a_grid_of_two_lrs_and_two_labels_runs_end_to_end_with_the_same_seeds_at_every_point(tmp_path):
    import jax

    from discover.training.resolver import resolve_drift
    from discover.training.seeds import train_seeds

    out = tmp_path / "grid"
    argv = ["compare", "zero", "--baselines", "ppo", "--envs", "CartPole-v1", "--seeds", "2", "--seed", "7",
            "--grid", "lr=1e-3,1e-2", "-o", str(out)] + [x for s in TINY for x in ("--set", s)]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    report = (out / "report.md").read_text()
    assert results["points"] == ["lr=0.001", "lr=0.01"] and results["grid"]["specs"] == ["lr=1e-3,1e-2"]
    assert [results["configs"]["CartPole-v1"][p]["lr"] for p in results["points"]] == [1e-3, 1e-2]
    assert "robustness.png" in os.listdir(out) and "### At lr=0.01" in report.split("## Probability of beating")[1]
    assert sorted(results["curves"]) == ["ppo|CartPole-v1|lr=0.001", "ppo|CartPole-v1|lr=0.01",
                                         "zero|CartPole-v1|lr=0.001", "zero|CartPole-v1|lr=0.01"]
    untrained = results["untrained_return"]["CartPole-v1"]
    assert untrained["lr=0.001"] == untrained["lr=0.01"]  # one untrained run serves every lr
    # The zero drift is the drift under test (a zoo drift), PPO the baseline.
    assert results["baselines"] == ["ppo"] and re.search(r"\| zero \| lr=0.01 \|[^\n]*\| zoo drift \|", report)
    # 512 steps teach PPO nothing beyond noise: CartPole cannot normalise, so no ratio and no tuned rows
    # (tests/test_paired_stats.py covers them); the report says so rather than print a flipped score.
    assert "CartPole-v1" in results["excluded_envs"] and "tuned" not in results
    assert "No env is left, so there is no ratio to PPO." in report
    # Each point's runs are those of a plain run at that lr with the compare's seed keys.
    config = resolve_drift("ppo").train_config("CartPole-v1", TINY + ["lr=1e-2"])
    ppo = resolve_drift("ppo")
    alone = train_seeds(config, ppo.drift, ppo.init_params(jax.random.PRNGKey(0)), 2,
                        jax.random.fold_in(jax.random.PRNGKey(7), 0)).final_return
    np.testing.assert_allclose(results["returns"]["CartPole-v1"]["lr=0.01"]["ppo"]["final_returns"], alone, rtol=1e-6)


def test_failed_runs_are_scored_in_the_tables_and_failed_only_without_a_zero_point():
    from discover.report.markdown import markdown_report
    from discover.report.summary import summarize

    finals = np.array([[[[np.nan, 5.0, 7.0]]], [[[np.nan, np.nan, np.nan]]], [[[4.0, 6.0, 8.0]]]])
    labels = ["learned", "broken", "ppo"]
    meta = {"seeds": 3, "settings": [], "created": "now", "training": {"learned": ["E"], "broken": None, "ppo": None},
            "baselines": ["broken", "ppo"], "sources": {k: k for k in labels}, "grid": {"specs": []}}
    # A failed run scores the lowest of the untrained return and every finished run's (here PPO's 4.0).
    for zero, broken_mean in ((1.0, "1.000"), (np.nan, "4.000"), (9.0, "4.000")):
        results = summarize(finals, np.array([[zero]]), labels, ["E"], ["as set"], meta["training"], seed=0)
        assert results["failed_seeds"] == {"learned": {"E": 1}, "broken": {"E": 3}, "ppo": {"E": 0}}
        report = markdown_report("t", meta, results, labels, ["E"], {})
        assert f"| broken | {broken_mean} | {broken_mean} | {broken_mean} | 3 | baseline |" in report
        assert "| broken | 3 |" in report.split("## Failed seeds")[1]
    nothing_finished = np.full_like(finals, np.nan)
    results = summarize(nothing_finished, np.array([[np.nan]]), labels, ["E"], ["as set"], meta["training"], seed=0)
    assert "| broken | failed | failed | failed | 3 | baseline |" in markdown_report("t", meta, results, labels,
                                                                                   ["E"], {})


def test_ratios_keep_their_order_on_negative_returns():
    from discover.report.summary import summarize

    finals = np.array([[[[-300.0] * 6]], [[[-100.0] * 6]]])
    results = summarize(finals, np.array([[-500.0]]), ["worse", "ppo"], ["Acro"], ["as set"],
                        {"worse": None, "ppo": None}, seed=0, zero_se=np.array([[1.0]]))
    assert results["ratio_to_ppo"]["Acro"]["by_points"]["as set"]["worse"]["value"] == pytest.approx(0.5)


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


@pytest.mark.slow
def test_the_report_shows_a_sweep_drifts_shrinkage_on_fresh_seeds(tmp_path):
    # A drift file that is PPO, with a validation score of 0.9 from a sweep: on this report's
    # seeds it trains exactly as the PPO baseline, so its score here is 1 exactly.
    path = tmp_path / "chosen.drift.npz"
    save_drift(str(path), drifts.get("atoms"), drifts.get("atoms").init(None),
               {"training_envs": ["CartPole-v1"], "which": "mean", "fitness": 0.9, "fitness_seeds_per_env": 16,
                "generation": 40})
    out = tmp_path / "report"
    argv = ["compare", str(path), "--envs", "CartPole-v1", "--seeds", "4", "--baselines", "ppo", "-o", str(out)]
    assert main(argv + [x for s in TINY for x in ("--set", s)]) == 0
    row = json.loads((out / "results.json").read_text())["shrinkage"]["chosen"]
    assert row["validation"] == 0.9 and row["fresh"] == pytest.approx(1.0) and row["difference"] == pytest.approx(0.1)
    assert row["seeds"] == 4 and row["envs"] == ["CartPole-v1"] and row["generation"] == 40
    assert "## Shrinkage on fresh seeds" in (out / "report.md").read_text()
    # Over a grid the normaliser pools the grid's points, not the sweep's: no shrinkage row.
    grid = tmp_path / "grid"
    argv = ["compare", str(path), "--envs", "CartPole-v1", "--seeds", "2", "--baselines", "ppo", "--grid",
            "lr=1e-3,1e-2", "-o", str(grid)]
    assert main(argv + [x for s in TINY for x in ("--set", s)]) == 0
    assert "shrinkage" not in json.loads((grid / "results.json").read_text())
