"""`discover sweep` end to end on a tiny config: run folder, wandb offline, resume, bad input."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from discover.cli.main import main
from discover.files.drift_file import read_drift_file
from discover.training.references import find_reference
from discover.sweep.config import apply_sweep_overrides, get_preset, load_config_file
from inner_loop.errors import ConfigError
from sweep_helpers import TINY, numbers, read_metrics, sweep_args
from wandb_records import artifact_names, history_rows



@pytest.mark.xdist_group("reference-sweep")  # the worker that has the shared sweep
@pytest.mark.slow
def test_run_folder_holds_config_metrics_checkpoints_drifts_and_heatmaps(uninterrupted):
    saved = json.loads((uninterrupted / "config.json").read_text())
    assert saved["sweep"]["generations"] == 6 and saved["sweep"]["inner"]["total_timesteps"] == 512
    refs = json.loads((uninterrupted / "references.json").read_text())["references"]
    assert refs[0]["env_id"] == "CartPole-v1" and refs[0]["ppo_reference_return"] > 0

    rows = read_metrics(uninterrupted)
    assert [r["generation"] for r in rows] == [1, 2, 3, 4, 5, 6]
    for row in rows:
        assert all(np.isfinite(row[k]) for k in ("fitness_mean", "fitness_max", "fitness_min", "fitness_std"))
        assert row["fitness_min"] <= row["fitness_mean"] <= row["fitness_max"]
        assert row["fitness_noise"] > 0 and row["fitness_snr"] == pytest.approx(row["fitness_std"] / row["fitness_noise"],
                                                                                rel=1e-4)  # no NaN member here
        assert row["env_steps"] == row["generation"] * 4 * 2 * 512 and row["wall_seconds"] > 0
    assert [("mean_drift_fitness" in r) for r in rows] == [False, True, False, True, False, True]

    assert sorted(os.listdir(uninterrupted / "checkpoints")) == [f"gen_00000{g}.npz" for g in (2, 4, 6)]
    assert sorted(os.listdir(uninterrupted / "heatmaps")) == [f"gen_00000{g}.png" for g in (2, 4, 6)]
    mean = read_drift_file(str(uninterrupted / "drifts" / "gen_000006_mean.drift.npz"))
    best = read_drift_file(str(uninterrupted / "drifts" / "gen_000006_best.drift.npz"))
    assert mean.metadata["provenance"]["generation"] == 6
    assert mean.metadata["provenance"]["fitness"] == pytest.approx(rows[-1]["mean_drift_fitness"])
    assert best.metadata["provenance"]["fitness"] == pytest.approx(max(r["fitness_max"] for r in rows))
    assert mean.metadata["axiom_check"]["passed"]
    assert np.isfinite(float(mean(1.3, 0.7)))


@pytest.mark.xdist_group("reference-sweep")  # the worker that has the shared sweep
@pytest.mark.slow
def test_wandb_offline_run_folder_mirrors_the_metrics(uninterrupted):
    wandb_dir = uninterrupted / "wandb"
    runs = [d for d in os.listdir(wandb_dir) if d.startswith("offline-run-")]
    assert len(runs) == 1
    run_file = [f for f in os.listdir(wandb_dir / runs[0]) if f.endswith(".wandb")][0]
    logged = history_rows(str(wandb_dir / runs[0] / run_file))
    local = read_metrics(uninterrupted)
    assert [r["_step"] for r in logged] == [r["generation"] for r in local]
    for remote, row in zip(logged, local):
        for key in ("fitness_mean", "fitness_max", "fitness_min", "fitness_std", "fitness_noise", "fitness_snr",
                    "env_steps"):
            assert remote[key] == pytest.approx(row[key])
    assert "drift_heatmap/path" in logged[1] and "mean_drift_fitness" in logged[1]
    assert len(artifact_names(str(wandb_dir / runs[0] / run_file))) == 3


@pytest.mark.xdist_group("reference-sweep")  # the worker that has the shared sweep
@pytest.mark.slow
def test_stopping_after_a_checkpoint_and_resuming_gives_the_same_numbers(uninterrupted, tmp_path):
    assert main(sweep_args(tmp_path, "part", 4)) == 0
    assert main(["sweep", "--resume", str(tmp_path / "part"), "--wandb", "disabled",
                 "--set", "generations=6"]) == 0
    assert numbers(read_metrics(tmp_path / "part")) == numbers(read_metrics(uninterrupted))


@pytest.mark.xdist_group("reference-sweep")  # the worker that has the shared sweep
@pytest.mark.slow
def test_resume_passes_over_damaged_checkpoints_to_the_newest_readable_one(uninterrupted, tmp_path, capsys):
    run = tmp_path / "damaged"
    shutil.copytree(uninterrupted, run, ignore=shutil.ignore_patterns("wandb"))
    newest = run / "checkpoints" / "gen_000006.npz"
    newest.write_bytes(newest.read_bytes()[:1000])  # cut short, as by a full disk
    (run / "checkpoints" / "gen_000004.npz").write_bytes(b"not a zip archive")
    assert main(["sweep", "--resume", str(run), "--wandb", "disabled"]) == 0
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "gen_000006.npz' is corrupt (BadZipFile); resuming from generation 4's checkpoint" in err
    assert "gen_000004.npz' is corrupt (ValueError); resuming from generation 2's checkpoint" in err
    assert "from generation 2" in err
    assert numbers(read_metrics(run)) == numbers(read_metrics(uninterrupted))
    assert sorted(os.listdir(run / "checkpoints")) == sorted(os.listdir(uninterrupted / "checkpoints"))


def _sweep_process(tmp_path, name, generations):
    # conftest.py exports the session's compilation cache, so the subprocess reuses it.
    return subprocess.Popen([sys.executable, "-m", "discover", *sweep_args(tmp_path, name, generations)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_lines(process, metrics, count, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(metrics) and len(open(metrics).readlines()) >= count:
            return
        if process.poll() is not None:
            raise AssertionError(f"sweep ended early: {process.stderr.read()[-2000:]}")
        time.sleep(0.02)
    raise AssertionError("sweep did not get going")


@pytest.mark.xdist_group("reference-sweep")  # the worker that has the shared sweep
@pytest.mark.slow
def test_kill_9_after_a_checkpoint_then_resume_gives_the_same_numbers(uninterrupted, tmp_path):
    process = _sweep_process(tmp_path, "killed", 6)
    _wait_for_lines(process, tmp_path / "killed" / "metrics.jsonl", 3)
    process.kill()
    process.wait()
    assert process.returncode == -signal.SIGKILL
    written = read_metrics(tmp_path / "killed")
    assert 3 <= len(written) < 6  # killed mid-sweep, after the generation-2 checkpoint
    assert main(["sweep", "--resume", str(tmp_path / "killed"), "--wandb", "disabled"]) == 0
    assert numbers(read_metrics(tmp_path / "killed")) == numbers(read_metrics(uninterrupted))


@pytest.mark.xdist_group("reference-sweep")  # the worker that has the shared sweep
@pytest.mark.slow
def test_ctrl_c_checkpoints_the_current_generation_then_resume_gives_the_same_numbers(uninterrupted, tmp_path):
    process = _sweep_process(tmp_path, "stopped", 6)
    _wait_for_lines(process, tmp_path / "stopped" / "metrics.jsonl", 1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "--resume" in stderr
    done = len(read_metrics(tmp_path / "stopped"))
    if done < 6:
        assert os.path.exists(tmp_path / "stopped" / "checkpoints" / f"gen_{done:06d}.npz")
    assert main(["sweep", "--resume", str(tmp_path / "stopped"), "--wandb", "disabled"]) == 0
    assert numbers(read_metrics(tmp_path / "stopped")) == numbers(read_metrics(uninterrupted))


@pytest.mark.xdist_group("reference-sweep")  # the worker that has the shared sweep
@pytest.mark.slow
def test_a_stop_while_a_checkpoint_is_written_resumes_with_every_file_and_the_same_numbers(
        uninterrupted, tmp_path, monkeypatch):
    # A second Ctrl-C (or an error) while generation 4's drift files are written: no
    # checkpoint may claim generation 4 without them, and its metrics row is not written yet.
    import discover.sweep.loop

    real_save = discover.sweep.loop.save_drift

    def interrupted_at_4(path, *args, **kwargs):
        if "gen_000004_" in path:
            raise KeyboardInterrupt
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(discover.sweep.loop, "save_drift", interrupted_at_4)
    assert main(sweep_args(tmp_path, "cut", 6)) == 130
    monkeypatch.setattr(discover.sweep.loop, "save_drift", real_save)
    assert sorted(os.listdir(tmp_path / "cut" / "checkpoints")) == ["gen_000002.npz", "gen_000003.npz"]
    assert main(["sweep", "--resume", str(tmp_path / "cut"), "--wandb", "disabled"]) == 0
    assert numbers(read_metrics(tmp_path / "cut")) == numbers(read_metrics(uninterrupted))
    assert sorted(os.listdir(tmp_path / "cut" / "drifts")) == sorted(os.listdir(uninterrupted / "drifts"))
    assert sorted(os.listdir(tmp_path / "cut" / "heatmaps")) == sorted(os.listdir(uninterrupted / "heatmaps"))


@pytest.mark.xdist_group("reference-sweep")  # the worker that has the shared sweep
@pytest.mark.slow
def test_distributed_sweep_over_two_processes_gives_the_same_numbers(uninterrupted, tmp_path):
    # Two processes on this host, as `jax.distributed` runs one per host: the population is
    # split over both processes' devices and only process 0 writes the run folder.
    import socket

    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "discover", *sweep_args(tmp_path, "dist", 2), "--distributed"]
    processes = [subprocess.Popen(command, env={**os.environ, "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
                                                "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(i)},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for process in processes:
        _, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, stderr[-3000:]
    rows, want = read_metrics(tmp_path / "dist"), read_metrics(uninterrupted)[:2]
    assert [r["generation"] for r in rows] == [1, 2]
    for row, expected in zip(rows, want):  # other per-device batch sizes: equal up to rounding
        for key in ("fitness_mean", "fitness_max", "fitness_min", "mean_drift_fitness"):
            if key in expected:
                assert row[key] == pytest.approx(expected[key], rel=1e-5), key


def test_distributed_without_a_cluster_environment_is_a_one_line_error(capsys, monkeypatch):
    for var in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "SLURM_JOB_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    assert main(["sweep", "--distributed"]) == 2
    assert capsys.readouterr().err.strip() == (
        "discover sweep: error: JAX_NUM_PROCESSES='two' is not allowed; it must be an integer")


@pytest.mark.slow
@pytest.mark.skipif(jax.device_count() < 2, reason="needs the population split over devices")
def test_generations_compile_once_whatever_device_the_state_comes_from(caplog):
    # The initial (and a loaded checkpoint's) state sits on one device; a generation returns
    # it replicated over the mesh. Unless inputs are placed the same way, call 2 recompiles.
    from discover.sweep.machinery import build_machinery
    from outer_loop import Normalisation

    config = apply_sweep_overrides(get_preset("quick"), TINY)
    machinery = build_machinery(config, Normalisation(ppo=[100.0], untrained=[0.0]))
    state = machinery.initial_state
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        for _ in range(3):
            state, _ = machinery.run_generations(state, 1)
        loaded = jax.tree.map(np.asarray, state)  # as a checkpoint gives it back
        machinery.run_generations(loaded, 1)
    compiles = [r for r in caplog.records if "Finished XLA compilation of jit(<lambda>)" in r.getMessage()]
    assert len(compiles) == 1


def test_validation_and_held_out_seeds_never_overlap_the_search():
    # Every inner run's key over 100 generations: the search's (each generation's evaluation
    # key, as make_generation derives it) and the checkpoints' validation and held-out keys.
    from discover.sweep.machinery import build_machinery, checkpoint_key, sweep_keys
    from outer_loop import Normalisation
    from outer_loop.evolution import generation_keys, run_keys

    config = apply_sweep_overrides(get_preset("quick"), TINY + ["seeds_per_member=16"])
    machinery = build_machinery(config, Normalisation(ppo=[100.0], untrained=[0.0]))
    key, search = machinery.initial_state.key, []
    for _ in range(100):
        key, _, eval_key, _ = generation_keys(key)
        search.append(run_keys(eval_key, 1, config.seeds_per_member))
    streams = sweep_keys(config.seed)
    scored = [[run_keys(checkpoint_key(stream, g), 1, 16) for g in range(1, 101)]
              for stream in (streams.validation, streams.held_out)]

    def as_set(keys):  # raw uint32 PRNGKey pairs
        return {tuple(k) for k in np.concatenate([np.asarray(x).reshape(-1, 2) for x in keys]).tolist()}

    search_keys, validation, held_out = (as_set(keys) for keys in (search, *scored))
    assert len(search_keys) == 1600 and len(validation) == len(held_out) == 1600
    assert not search_keys & validation and not search_keys & held_out and not validation & held_out


@pytest.mark.parametrize("preset", ["quick", "transfer", "robust"])
def test_the_cpu_presets_have_stored_references(preset):
    # Without one, the README's main job re-measures PPO (16 seeds) before every sweep; a
    # preset change that PPO does not read (kl_delta, for TRPO) once caused exactly that.
    config = get_preset(preset)
    assert config.test_envs  # both report held-out envs
    for train_config in config.train_configs() + config.test_configs():
        entry = find_reference(train_config)
        assert entry is not None and entry["seeds"] >= 16
        assert entry["ppo_reference_return"] > entry["untrained_return"]


def test_a_reference_matches_only_configs_that_train_the_same():
    config = get_preset("quick").train_configs()[0]
    entry = {"config": config.to_dict()}
    # The KL ball's settings are not read without the ball ...
    assert find_reference(config.replace(kl_delta=0.123, cg_iters=3), [entry]) is entry
    # ... but are with it, and every other field counts.
    assert find_reference(config.replace(neighbourhood="kl_ball"), [entry]) is None
    assert find_reference(config.replace(neighbourhood="kl_ball", kl_delta=0.123),
                          [{"config": config.replace(neighbourhood="kl_ball").to_dict()}]) is None
    assert find_reference(config.replace(lr=config.lr * 2), [entry]) is None
    assert find_reference(config, [{"config": {**config.to_dict(), "new_field": 1}}]) is None


def test_config_file_with_preset_and_overrides(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text('preset = "quick"\ngenerations = 7\nenvs = ["CartPole-v1"]\n'
                    '[strategy]\nname = "SNES"\nstd = 0.07\n[drift]\nname = "ta_lpo"\nhidden_size = 8\n'
                    '[inner]\ntotal_timesteps = 4096\n')
    config = load_config_file(str(path))
    assert (config.generations, config.strategy.name, config.strategy.std) == (7, "SNES", 0.07)
    assert config.drift == "ta_lpo" and config.drift_options["hidden_size"] == 8
    assert config.inner == {**get_preset("quick").inner, "total_timesteps": 4096}
    with pytest.raises(ConfigError, match="test env 'Catch-bsuite' is also a training env"):  # quick holds it out
        apply_sweep_overrides(config, ["envs=CartPole-v1,Catch-bsuite"]).validate()
    config = apply_sweep_overrides(config, ["strategy.lr=0.1", "lr=3e-3", "envs=CartPole-v1,Acrobot-v1", "test_envs="])
    assert config.strategy.lr == 0.1 and config.inner["lr"] == 3e-3 and config.envs == ("CartPole-v1", "Acrobot-v1")
    assert [c.env_id for c in config.validate().train_configs()] == ["CartPole-v1", "Acrobot-v1"]


@pytest.mark.slow
def test_a_tiny_robust_sweep_runs_end_to_end(tmp_path):
    # The preset's family, learning-rate draws and per-env settings, a held-out env, at tiny
    # budgets (each env long enough to end an episode in the final window; Pendulum-v1 is
    # left out: at a tiny budget PPO does not beat the untrained policy, and it is refused).
    per_env = {"CartPole-v1": 512, "Acrobot-v1": 2048, "Catch-bsuite": 1024}
    settings = ["generations=2", *(s for s in TINY if not s.startswith("test_envs")),
                "envs=CartPole-v1,Acrobot-v1", "test_envs=Catch-bsuite",
                *(f"inner.{env}.total_timesteps={n}" for env, n in per_env.items()),
                "inner.Catch-bsuite.update_epochs=4"]  # as tests/test_sweep_envs.py: learnable at this budget
    argv = ["sweep", "--preset", "robust", "--name", "robust", "--runs-dir", str(tmp_path), "--wandb", "disabled"]
    assert main(argv + [x for s in settings for x in ("--set", s)]) == 0
    rows = read_metrics(tmp_path / "robust")
    saved = json.loads((tmp_path / "robust" / "config.json").read_text())["sweep"]
    assert saved["drift"] == "atoms" and saved["inner_randomize"] == {"lr": [1e-3, 3e-2]}
    assert set(saved["inner_env"]) == {"CartPole-v1", "Acrobot-v1", "Catch-bsuite"}  # the preset's others dropped
    last = rows[-1]
    assert np.isfinite([last["fitness_mean"], last["mean_drift_fitness"], last["test_fitness"]]).all()
    assert "tanh" in last["mean_formula"]  # DPO's pieces: the start


def _error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize("argv,fragment", [
    (["sweep", "--preset", "huge"], "unknown preset 'huge'; allowed: quick, transfer, robust, minatar"),
    (["sweep", "--preset", "robust", "--set", "envs=CartPole-v1,Catch-bsuite"],
     "test env 'Catch-bsuite' is also a training env; a held-out env must not be trained on"),
    (["sweep", "--preset", "robust", "--set", "mean_drift_seeds=0"], "mean_drift_seeds=0 is not allowed"),
    (["sweep", "--preset", "robust", "--set", "drift.start=clip"], "start='clip' is not allowed for 'atoms'"),
    (["sweep", "--set", "strategy=NoSuchES"], "unknown strategy 'NoSuchES'; allowed:"),
    (["sweep", "--set", "population_size=7"], "population_size=7 is not allowed for Open_ES"),
    (["sweep", "--set", "generations=0"], "generations=0 is not allowed"),
    (["sweep", "--set", "colour=blue"], "unknown setting 'colour'; allowed:"),
    (["sweep", "--set", "drift=ppo"], "drift='ppo' cannot be evolved; allowed: lpo, ta_lpo, atoms"),
    (["sweep", "--set", "envs=CartPole-v9"], "CartPole-v9"),
    (["sweep", "--wandb", "cloud"], "--wandb 'cloud' is not allowed"),
    (["sweep", "--config", "/nonexistent/sweep.toml"], "does not exist"),
])
def test_bad_sweep_input_is_one_line_exit_2(capsys, tmp_path, argv, fragment):
    code, err = _error(capsys, argv + ["--runs-dir", str(tmp_path)])
    assert code == 2 and fragment in err and "\n" not in err and "Traceback" not in err


def _damaged(tmp_path, run, how):
    """A copy of the run folder's config.json and references.json, damaged `how`."""
    folder = tmp_path / how
    folder.mkdir()
    saved = json.loads((run / "config.json").read_text())
    if how == "no_name":
        del saved["name"]
    (folder / "config.json").write_text(json.dumps(saved))
    if how != "no_references":
        (folder / "references.json").write_text((run / "references.json").read_text())
    return folder


