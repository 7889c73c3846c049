"""`discover distill`: the safe grammar, validity by construction, recovery of PPO and DPO, the
closed_form drift file, and the command end to end."""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import discover
from discover.cli.main import main
from inner_loop.drifts import atoms as atom_library
from discover.distill.config import DistillConfig, distill_config
from discover.distill.formula import Formula, to_sympy
from discover.distill.pipeline import pareto_candidates
from discover.distill.samples import distill_data, sampling_config, sampling_envs
from discover.distill.search import WeightedProblem, choose, pareto_front
from discover.files.drift_file import save_drift
from discover.theorem.axioms import check_axioms
from discover.training.resolver import resolve_drift
from inner_loop import drifts
from inner_loop.drifts import ClosedFormDrift
from inner_loop.errors import ConfigError
from inner_loop.expression import compile_expression, jax_source, operation_count

TINY = ["samples.timesteps=2048", "samples.seeds=1"]  # one short CartPole run: compile-bound, ~15 s
# The tests that run it share one worker under xdist, so it compiles once (then the cache); slow,
# as the suite marks every test over ~5 s (the first of them pays for the run).
def SAME_PPO_RUN(test):  # noqa: N802
    return pytest.mark.slow(pytest.mark.xdist_group("distill-ppo-run")(test))



@pytest.fixture(scope="module")
def ppo_data():
    """The distillation data of PPO from one tiny run (the fits below re-use its points)."""
    return distill_data(resolve_drift("ppo"), distill_config(TINY), jax.random.PRNGKey(0))


def values_of(fn, data):
    return np.asarray(fn(jnp.asarray(data.ratio), jnp.asarray(data.advantage), jnp.asarray(data.progress)),
                      np.float64)


def with_target(data, drift_fn, time_aware=False):
    return dataclasses.replace(data, target=values_of(drift_fn, data), time_aware=time_aware)


def assert_valid(formula_text):
    result = check_axioms(lambda r, a, p: compile_expression(formula_text)(r, a, p))
    assert result.passed, (formula_text, result.failures)


# The grammar ---------------------------------------------------------------------------------

MALICIOUS = {
    "unknown name": ("os", "name 'os'"),
    "import call": ("__import__('os').system('touch PWNED')", "name '__import__'"),
    "deep nesting": ("(" * 500 + "r" + ")" * 500, "deeper than 32"),
    "huge exponent": ("r ** 1e9", "exponent 1000000000 is too large"),
    "exponent just over the limit": ("r ** 8.0000001", "exponent 8.0000001 is too large"),
    "huge integer": ("1" + "0" * 400 + " * r", "is not finite"),
    "attribute access": ("r.real", "character '.'"),
    "attribute of a call": ("abs(r).real", "character '.'"),
    "subscript": ("r[0]", "character '['"),
    "lambda": ("lambda: r", "name 'lambda'"),
    "comprehension": ("sum(r for r in A)", "name 'sum'"),
    "unary chain": ("-" * 3000 + "r", "operators in a row"),
    "long chain": ("+".join(["r"] * 1000), "deeper than 64"),
    "too long": ("r + " * 1500 + "r", "at most 4000"),
    "variable exponent": ("r ** A", "exponent of ** must be a number"),
    "wrong arity": ("clip(r, 1)", "clip takes 3"),
    "function as value": ("relu", "must be called"),
    "empty": ("  ", "empty"),
    "string": ("'r'", "character \"'\""),
    "infinite constant": ("1e999 * r", "not finite"),
    "comparison": ("r < 1", "character '<'"),
    # Each crashed before (issue 23): RecursionError, ZeroDivisionError, OverflowError, a complex drift.
    "long chain called": ("(" + "+".join(["r"] * 400) + ")(1)", "call of 'r+r+r"),
    "long chain in a tuple": ("(" + "+".join(["r"] * 400) + ", 1)", "Tuple ('(r+r+r"),
    "division by zero": ("0**-1*(r-1)**2", "the constant part '0**-1' is inf in float32"),
    "overflowing constant": ("(1e300)**2*(r-1)**2", "constant 1e300 is not finite in float32"),
    "complex constant": ("(r-1)**2*(1+(-1)**0.5)", "the constant part '(-1)**0.5' is nan in float32"),
    "beyond float32": ("1e39 * r", "constant 1e39 is not finite in float32"),
    "constant overflowing in float32": ("exp(89) * (r-1)**2", "the constant part 'exp(89)' is inf"),
}


