"""The `atoms` drift family: valid for every weight, exactly its start at init, a formula that
is the drift, and drift files that refuse atoms they do not know."""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import discover
from discover.cli.main import main
from discover.files.drift_file import save_drift
from discover.theorem.axioms import check_axioms
from discover.theorem.config import VerifyConfig
from inner_loop import drifts
from inner_loop.errors import ConfigError
from inner_loop.expression import compile_expression
from test_drift_file import _rewrite

# Ratios over the whole clipped domain, advantages up to ADVANTAGE_MAX, both signs and 0.
_LOG_R = np.linspace(-drifts.LOG_RATIO_CLIP, drifts.LOG_RATIO_CLIP, 401)
_ADV = np.concatenate([np.linspace(-50, 50, 101), [0.0, -drifts.ADVANTAGE_MAX, drifts.ADVANTAGE_MAX, 1e-7, -1e-7]])
RATIO, ADVANTAGE = (jnp.asarray(x, jnp.float32) for x in np.meshgrid(np.exp(_LOG_R), _ADV))
STARTS = {"ppo": "ppo", "dpo": "dpo", "none": "zero"}


@pytest.mark.parametrize("time_aware", [False, True])
@pytest.mark.parametrize("start", list(STARTS))
def test_at_init_the_drift_is_exactly_its_start(start, time_aware):
    drift = drifts.get("atoms", start=start, time_aware=time_aware)
    params = drift.init(jax.random.PRNGKey(3))
    for progress in (0.0, 0.7):
        got = drift(params, RATIO, ADVANTAGE, progress)
        want = drifts.get(STARTS[start])({}, RATIO, ADVANTAGE, progress)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_the_library_sizes_and_the_start_atoms():
    assert len(drifts.get("atoms").atoms) == 52
    assert len(drifts.get("atoms", time_aware=True).atoms) == 156
    assert drifts.get("atoms").formula(drifts.get("atoms").init(None)) == "relu((r - clip(r, 0.8, 1.2))*A)"
    assert drifts.get("atoms", start="none").formula({"theta": jnp.zeros(52)}) == "0"


@pytest.mark.parametrize("time_aware", [False, True])
@pytest.mark.parametrize("scale", [1e-3, 1e-1, 1.0, 10.0, 1e3])
def test_the_axioms_hold_for_random_weights_at_every_scale(scale, time_aware):
    drift = drifts.get("atoms", start="dpo", time_aware=time_aware)
    theta = scale * jax.random.normal(jax.random.PRNGKey(int(scale * 1000) + time_aware), (len(drift.atoms),))
    loaded = discover.LoadedDrift(drift, {"theta": theta}, {})
    result = check_axioms(loaded, VerifyConfig(axiom_random_points=2048))
    assert result.passed, result.failures
    weights = np.asarray(drift.weights({"theta": theta}))
    assert np.all(weights >= 0) and 0 < np.count_nonzero(weights) < len(weights)


def test_weights_are_non_negative_and_zero_below_the_start():
    drift = drifts.get("atoms", start="ppo")
    theta = jnp.full(52, -0.5)
    weights = np.asarray(drift.weights({"theta": theta}))
    start = np.asarray(drift.start_weights)
    assert start.sum() == 1 and weights[start == 1] == pytest.approx(0.5)
    assert np.all(weights[start == 0] == 0)


def test_the_formula_is_the_drift():
    drift = drifts.get("atoms", start="dpo", time_aware=True)
    theta = np.zeros(len(drift.atoms), np.float32)
    theta[[0, 9, 60, 150]] = [0.5, 0.25, 2.0, 0.125]  # weights that print exactly
    params = {"theta": jnp.asarray(theta)}
    text = drift.formula(params)
    assert text.count(" + ") == 5  # the four above and DPO's two pieces
    progress = jnp.full_like(RATIO, 0.3)
    np.testing.assert_allclose(np.asarray(compile_expression(text)(RATIO, ADVANTAGE, progress)),
                               np.asarray(drift(params, RATIO, ADVANTAGE, progress)), rtol=1e-6, atol=1e-6)


def test_a_bad_start_is_one_line():
    with pytest.raises(ConfigError, match=r"start='clip' is not allowed for 'atoms'; choose none, ppo, dpo"):
        drifts.get("atoms", start="clip")
    with pytest.raises(ConfigError, match="time_aware"):
        drifts.get("atoms", time_aware="yes")


@pytest.fixture
def atoms_file(tmp_path):
    drift = drifts.get("atoms", start="ppo")
    theta = np.zeros(52, np.float32)
    theta[3] = 0.5
    path = str(tmp_path / "atoms.drift.npz")
    save_drift(path, drift, {"theta": jnp.asarray(theta)}, {"training_envs": ["CartPole-v1"]})
    return path, drift.formula({"theta": jnp.asarray(theta)})


def test_a_drift_file_keeps_the_weights_the_atoms_and_the_formula(atoms_file, capsys):
    path, formula = atoms_file
    loaded = discover.load_drift(path)
    assert loaded.metadata["formula"] == formula
    assert loaded.metadata["features"] == [a.text for a in drifts.get("atoms").atoms]
    assert float(loaded(1.5, 2.0)) == pytest.approx(float(compile_expression(formula)(1.5, 2.0)), rel=1e-6)
    assert main(["inspect", path, "--png", path + ".png"]) == 0
    assert "formula" in capsys.readouterr().out


def test_a_file_whose_atoms_do_not_match_is_one_line_exit_2(atoms_file, tmp_path, capsys):
    path, _ = atoms_file
    renamed = _rewrite(path, tmp_path / "renamed.npz", lambda m: m["features"].__setitem__(3, "(r - 1)**4"))
    fewer = _rewrite(path, tmp_path / "fewer.npz", lambda m: m.update(features=m["features"][:40]))
    weights = _rewrite(path, tmp_path / "weights.npz", change_arrays=lambda a: a.update(theta=np.zeros(40, np.float32)))
    for bad, fragment in ((renamed, "atom 3 is '(r - 1)**4'; this version's atom 3 is"),
                          (fewer, "lists 40 atoms; an atoms drift with its options has 52"),
                          (weights, "array 'theta' has shape [40], expected [52]")):
        with pytest.raises(ConfigError, match=re.escape(fragment)):
            discover.load_drift(bad)
        assert main(["verify", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and fragment in err


@pytest.mark.slow
def test_atoms_can_be_evolved_and_only_the_families_valid_for_every_parameter(tmp_path, capsys):
    from sweep_helpers import TINY, read_metrics

    settings = ["generations=2", "drift=atoms", "drift.start=dpo", *TINY]
    args = ["sweep", "--name", "atoms", "--runs-dir", str(tmp_path), "--wandb", "disabled"]
    assert main(args + [x for s in settings for x in ("--set", s)]) == 0
    rows = read_metrics(tmp_path / "atoms")
    formula = rows[-1]["mean_formula"]
    loaded = discover.load_drift(str(tmp_path / "atoms" / "drifts" / "gen_000002_mean.drift.npz"))
    assert loaded.metadata["formula"] == formula and "tanh" in formula  # DPO's pieces, from the start
    assert "mean drift: " in capsys.readouterr().err  # the sweep console writes to stderr
    assert main(args[:2] + ["ppo"] + args[3:] + ["--set", "drift=ppo"]) == 2
    assert "cannot be evolved; allowed: lpo, ta_lpo, atoms" in capsys.readouterr().err
    assert not (tmp_path / "ppo").exists()
    json.dumps(rows)  # the rows stay plain JSON
