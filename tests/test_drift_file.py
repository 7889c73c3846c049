"""Drift files: round trip, every bad-file case, and a loaded drift in a hand-written PPO loss."""

import io
import json
import os
import re
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import discover
from discover.cli.main import main
from discover.files.drift_file import FORMAT_VERSION, METADATA_KEY, save_drift
from discover.theorem.axioms import check_axioms
from inner_loop import drifts
from inner_loop.errors import ConfigError


@pytest.fixture
def lpo_file(tmp_path):
    drift = drifts.get("lpo", hidden_size=8, init_scale=0.7)
    params = drift.init(jax.random.PRNGKey(4))
    path = str(tmp_path / "lpo.drift.npz")
    save_drift(path, drift, params, {"generation": 3, "fitness": 0.9})
    return path, drift, params


def test_round_trip_gives_identical_values_under_jit_grad_and_vmap(lpo_file):
    path, drift, params = lpo_file
    loaded = discover.load_drift(path)
    ratio = jnp.exp(jnp.linspace(-2, 2, 33))
    adv = jnp.linspace(-3, 3, 33)
    np.testing.assert_array_equal(loaded(ratio, adv, 0.5), drift(params, ratio, adv, 0.5))
    np.testing.assert_array_equal(jax.jit(loaded)(ratio, adv),
                                  jax.jit(lambda r, a: drift(params, r, a))(ratio, adv))
    grad = jax.vmap(jax.grad(lambda r, a: loaded(r, a)))(ratio, adv)
    np.testing.assert_array_equal(grad, jax.vmap(jax.grad(lambda r, a: drift(params, r, a)))(ratio, adv))
    assert loaded.metadata["format_version"] == FORMAT_VERSION
    assert loaded.metadata["provenance"]["generation"] == 3 and check_axioms(loaded).passed
    assert loaded.metadata["provenance"]["versions"]["jax"]


DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.mark.parametrize("name", ["lpo", "ta_lpo"])
def test_format_1_files_load_as_the_family_they_were_written_with(name):
    """tests/data/*_format1.drift.npz were written by the format-1 code (commit 4428296,
    `save_drift` of `drifts.get(name, hidden_size=8, init_scale=0.5)`, PRNGKey(5))."""
    loaded = discover.load_drift(os.path.join(DATA, f"{name}_format1.drift.npz"))
    assert loaded.metadata["format_version"] == 1 and loaded.metadata["parameterisation"] == name
    assert loaded.drift.name == f"{name}_v1" and loaded.drift.options()["hidden_size"] == 8
    if name == "lpo":
        np.testing.assert_allclose(float(loaded(1.5, 2.0)), 0.7308060526847839, rtol=1e-6)  # printed then
    v1 = drifts.get(f"{name}_v1", hidden_size=8, init_scale=0.5)
    written = v1.init(jax.random.PRNGKey(5))
    # The arrays written then, up to the last bit of an init compiled at another XLA optimisation level.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), loaded.params, written)
    ratio, adv = jnp.exp(jnp.linspace(-2, 2, 17)), jnp.linspace(-3, 3, 17)
    np.testing.assert_allclose(loaded(ratio, adv, 0.3), v1(written, ratio, adv, 0.3), rtol=1e-6)
    assert check_axioms(loaded).passed


def test_loaded_drift_in_a_hand_written_ppo_loss(tmp_path):
    """The README's recipe: replace the clipped objective by `ratio * A - drift`."""
    path = str(tmp_path / "ppo.drift.npz")
    save_drift(path, drifts.get("ppo", eps=0.2), {})
    drift = discover.load_drift(path)

    def mirror_loss(logp, logp_old, adv, progress=0.0):
        ratio = jnp.exp(jnp.clip(logp - logp_old, -20.0, 20.0))
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        return -jnp.mean(ratio * adv - drift(ratio, adv, progress))

    def clipped_loss(logp, logp_old, adv):
        ratio = jnp.exp(logp - logp_old)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        return -jnp.mean(jnp.minimum(ratio * adv, jnp.clip(ratio, 0.8, 1.2) * adv))

    key1, key2, key3 = jax.random.split(jax.random.PRNGKey(0), 3)
    logp_old = jax.random.normal(key1, (256,)) - 1.0
    logp = logp_old + 0.4 * jax.random.normal(key2, (256,))
    adv = jax.random.normal(key3, (256,))
    np.testing.assert_allclose(mirror_loss(logp, logp_old, adv), clipped_loss(logp, logp_old, adv), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.grad(mirror_loss))(logp, logp_old, adv),
                               jax.grad(clipped_loss)(logp, logp_old, adv), rtol=1e-5, atol=1e-8)


