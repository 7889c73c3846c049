"""`discover.load_drift`, the public loader: zoo names with options, packaged names and files,
through the resolver every command uses, with the CLI's one-line errors; the public surface."""

import inspect
import pathlib
from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import discover
from discover.cli.main import main
from discover.files.drift_file import save_drift
from discover.training.resolver import resolve_drift
from inner_loop import drifts

RATIO = jnp.exp(jnp.linspace(-3.0, 3.0, 41))
ADVANTAGE = jnp.linspace(-4.0, 4.0, 41)


@pytest.mark.parametrize("name, options", [
    ("ppo", {}), ("ppo", {"eps": 0.1}), ("dpo", {"alpha": 3, "beta": 0.25}), ("kl", {"coef": 0.5}), ("zero", {}),
    ("closed_form", {"expression": "0.5*(r - 1)**2 + relu((r - clip(r, 0.8, 1.2))*A)"}),
])
def test_a_zoo_name_with_options_is_the_zoo_drift_with_those_options(name, options):
    loaded = discover.load_drift(name, **options)
    zoo = drifts.get(name, **{k: float(v) if isinstance(v, int) else v for k, v in options.items()})
    np.testing.assert_array_equal(loaded(RATIO, ADVANTAGE, 0.3), zoo({}, RATIO, ADVANTAGE, 0.3))
    assert loaded.metadata == {"parameterisation": name, "options": zoo.options()} and loaded.name == name


def test_ppo_at_another_eps_gives_the_clipped_loss_at_that_eps():
    loaded = discover.load_drift("ppo", eps=0.1)
    clipped = jnp.minimum(RATIO * ADVANTAGE, jnp.clip(RATIO, 0.9, 1.1) * ADVANTAGE)
    np.testing.assert_allclose(RATIO * ADVANTAGE - loaded(RATIO, ADVANTAGE), clipped, rtol=1e-6, atol=1e-6)


def test_a_neural_zoo_drift_is_drawn_by_the_key_and_starts_at_ppo():
    lpo = discover.load_drift("lpo", hidden_size=8)
    np.testing.assert_allclose(lpo(RATIO, ADVANTAGE), discover.load_drift("ppo")(RATIO, ADVANTAGE), atol=1e-6)
    a, b, a_again = (discover.load_drift("lpo", hidden_size=8, init_scale=0.5, key=jax.random.PRNGKey(k))
                     for k in (1, 2, 1))
    assert not np.array_equal(a(RATIO, ADVANTAGE), b(RATIO, ADVANTAGE))
    np.testing.assert_array_equal(a(RATIO, ADVANTAGE), a_again(RATIO, ADVANTAGE))


def test_files_and_packaged_names_load_as_every_command_resolves_them(tmp_path):
    path = tmp_path / "form.drift.npz"
    save_drift(str(path), drifts.get("closed_form", expression="(r - 1)**2 * abs(A)"), {})
    for spec in ("transfer-v1", str(path), path):
        loaded = discover.load_drift(spec)
        resolved = resolve_drift(str(spec))
        assert loaded.drift == resolved.drift and loaded.metadata == resolved.metadata
        for got, want in zip(jax.tree.leaves(loaded.params), jax.tree.leaves(resolved.params)):
            np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(discover.load_drift(path)(RATIO, ADVANTAGE), (RATIO - 1) ** 2 * jnp.abs(ADVANTAGE))


# Bad input from Python: one ConfigError line naming the value and what is allowed; the CLI
# says the same of the same mistake (exit 2).
PYTHON_ERRORS = [
    (("dpox",), {}, "unknown drift 'dpox'; allowed: zero, kl, ppo, dpo, lpo, ta_lpo, atoms, lpo_v1, ta_lpo_v1, transfer-v1, "
                    "or the path of a drift file, or closed_form with expression=FORMULA"),
    (("dpo",), {"gamma": 1.0}, "drift 'dpo' has no option 'gamma'; allowed: alpha, beta"),
    (("dpo",), {"alpha": "2"}, "drift 'dpo' option alpha='2' (str) is not allowed; it must be a number"),
    (("dpo",), {"alpha": True}, "drift 'dpo' option alpha=True (bool) is not allowed; it must be a number"),
    (("lpo",), {"hidden_size": 8.5},
     "drift 'lpo' option hidden_size=8.5 (float) is not allowed; it must be an integer"),
    (("lpo",), {"start": 1}, "drift 'lpo' option start=1 (int) is not allowed; it must be a string"),
    (("ppo",), {"eps": -0.1}, "drift option eps=-0.1 is not allowed for 'ppo'; it must be a finite number > 0"),
    (("trpo",), {}, "'trpo' is the zero drift inside a kl_ball neighbourhood"),
    (("transfer-v1",), {"eps": 0.1}, "options (eps) cannot change the drift stored in 'transfer-v1'"),
    (("closed_form",), {"expression": "r - 1"}, "closed_form expression 'r - 1' violates the mirror-learning axioms"),
    (("missing.drift.npz",), {}, "drift file 'missing.drift.npz' does not exist"),
    ((None,), {}, "drift None (NoneType) is not allowed; give a drift name or the path of a drift file"),
    ((["ppo"],), {}, "drift ['ppo'] (list) is not allowed"),
    (("lpo",), {"hidden_size": 10 ** 12}, "drift option hidden_size=1000000000000 is not allowed for 'lpo'"),
    (("lpo",), {"num_layers": 10 ** 6}, "drift option num_layers=1000000 is not allowed for 'lpo'"),
    (("dpo",), {"alpha": 1e39}, "drift option alpha=1e+39 is not allowed for 'dpo'"),  # inf in float32
    (("dpo",), {"alpha": 1e-45}, "drift option alpha=1e-45 is not allowed for 'dpo'"),  # 0 in float32
    (("ppo",), {"eps": 10 ** 400}, "drift option eps=inf is not allowed for 'ppo'"),
    (("lpo",), {"init_scale": 1e30}, "drift option init_scale=1e+30 is not allowed"),
    (("lpo",), {"key": 42}, "key=42 (int) is not allowed; give one PRNG key, such as jax.random.PRNGKey(0)"),
    (("ppo",), {"key": "x"}, "key='x' (str) is not allowed"),  # checked even where no key is used
    (("lpo",), {"key": np.zeros((2, 2), np.uint32)}, "key of shape (2, 2) and dtype uint32 is not allowed"),
    (("ppo",), {"check_axioms": "no"}, "check_axioms='no' is not allowed; it must be True or False"),
    (("/dev/zero",), {}, "drift file '/dev/zero' is not a regular file"),
    (("/tmp/a\0b.npz",), {}, "drift file '/tmp/a\\x00b.npz' cannot be read: embedded null byte"),
    (("/tmp/" + "x" * 300 + ".npz",), {}, "drift file '/tmp/xxx"),
]