@pytest.mark.parametrize("text,message", MALICIOUS.values(), ids=MALICIOUS.keys())
def test_expressions_outside_the_grammar_are_one_line_errors(text, message):
    with pytest.raises(ConfigError) as err:
        compile_expression(text)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_constant_parts_are_float32_numbers_computed_once_even_when_first_built_under_jit():
    text = "(r - 1)**2 * exp(2) * 2**-1 + 0*A"  # a new text: compile_expression's cache has not seen it
    r = jnp.asarray([0.5, 1.0, 3.0], jnp.float32)
    got = jax.jit(lambda r: compile_expression(text)(r, jnp.ones_like(r)))(r)
    want = (r - 1) ** 2 * jnp.exp(jnp.float32(2)) * jnp.float32(0.5)
    np.testing.assert_allclose(got, want, rtol=1e-7)
    assert got.dtype == jnp.float32


def test_the_grammar_evaluates_every_allowed_construct_like_jnp():
    r, a, p = jnp.array([0.5, 1.0, 1.7]), jnp.array([-2.0, 0.5, 3.0]), jnp.array([0.0, 0.5, 1.0])
    text = ("relu(r - 1.2)*abs(A) - -log(r)**2/2 + exp(p) * tanh(A) + sqrt(r) * square(A) "
            "+ minimum(A, 0) + maximum(r, 1) + clip(r, 0.8, 1.2)*p + (r - 1)**-2*0 + +1")
    want = (jax.nn.relu(r - 1.2) * jnp.abs(a) + jnp.log(r) ** 2 / 2 + jnp.exp(p) * jnp.tanh(a)
            + jnp.sqrt(r) * a ** 2 + jnp.minimum(a, 0) + jnp.maximum(r, 1) + jnp.clip(r, 0.8, 1.2) * p
            + (r - 1.0) ** -2 * 0 + 1)
    np.testing.assert_allclose(compile_expression(text)(r, a, p), want, rtol=1e-6)
    assert operation_count("0.5*relu(r - 1.2)*relu(A)") == 5  # *, relu, -, *, relu
    namespace = {}
    exec(jax_source(text), namespace)  # the emitted JAX function computes the same (our own output)
    np.testing.assert_allclose(namespace["drift"](r, a, p), want, rtol=1e-6)


# Validity by construction -------------------------------------------------------------------

def test_zoo_ppo_and_dpo_are_exactly_atoms():
    r, a = jnp.meshgrid(jnp.exp(jnp.linspace(-2, 2, 41)), jnp.linspace(-3, 3, 41))
    base = {atom.family: atom for atom in atom_library.base_atoms()}
    ppo = compile_expression(base["ppo eps=0.2"].text)(r, a)
    np.testing.assert_array_equal(ppo, drifts.get("ppo")({}, r, a))
    dpo = compile_expression(f"{base['dpo A>=0 alpha=2'].text} + {base['dpo A<0 beta=0.6'].text}")(r, a)
    np.testing.assert_array_equal(dpo, drifts.get("dpo")({}, r, a))


def test_random_non_negative_sums_of_atoms_pass_the_axioms():
    library = atom_library.library(time_aware=True)
    rng = np.random.default_rng(3)
    for _ in range(3):
        chosen = rng.choice(len(library), size=4, replace=False)
        formula = Formula(tuple((float(w), library[i]) for i, w in zip(chosen, rng.exponential(2.0, 4))))
        assert_valid(formula.text)


@pytest.mark.slow
def test_every_atom_passes_the_axioms():
    for atom in atom_library.library(time_aware=True):
        assert_valid(atom.text)


def test_the_qr_reduced_problem_matches_nnls_on_all_samples():
    from scipy.optimize import nnls

    rng = np.random.default_rng(0)
    columns, target, weight = rng.random((500, 6)), rng.random(500), rng.random(500)
    weight /= weight.sum()
    fit = WeightedProblem(columns, target, weight).fit((0, 2, 5))
    root = np.sqrt(weight)
    coef, residual = nnls(columns[:, [0, 2, 5]] * root[:, None], target * root)
    np.testing.assert_allclose(fit.error, residual / np.linalg.norm(target * root), rtol=1e-9)
    np.testing.assert_allclose(fit.weights, coef[coef > 0], rtol=1e-7)


def test_the_front_keeps_only_unbeaten_formulas_and_the_choice_is_the_smallest_within_tolerance():
    items = [(3, 0.8), (4, 0.1), (5, 0.5), (9, 0.098), (12, 0.02), (20, 0.0)]
    front = pareto_front(items, size=lambda x: x[0], error=lambda x: x[1])
    assert front == [(3, 0.8), (4, 0.1), (9, 0.098), (12, 0.02), (20, 0.0)]
    pick = lambda max_size, tolerance: choose(front, lambda x: x[0], lambda x: x[1], max_size, tolerance)  # noqa: E731
    assert pick(15, 0.05) == (12, 0.02)
    assert pick(10, 0.05) == (4, 0.1)  # 0.1 <= 0.098 * 1.05
    assert pick(10, 0.0) == (9, 0.098)
    assert pick(2, 0.05) == (3, 0.8)  # nothing that small: the smallest