def _rewrite(path, out, change_meta=None, change_arrays=None):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays.pop(METADATA_KEY)))
    if change_meta:
        change_meta(meta)
    if change_arrays:
        change_arrays(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **{METADATA_KEY: np.asarray(json.dumps(meta))}, **arrays)
    with open(out, "wb") as f:
        f.write(buffer.getvalue())
    return str(out)


def test_every_bad_file_is_a_one_line_error_naming_the_file(lpo_file, tmp_path, capsys):
    path, _, _ = lpo_file
    data = open(path, "rb").read()
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all" * 10)
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.zeros(3))
    future = _rewrite(path, tmp_path / "future.npz", lambda m: m.update(format_version=FORMAT_VERSION + 1))
    other = _rewrite(path, tmp_path / "other.npz", lambda m: m.update(format="something-else"))
    unknown = _rewrite(path, tmp_path / "unknown.npz", lambda m: m.update(parameterisation="mystery"))
    option = _rewrite(path, tmp_path / "option.npz", lambda m: m["options"].update(hidden_size=-2))
    shape = _rewrite(path, tmp_path / "shape.npz", change_arrays=lambda a: a.update(
        {"params/Dense_0/kernel": np.zeros((8, 5), np.float32)}))
    nan = _rewrite(path, tmp_path / "nan.npz", change_arrays=lambda a: a.update(
        {"params/Dense_0/kernel": np.full((12, 8), np.nan, np.float32)}))
    missing = _rewrite(path, tmp_path / "missing.npz", change_arrays=lambda a: a.pop("params/out/kernel"))
    npy = tmp_path / "npy.npz"  # np.save output renamed: one bare array, not an archive
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    # Metadata of the wrong JSON type: each crashed a reader (load_drift, inspect) or, for the
    # string of envs, was printed letter by letter.
    wrong_type = {name: _rewrite(path, tmp_path / f"{name}.npz", change) for name, change in {
        "options_list": lambda m: m.update(options=["x"]),
        "axioms_null": lambda m: m.update(axiom_check=None),
        "provenance_str": lambda m: m.update(provenance="x"),
        "envs_str": lambda m: m["provenance"].update(training_envs="CartPole-v1"),
        "fitness_str": lambda m: m["provenance"].update(fitness="high"),
        "option_null": lambda m: m["options"].update(init_scale=None),
    }.items()}

    invalid = str(tmp_path / "invalid.npz")
    save_drift(invalid, drifts.get("closed_form", expression="-(r - 1)**2"), {})
    cases = [
        (str(tmp_path / "nope.npz"), "does not exist"),
        (str(tmp_path), "is a folder"),
        (str(tmp_path / "garbage.npz"), "is corrupt or not a drift file"),
        (str(tmp_path / "truncated.npz"), "is corrupt or not a drift file"),
        (str(plain), "has no metadata"),
        (future, f"format version {FORMAT_VERSION + 1}, newer than this discover reads"),
        (other, "is not a mirror-learning-drift file"),
        (unknown, "unknown parameterisation 'mystery'"),
        (option, "hidden_size=-2"),
        (shape, "has shape [8, 5], expected [12, 8]"),
        (nan, "is not finite"),
        (missing, "missing ['params/out/kernel']"),
        (str(npy), "is a single .npy array, not a drift file"),
        (wrong_type["options_list"], "metadata field 'options' is an array ['x']; it must be an object"),
        (wrong_type["axioms_null"], "metadata field 'axiom_check' is null; it must be an object"),
        (wrong_type["provenance_str"], "metadata field 'provenance' is a string 'x'; it must be an object"),
        (wrong_type["envs_str"], "'provenance.training_envs' is a string 'CartPole-v1'; it must be an array of "
                                 "strings"),
        (wrong_type["fitness_str"], "'provenance.fitness' is a string 'high'; it must be a number"),
        (wrong_type["option_null"], "init_scale"),
        (invalid, "violates the mirror-learning axioms: axiom 'non-negative' fails"),
    ]
    for bad, fragment in cases:
        with pytest.raises(ConfigError) as err:
            discover.load_drift(bad)
        message = str(err.value)
        assert fragment in message and repr(bad) in message and "\n" not in message, (bad, message)
    # `discover inspect` reads the same metadata: one line and exit status 2, nothing printed.
    for bad in (str(npy), *wrong_type.values()):
        assert main(["inspect", bad]) == 2
        out, err = capsys.readouterr()
        assert not out and err.startswith("discover inspect: error: ") and err.count("\n") == 1, err