ERROR_IDS = [f"{str(args[0])[:20]}-{'-'.join(options)}" for args, options, _ in PYTHON_ERRORS]


@pytest.mark.parametrize("args, options, message", PYTHON_ERRORS, ids=ERROR_IDS)
def test_bad_input_from_python_is_one_config_error_line(args, options, message):
    with pytest.raises(discover.ConfigError) as caught:
        discover.load_drift(*args, **options)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("argv, message", [
    (["verify", "dpox"], "unknown drift 'dpox'; allowed: zero, kl, ppo, dpo, lpo, ta_lpo, atoms, lpo_v1, ta_lpo_v1, "
                         "trpo, transfer-v1, or the path of a drift file, or closed_form with --set "
                         "drift.expression=FORMULA"),
    (["verify", "dpo", "--set", "drift.gamma=1"],
     "drift 'dpo' has no option 'gamma'; allowed: drift.alpha, drift.beta"),
    (["verify", "dpo", "--set", "drift.alpha=x"], "drift.alpha='x' is not a valid float"),
    (["verify", "transfer-v1", "--set", "drift.eps=0.1"], "--set drift.<option> cannot change the drift stored in"),
    (["verify", "trpo", "--set", "drift.eps=1"], "drift 'trpo' has no option 'eps'; allowed: none"),
    (["verify", "dpo", "--set", "drift.alpha=1e39"], "drift option alpha=1e+39 is not allowed for 'dpo'"),
    (["verify", "lpo", "--set", "drift.hidden_size=1e12"], "drift option hidden_size=1000000000000 is not allowed"),
])
def test_the_same_mistakes_on_the_command_line_are_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("discover verify: error: ") and message in err and "\n" not in err


def test_a_folder_or_file_named_like_a_drift_does_not_hide_it_and_a_path_means_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "transfer-v1").mkdir()  # a folder is not a drift file: the packaged drift loads
    assert discover.load_drift("transfer-v1").metadata["provenance"]["sweep"] == "transfer-v1"
    with pytest.raises(discover.ConfigError, match="drift file 'ppo' does not exist"):
        discover.load_drift(pathlib.Path("ppo"))  # a Path names a file, never the zoo


def test_a_loaded_drift_broadcasts_its_three_inputs_to_at_least_float32():
    shapes = [(4,), (4,), (2, 1)]
    for name in ("ppo", "ta_lpo", "zero", "closed_form"):
        options = {"expression": "(r - 1)**2 * (1 + p)"} if name == "closed_form" else {}
        drift = discover.load_drift(name, **options)
        out = drift(*(jnp.ones(shape) for shape in shapes))
        assert out.shape == (2, 4) and out.dtype == jnp.float32, name
        assert drift(2, -1).dtype == jnp.float32 and drift(jnp.ones(3, jnp.bfloat16), 1.0).dtype == jnp.float32


def test_the_public_surface_is_small_typed_and_documented():
    assert sorted(discover.__all__) == sorted(["load_drift", "LoadedDrift", "ConfigError", "configure_cpu",
                                               "LOG_RATIO_CLIP", "ADVANTAGE_MAX"])
    for name in ("load_drift", "LoadedDrift", "configure_cpu"):
        doc = inspect.getdoc(getattr(discover, name))
        assert doc and len(doc.splitlines()) > 5, name
    assert "drift(ratio, advantage, progress=0.0)" in inspect.getdoc(discover.LoadedDrift)
    signature = inspect.signature(discover.load_drift)
    assert signature.return_annotation in ("LoadedDrift", discover.LoadedDrift)
    assert all(p.annotation is not inspect.Parameter.empty for p in signature.parameters.values())
    for package in ("discover", "inner_loop", "outer_loop"):
        assert resources.files(package).joinpath("py.typed").is_file()
    assert (discover.LOG_RATIO_CLIP, discover.ADVANTAGE_MAX) == (20.0, 1e6)