# Recovery --------------------------------------------------------------------------------------

@SAME_PPO_RUN
def test_distilling_dpo_recovers_it_and_every_front_formula_is_valid(ppo_data):
    data = with_target(ppo_data, lambda r, a, p: drifts.get("dpo")({}, r, a, p))
    _, _, front = pareto_candidates(data, DistillConfig(max_terms=4))
    chosen = choose(front, lambda c: c.formula.size, lambda c: c.error, max_size=25, tolerance=0.05)
    assert chosen.error < 0.02 and chosen.formula.size <= 23, chosen
    assert "0.6*tanh" in chosen.formula.text and "2*tanh" in chosen.formula.text
    assert [c.formula.size for c in front] == sorted({c.formula.size for c in front})  # a front: sizes grow
    assert all(a.error > b.error for a, b in zip(front, front[1:]))  # and errors fall
    for candidate in front:
        assert_valid(candidate.formula.text)


@SAME_PPO_RUN
def test_a_time_aware_drift_is_fitted_with_progress_atoms(ppo_data):
    target = "(1 - p)*relu((r - clip(r, 0.8, 1.2))*A) + 0.5*p*(r - 1)**2"
    data = with_target(ppo_data, compile_expression(target), time_aware=True)
    _, _, front = pareto_candidates(data, DistillConfig(max_terms=3))
    best = front[-1]
    assert best.error < 0.01 and "p" in best.formula.text, best
    assert_valid(best.formula.text)


# The closed_form drift file ---------------------------------------------------------------------

def test_a_closed_form_file_round_trips_under_jit_grad_and_vmap(tmp_path):
    text = "0.9*relu((r - clip(r, 0.8, 1.2))*A) + 0.25*p*log(r)**2"
    path = str(tmp_path / "cf.drift.npz")
    save_drift(path, drifts.get("closed_form", expression=text), {})
    loaded = discover.load_drift(path)
    assert loaded.drift.name == "closed_form" and loaded.metadata["options"] == {"expression": text}
    assert loaded.metadata["architecture"]["expression"] == text
    r, a = jnp.exp(jnp.linspace(-1, 1, 9)), jnp.linspace(-2, 2, 9)
    want = 0.9 * drifts.get("ppo")({}, r, a) + 0.25 * 0.3 * jnp.log(r) ** 2
    np.testing.assert_allclose(loaded(r, a, 0.3), want, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(loaded)(r, a, 0.3), want, rtol=1e-6)
    grad = jax.vmap(jax.grad(lambda x, y: loaded(x, y, 0.3)))(r, a)
    np.testing.assert_allclose(grad, jax.vmap(jax.grad(lambda x, y: 0.9 * drifts.get("ppo")({}, x, y)
                                                        + 0.075 * jnp.log(x) ** 2))(r, a), rtol=1e-5)
    assert "0.25 p" in __import__("sympy").latex(to_sympy(text))


@pytest.mark.parametrize("name", ["unknown name", "import call", "deep nesting", "huge exponent",
                                  "attribute access"])