def test_a_new_sweep_that_fails_before_starting_leaves_no_folder(capsys, tmp_path, monkeypatch):
    for var in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc, no wandb settings
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "home" / "wandb"))
    code, err = _error(capsys, sweep_args(tmp_path / "runs", "online", 1, wandb="online"))
    last = err.splitlines()[-1]  # after the sweep's header line
    assert code == 2 and last.startswith("discover sweep: error: --wandb online needs a wandb login")
    assert os.listdir(tmp_path / "runs") == []


@pytest.mark.slow
def test_a_ppo_reference_without_final_returns_is_a_one_line_error():
    from discover.training.references import measure_reference
    from inner_loop import TrainConfig

    # One update of 16 steps: no Pendulum episode (200 steps) ends, so no seed has a return.
    config = TrainConfig(env_id="Pendulum-v1", total_timesteps=64, num_envs=4, num_steps=16, num_minibatches=1)
    with pytest.raises(ConfigError, match=r"Pendulum-v1: 2 of 2 seeds have no final return .* final_window"):
        measure_reference(config, 2, jax.random.PRNGKey(0))


@pytest.mark.xdist_group("reference-sweep")  # the worker that has the shared sweep
@pytest.mark.slow
def test_bad_resume_folders_and_conflicts_are_one_line_errors(capsys, tmp_path, uninterrupted):
    (tmp_path / "empty").mkdir()
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("generations = [\n")
    cases = [
        (["sweep", "--resume", str(tmp_path / "empty")], "is not a sweep run folder"),
        (["sweep", "--resume", str(tmp_path / "missing")], "no such folder"),
        (["sweep", "--resume", str(uninterrupted), "--set", "population_size=8"],
         "conflicts with the run's config (4 -> 8)"),
        (["sweep", "--resume", str(uninterrupted), "--preset", "quick"], "cannot be combined"),
        (["sweep", "--config", str(bad_toml)], "is not valid TOML"),
        (["sweep", "--name", "full", "--runs-dir", str(uninterrupted.parent)], "already holds a sweep"),
        (["sweep", "--config", str(tmp_path)], "is a folder; give a TOML file"),
        (["sweep", "--resume", str(_damaged(tmp_path, uninterrupted, "no_name"))], "config.json is corrupt"),
        (["sweep", "--resume", str(_damaged(tmp_path, uninterrupted, "no_references"))],
         "references.json is missing"),
        (["export", str(tmp_path / "missing"), "-o", str(tmp_path / "x.drift.npz")],
         "run folder '" + str(tmp_path / "missing") + "': no such folder"),
    ]
    for argv, fragment in cases:
        code, err = _error(capsys, argv)
        assert code == 2 and fragment in err and "\n" not in err, (argv, err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_runs_dir_is_a_one_line_error(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, err = _error(capsys, ["sweep", "--runs-dir", str(locked)])
    assert code == 2 and ("not writable" in err or "cannot create" in err) and "\n" not in err


def test_runs_dir_under_a_file_is_a_one_line_error(capsys, tmp_path):
    (tmp_path / "afile").write_text("x")
    code, err = _error(capsys, ["sweep", "--runs-dir", str(tmp_path / "afile")])
    assert code == 2 and "cannot create run folder" in err and "\n" not in err


@pytest.mark.xdist_group("reference-sweep")  # the worker that has the shared sweep
@pytest.mark.slow
def test_resume_cannot_go_below_the_generations_done(capsys, uninterrupted):
    before = (uninterrupted / "config.json").read_text()
    code, err = _error(capsys, ["sweep", "--resume", str(uninterrupted), "--wandb", "disabled",
                                "--set", "generations=3"])
    assert code == 2 and "generations=3 is less than the 6 generations" in err
    assert (uninterrupted / "config.json").read_text() == before  # nothing rewritten


@pytest.mark.xdist_group("reference-sweep")  # the worker that has the shared sweep
@pytest.mark.slow
def test_export_and_inspect_a_swept_drift(uninterrupted, tmp_path, capsys):
    out = tmp_path / "exported.drift.npz"
    assert main(["export", str(uninterrupted), "--generation", "best", "--which", "mean", "-o", str(out)]) == 0
    exported = read_drift_file(str(out))
    rows = read_metrics(uninterrupted)
    best_gen = max((r for r in rows if "mean_drift_fitness" in r), key=lambda r: r["mean_drift_fitness"])
    assert exported.metadata["provenance"]["generation"] == best_gen["generation"]
    source = read_drift_file(str(uninterrupted / "drifts" / f"gen_{best_gen['generation']:06d}_mean.drift.npz"))
    ratio, adv = np.exp(np.linspace(-1, 1, 9)), np.linspace(-2, 2, 9)
    np.testing.assert_array_equal(exported(ratio, adv), source(ratio, adv))
    check = exported.metadata["axiom_check"]
    assert check["passed"] and check["theorem"]["passed"] and check["theorem"]["improvement"]["violations"] == 0
    assert exported.metadata["provenance"]["training_envs"] == ["CartPole-v1"]

    assert main(["export", str(uninterrupted), "--generation", "last", "--which", "best",
                 "-o", str(tmp_path / "best.drift.npz")]) == 0
    assert read_drift_file(str(tmp_path / "best.drift.npz")).metadata["provenance"]["which"] == "best"
    capsys.readouterr()
    assert main(["inspect", str(out), "--png", str(tmp_path / "landscape.png")]) == 0
    shown = capsys.readouterr().out
    assert "atoms" in shown and "formula" in shown and "axioms now" in shown and (tmp_path / "landscape.png").stat().st_size > 10_000

    for argv, fragment in [
        (["export", str(uninterrupted), "--generation", "5", "-o", str(tmp_path / "x.npz")],
         "--generation 5 has no checkpoint"),
        (["export", str(uninterrupted), "--which", "median", "-o", str(tmp_path / "x.npz")], "--which 'median'"),
        (["export", str(tmp_path), "-o", str(tmp_path / "x.npz")], "is not a sweep run folder"),
    ]:
        code, err = _error(capsys, argv)
        assert code == 2 and fragment in err and "\n" not in err, err
    assert not (tmp_path / "x.npz").exists()