def test_no_half_written_file_when_writing_fails(tmp_path, lpo_file):
    _, drift, params = lpo_file
    target = tmp_path / "out.drift.npz"
    with pytest.raises(TypeError):
        save_drift(str(target), drift, params, {"not json": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lpo.drift.npz"]  # no out.*, no temp file
    assert zipfile.is_zipfile(lpo_file[0])


def test_saving_new_params_of_the_same_drift_does_not_compile_the_axiom_checks_again(tmp_path, caplog):
    # A sweep writes two drift files per checkpoint, each with an axiom check; compiling the
    # checks for every file cost about 1 s of each checkpoint.
    import logging

    drift = drifts.get("lpo", hidden_size=4)
    params = drift.init(jax.random.PRNGKey(0))
    save_drift(str(tmp_path / "a.drift.npz"), drift, params)
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        save_drift(str(tmp_path / "b.drift.npz"), drift, jax.tree.map(lambda x: x + 0.3, params))
    assert not [r for r in caplog.records if "Finished XLA compilation of jit(<lambda>)" in r.getMessage()]
    a, b = (discover.load_drift(str(tmp_path / f"{n}.drift.npz")) for n in "ab")
    assert check_axioms(a).passed and check_axioms(b).passed
    assert float(a(1.5, 1.0)) != float(b(1.5, 1.0))


@pytest.mark.parametrize("png_is,fragment", [("a folder", "is a folder; give a file name"),
                                              ("the drift file", "is the drift file itself")])
def test_inspect_checks_png_before_any_work(lpo_file, tmp_path, capsys, png_is, fragment):
    path, _, _ = lpo_file
    folder = tmp_path / "a_folder"
    folder.mkdir()
    png = str(folder) if png_is == "a folder" else path
    assert main(["inspect", path, "--png", png]) == 2
    out, err = capsys.readouterr()
    assert not out and fragment in err and repr(png) in err and err.count("\n") == 1, (out, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_folder", "lpo.drift.npz"]  # no PNG, no temp file
    assert not list(folder.iterdir())


def test_inspect_makes_the_png_folder(lpo_file, tmp_path):
    path, _, _ = lpo_file
    # A PNG in a folder that does not exist yet: the folder is made (as train --out does).
    png = tmp_path / "new" / "sub" / "landscape.png"
    assert main(["inspect", path, "--png", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")


def _fake_run(tmp_path, metrics_lines):
    """A sweep run folder with mean drift files of generations 1 and 2 and `metrics_lines`."""
    from discover.sweep.config import SweepConfig

    run = tmp_path / "run"
    (run / "drifts").mkdir(parents=True)
    (run / "references.json").write_text(json.dumps({"references": [{"ppo_reference_return": 100.0}]}))
    (run / "config.json").write_text(json.dumps({"name": "run", "wandb_run_id": "run-1",
                                                 "sweep": SweepConfig().to_dict()}))
    drift = drifts.get("lpo", hidden_size=4)
    for generation in (1, 2):
        save_drift(str(run / "drifts" / f"gen_{generation:06d}_mean.drift.npz"), drift,
                   drift.init(jax.random.PRNGKey(generation)), {"generation": generation})
    if metrics_lines is not None:
        (run / "metrics.jsonl").write_text("".join(metrics_lines))
    return str(run)


def test_export_best_tolerates_a_cut_metrics_line_and_names_a_missing_metrics_file(tmp_path, capsys):
    from discover.cli.export import choose_drift_file

    rows = [json.dumps({"generation": g, "mean_drift_fitness": f}) + "\n" for g, f in ((1, 0.5), (2, 0.2))]
    # kill -9 mid-write leaves a cut last line; like the sweep's resume, it (and all after) is dropped.
    run = _fake_run(tmp_path, rows + ['{"generation": 3, "fitn'])
    assert choose_drift_file(run, "best", "mean")[0] == 1
    cut_then_more = _fake_run(tmp_path / "b", rows[:1] + ['{"generation": 2, "me\n', rows[1]])
    assert choose_drift_file(cut_then_more, "best", "mean")[0] == 1  # generation 2's line is after the cut

    no_metrics = _fake_run(tmp_path / "c", None)
    out = tmp_path / "x.drift.npz"
    assert main(["export", no_metrics, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "has no metrics.jsonl" in err and repr(no_metrics) in err and "--generation last" in err
    assert err.count("\n") == 1 and not out.exists()
    assert choose_drift_file(no_metrics, "last", "mean")[0] == 2  # which needs no metrics


def test_the_discovered_transfer_drift_ships_with_the_package_under_its_name(tmp_path, capsys, monkeypatch):
    from discover.training.comparison import resolve_entries
    from discover.files.drift_file import drift_file_path, packaged_drifts

    assert "transfer-v1" in packaged_drifts()
    loaded = discover.load_drift("transfer-v1")
    provenance = loaded.metadata["provenance"]
    assert loaded.name == "lpo" and provenance["sweep"] == "transfer-v1"
    assert provenance["training_envs"] == ["CartPole-v1", "Pendulum-v1"]
    assert provenance["test_envs"] == ["Acrobot-v1", "Breakout-MinAtar"] and check_axioms(loaded).passed
    (entry,) = resolve_entries(["transfer-v1"], [])
    assert entry.label == "transfer-v1" and entry.training_envs == ["CartPole-v1", "Pendulum-v1"]
    monkeypatch.chdir(tmp_path)
    assert main(["inspect", "transfer-v1"]) == 0
    shown = capsys.readouterr().out
    assert "transfer-v1" in shown and "Acrobot-v1, Breakout-MinAtar" in shown and "docs/results/transfer" in shown
    (tmp_path / "transfer-v1").write_text("a local file of that name wins")
    assert drift_file_path("transfer-v1") == "transfer-v1"


# Formulas a drift file can carry (issue 23): each crashed, or loaded as valid. The file claims
# `axiom_check.passed: true`; the claim is never trusted.
LONG_CHAIN = "+".join(["r"] * 400)
HOSTILE_FORMULAS = [
    (f"({LONG_CHAIN})(1)", "call of 'r+r+r"),  # was RecursionError in ast.unparse
    (f"({LONG_CHAIN}, 1)", "Tuple ('(r+r+r"),  # the same, in a tuple
    ("0**-1*(r-1)**2", "the constant part '0**-1' is inf in float32"),  # was ZeroDivisionError
    ("(1e300)**2*(r-1)**2", "constant 1e300 is not finite in float32"),  # was OverflowError
    ("(r-1)**2*(1+(-1)**0.5)", "the constant part '(-1)**0.5' is nan"),  # was a complex drift
    ("(r-1)**2*(1-2*relu(r-2e6))", "axiom 'non-negative' fails: min d = -"),  # negative from r = 2e6
    ("(r-1)**2 - 5e-7", "axiom 'zero at identity' fails"),  # -5e-7 at r = 1 was within tolerance
    ("relu(A-20000)*abs(r-1)", "axiom 'zero slope at identity' fails"),  # a kink where |A| > 2e4
]
HOSTILE_IDS = ["long-call", "long-tuple", "zero-division", "overflow", "complex", "negative-at-1e7",
               "negative-offset", "kink-at-large-A"]


def hostile_file(tmp_path, expression):
    """A closed_form drift file holding `expression`, claiming it passed the axiom check."""
    valid = str(tmp_path / "valid.drift.npz")
    save_drift(valid, drifts.get("closed_form", expression="(r - 1)**2"), {})

    def claim(meta):
        meta["options"]["expression"] = meta["architecture"]["expression"] = expression
        assert meta["axiom_check"]["passed"] is True

    return _rewrite(valid, tmp_path / "hostile.drift.npz", claim)


@pytest.mark.parametrize("expression,fragment", HOSTILE_FORMULAS, ids=HOSTILE_IDS)
def test_a_hostile_formula_in_a_drift_file_is_one_line_from_load_drift(tmp_path, expression, fragment):
    path = hostile_file(tmp_path, expression)
    with pytest.raises(ConfigError) as err:
        discover.load_drift(path)
    message = str(err.value)
    assert fragment in message and repr(path) in message and "\n" not in message, message


@pytest.mark.parametrize("expression,fragment", HOSTILE_FORMULAS, ids=HOSTILE_IDS)
def test_a_hostile_formula_is_exit_2_or_a_failed_verdict_from_every_command(tmp_path, expression, fragment, capsys):
    """train and compare refuse before any work; inspect and verify load without the axiom gate,
    so a formula that does not parse is exit 2 there, and one that breaks an axiom is reported
    (exit 1: inspect shows 'axioms now: FAIL', verify FAILED)."""
    path = hostile_file(tmp_path, expression)
    breaks_axioms = fragment.startswith("axiom")
    tiny = ["--set", "total_timesteps=256", "--set", "num_envs=4", "--set", "num_steps=16"]
    commands = [["train", "--drift", path, "--env", "CartPole-v1", *tiny], ["compare", path, "-o", str(tmp_path / "r"), *tiny]]
    if not breaks_axioms:
        commands += [["inspect", path, "--png", str(tmp_path / "h.png")], ["verify", path]]
    for argv in commands:
        assert main(argv) == 2, argv
        out, err = capsys.readouterr()
        assert fragment in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "r").exists() and not (tmp_path / "h.png").exists()
    if breaks_axioms:
        assert main(["inspect", path, "--png", str(tmp_path / "h.png")]) == 1
        shown = capsys.readouterr().out
        assert re.search(r"axioms at write time\s*│\s*pass", shown) and re.search(r"axioms now\s*│\s*FAIL", shown)
        verify = ["verify", path, "--set", "num_mdps=2", "--set", "iterations=2", "--set", "inner_steps=2",
                  "--set", "inner_restarts=0", "--set", "axiom_random_points=64"]
        assert main(verify) == 1
        assert "FAILED" in capsys.readouterr().out