def test_a_file_with_a_malicious_expression_is_refused_in_one_line(tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    text = MALICIOUS[name][0]
    path = str(tmp_path / "bad.drift.npz")
    # Written around the checks (ClosedFormDrift() does not parse; axiom_check given): as a hostile file would be.
    save_drift(path, ClosedFormDrift(expression=text), {}, axiom_check={"passed": True, "problem": None})
    commands = [["inspect", path]] + ([["verify", path], ["train", "--drift", path]] if name == "import call" else [])
    for command in commands:
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "bad.drift.npz" in err and MALICIOUS[name][1] in err, err
    with pytest.raises(ConfigError):
        discover.load_drift(path)
    assert not os.path.exists(tmp_path / "PWNED")


def test_a_parseable_but_invalid_expression_is_refused_by_the_axioms(tmp_path, capsys):
    with pytest.raises(ConfigError, match="violates the mirror-learning axioms"):
        resolve_drift("closed_form", ["drift.expression=(r - 1)*A"])
    assert resolve_drift("closed_form", ["drift.expression=(r - 1)*A"], check_axioms=False).drift.name == "closed_form"
    path = str(tmp_path / "negative.drift.npz")
    save_drift(path, drifts.get("closed_form", expression="(r - 1)*A"), {})
    with pytest.raises(ConfigError, match="violates the mirror-learning axioms"):
        discover.load_drift(path)
    assert main(["compare", path, "--seeds", "2", "-o", str(tmp_path / "report")]) == 2
    assert "axioms" in capsys.readouterr().err


def test_sampling_runs_use_the_sweeps_inner_config_on_the_drifts_training_envs(tmp_path):
    path = str(tmp_path / "lpo.drift.npz")
    sweep = {"inner": {"num_envs": 2}, "inner_env": {"Acrobot-v1": {"total_timesteps": 99_999, "lr": 0.01}}}
    save_drift(path, drifts.get("lpo", hidden_size=4), drifts.get("lpo", hidden_size=4).init(jax.random.PRNGKey(0)),
               {"training_envs": ["Acrobot-v1"], "sweep_config": sweep})
    resolved = resolve_drift(path)
    assert sampling_envs(resolved, DistillConfig()) == ("Acrobot-v1",)
    assert sampling_envs(resolved, DistillConfig(envs=("CartPole-v1",))) == ("CartPole-v1",)
    config = sampling_config(resolved, "Acrobot-v1", DistillConfig())
    assert (config.total_timesteps, config.lr, config.num_envs) == (65_536, 0.01, 2)  # capped at 65,536
    assert sampling_config(resolved, "Acrobot-v1", DistillConfig(timesteps=4096)).total_timesteps == 4096
    assert sampling_config(resolve_drift("ppo"), "CartPole-v1", DistillConfig()).lr == 2.5e-4  # the preset
    bad = str(tmp_path / "bad.drift.npz")
    save_drift(bad, drifts.get("ppo"), {}, {"sweep_config": {"inner": {"colour": 1}}})
    with pytest.raises(ConfigError, match="unknown inner field"):
        sampling_config(resolve_drift(bad), "CartPole-v1", DistillConfig())


# The command --------------------------------------------------------------------------------------

@SAME_PPO_RUN
def test_distill_end_to_end_writes_a_loadable_closed_form_and_prints_the_front(tmp_path, capsys):
    out = str(tmp_path / "ppo.distilled.drift.npz")
    assert main(["distill", "ppo", "-o", out, "--set", *TINY]) == 0
    printed = capsys.readouterr().out
    assert "Pareto front" in printed and "relu((r - clip(r, 0.8, 1.2))*A)" in printed and "LaTeX" in printed
    loaded = discover.load_drift(out)
    distilled = loaded.metadata["provenance"]["distill"]
    assert loaded.drift.expression == "relu((r - clip(r, 0.8, 1.2))*A)"  # PPO recovered exactly
    assert distilled["error"] < 0.02 and distilled["size"] <= 5 and distilled["source"] == "zoo:ppo"
    assert all(row["size"] <= row2["size"] for row, row2 in zip(distilled["pareto_front"], distilled["pareto_front"][1:]))
    assert main(["inspect", out, "--png", str(tmp_path / "x.png")]) == 0
    assert "expression" in capsys.readouterr().out


@pytest.mark.slow
def test_distilling_a_drift_file_samples_its_training_env_and_keeps_its_provenance(tmp_path, capsys):
    source = str(tmp_path / "lpo.drift.npz")
    drift = drifts.get("lpo", hidden_size=8, init_scale=0.5)
    sweep = {"inner_env": {"CartPole-v1": {"total_timesteps": 2048, "lr": 0.01}}}
    save_drift(source, drift, drift.init(jax.random.PRNGKey(1)), {"training_envs": ["CartPole-v1"],
                                                                 "test_envs": ["Acrobot-v1"], "sweep_config": sweep})
    out = str(tmp_path / "lpo.distilled.drift.npz")
    assert main(["distill", source, "-o", out, "--set", "samples.seeds=1"]) == 0
    provenance = discover.load_drift(out).metadata["provenance"]
    assert provenance["training_envs"] == ["CartPole-v1"] and provenance["test_envs"] == ["Acrobot-v1"]
    assert provenance["sweep_config"] == sweep and provenance["distill"]["source"] == source
    sampled = provenance["distill"]["sampling_configs"]["CartPole-v1"]
    assert (sampled["total_timesteps"], sampled["lr"]) == (2048, 0.01)
    assert 0 <= provenance["distill"]["error"] < 1 and provenance["distill"]["size"] <= 15
    assert "Pareto front" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["ppo", "--set", "samples.timesteps=0"], "samples.timesteps=0"),
    (["ppo", "--set", "samples.timesteps=100"], "leaves no samples"),
    (["ppo", "--set", "colour=blue"], "unknown setting 'colour'"),
    (["ppo", "--set", "tolerance=nan"], "tolerance=nan"),
    (["ppo", "--set", "env=NoSuchEnv-v0"], "NoSuchEnv-v0"),
    (["ppo", "--set", "drift.nope=1"], "no option 'nope'"),
    (["nonsense"], "unknown drift 'nonsense'"),
    (["NOT_A_DRIFT"], "not a drift file"),
])
def test_bad_input_is_one_line_and_exit_2_with_no_file_written(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.npz").write_text("hello")
    argv = [str(tmp_path / "text.npz") if a == "NOT_A_DRIFT" else a for a in argv]
    out = tmp_path / "out.drift.npz"
    assert main(["distill", *argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert os.listdir(tmp_path) == ["text.npz"]
