"""`discover train` end to end on tiny configs, and every kind of bad input."""

import json
import os
import subprocess
import sys

import pytest

from discover.cli.main import main
from inner_loop.errors import ConfigError

TINY = ["--set", "total_timesteps=1024", "--set", "num_envs=4", "--set", "num_steps=32",
        "--set", "update_epochs=1", "--set", "num_minibatches=2"]


@pytest.mark.slow
def test_train_writes_results_json(tmp_path, capsys):
    out = tmp_path / "sub" / "run.json"
    code = main(["train", "--env", "CartPole-v1", "--drift", "dpo", "--seeds", "2", *TINY,
                 "--set", "drift.alpha=1.5", "--out", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    for key in ("env", "drift", "config", "final_return", "curve", "compile_seconds", "env_steps_per_second"):
        assert key in result
    assert result["env"] == "CartPole-v1" and result["drift"] == "dpo"
    assert result["drift_options"] == {"alpha": 1.5, "beta": 0.6}
    assert result["config"]["num_envs"] == 4 and result["config"]["total_timesteps"] == 1024
    assert len(result["final_return"]) == 2
    assert len(result["curve"]) == 2 and len(result["curve"][0]) == 1024 // (4 * 32)
    assert result["env_steps_per_second"] > 0
    assert not [p for p in os.listdir(out.parent) if ".tmp" in p]  # no half-written files
    printed = capsys.readouterr().out
    assert "learning curve" in printed and "final return" in printed


@pytest.mark.slow
def test_trpo_alias_runs_the_kl_ball(tmp_path):
    out = tmp_path / "trpo.json"
    assert main(["train", "--drift", "trpo", "--seeds", "1", *TINY, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["config"]["neighbourhood"] == "kl_ball"
    assert result["config"]["lr"] == 1e-3  # its critic's lr on CartPole-v1 (the env's default)


def test_trpo_critic_lr_on_cartpole_is_a_default_that_set_changes():
    from discover.cli.train import resolve_train
    from inner_loop import preset

    assert resolve_train("CartPole-v1", "trpo", [])[0].lr == 1e-3
    assert resolve_train("CartPole-v1", "trpo", ["lr=3e-4"])[0].lr == 3e-4
    assert resolve_train("CartPole-v1", "ppo", [])[0] == preset("CartPole-v1")  # PPO keeps the preset
    assert resolve_train("Acrobot-v1", "trpo", [])[0].lr == preset("Acrobot-v1").lr  # other envs: the preset


@pytest.mark.parametrize("args,fragment", [
    (["--env", "Nope-v0"], "unknown env id 'Nope-v0'; allowed: CartPole-v1"),
    (["--env", "MNISTBandit-bsuite"], "not supported"),
    (["--drift", "sqrt"], "unknown drift 'sqrt'; allowed: zero, kl, ppo, dpo, lpo, ta_lpo, atoms, lpo_v1, ta_lpo_v1, trpo, transfer-v1"),
    (["--set", "drift.alpha=1"], "drift 'ppo' has no option 'alpha'; allowed: drift.eps"),
    (["--set", "num_envs=0"], "num_envs=0 is not allowed; it must be a positive integer"),
    (["--set", "num_steps=-5"], "num_steps=-5"),
    (["--set", "num_minibatches=3"], "num_minibatches=3 does not split the batch"),
    (["--set", "lr=fast"], "lr='fast' is not a valid float"),
    (["--set", "num_envs=2.5"], "num_envs='2.5' is not a valid int"),
    (["--set", "colour=blue"], "unknown setting 'colour'; allowed:"),
    (["--set", "env_id=Acrobot-v1"], "setting 'env_id' is fixed by the command line"),
    (["--drift", "trpo", "--set", "neighbourhood=none"], "setting 'neighbourhood' is fixed"),
    (["--set", "novalue"], "not of the form key=value"),
    (["--seeds", "0"], "--seeds 0 is not allowed"),
    (["--set", "activation=sigmoid"], "activation='sigmoid' is not allowed"),
    (["--set", "lr=inf"], "lr=inf is not allowed; it must be a finite number"),
    (["--set", "ent_coef=-inf"], "ent_coef=-inf is not allowed; it must be a finite number"),
    (["--set", "drift.eps=inf"], "drift option eps=inf is not allowed for 'ppo'; it must be a finite number > 0"),
])
def test_bad_input_is_one_line_and_exit_status_2(args, fragment, capsys):
    code = main(["train", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unwritable_output_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code = main(["train", *TINY, "--out", str(tmp_path / "afile" / "out.json")])
    assert code == 2 and "cannot create output folder" in capsys.readouterr().err


@pytest.mark.parametrize("seed", ["-1", str(2**64), "x"])
def test_a_seed_out_of_range_is_a_one_line_usage_error(seed, capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse's own usage error
        main(["train", "--seed", seed])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "argument --seed:" in err and ("[0, 4294967295]" in err or "not an integer" in err)


def test_an_output_name_the_file_system_refuses_is_a_one_line_error_before_training(tmp_path, capsys):
    code = main(["train", *TINY, "--out", str(tmp_path / ("a" * 300 + ".json"))])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write output path" in err and "File name too long" in err
    assert os.listdir(tmp_path) == []


def test_a_failed_atomic_write_leaves_neither_file_nor_temporary(tmp_path):
    from discover.files.atomic import write_bytes_atomic, write_json_atomic

    (tmp_path / "taken").mkdir()  # renaming onto a folder fails after the data was written
    for write in (lambda p: write_bytes_atomic(p, b"x" * 1000), lambda p: write_json_atomic(p, {"a": 1})):
        with pytest.raises(ConfigError, match="cannot write .*taken"):
            write(str(tmp_path / "taken"))
        assert sorted(os.listdir(tmp_path)) == ["taken"]


@pytest.mark.slow
def test_console_script_bad_input_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "discover", "train", "--env", "Nope-v0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("discover train: error: unknown env id 'Nope-v0'")
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_argparse_errors_are_one_line_too():
    proc = subprocess.run([sys.executable, "-m", "discover", "train", "--seeds", "many"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_one_set_takes_several_pairs(tmp_path):
    # As the issue writes it: --set num_envs=64 total_timesteps=1e6 (and --set repeated).
    out = tmp_path / "out.json"
    args = ["train", "--seeds", "1", "--set", "total_timesteps=1024", "num_envs=4", "num_steps=32",
            "--set", "update_epochs=1", "num_minibatches=2", "--out", str(out)]
    assert main(args) == 0
    config = json.loads(out.read_text())["config"]
    assert (config["num_envs"], config["num_steps"], config["update_epochs"], config["num_minibatches"]) == (4, 32, 1, 2)


@pytest.mark.slow
def test_gpu_check_script_runs_on_cpu_with_a_tiny_override():
    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "gpu_check.sh")
    out = subprocess.run(["bash", script, "--runs", "2", "--updates", "1",
                          "--set", "envs=Breakout-MinAtar", "population_size=4", "seeds_per_member=1",
                          "total_timesteps=1024", "num_envs=4", "num_steps=32", "num_minibatches=2"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("vmapped runs")] == ["vmapped runs 2"]
    assert any(line.startswith("generation 2: ") and "env steps/s" in line and "peak memory" in line for line in lines)
    assert "a full minatar generation" in lines[-1]


@pytest.mark.slow
def test_bench_cli_pairs_two_checkouts_and_compares_their_results(tmp_path):
    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "bench_cli.py")
    repo = os.path.join(os.path.dirname(__file__), "..")
    out_file = tmp_path / "bench.json"
    out = subprocess.run([sys.executable, script, "--baseline-repo", repo, "--pairs", "1", "--out", str(out_file),
                          "--", "--seeds", "2", "--set", "total_timesteps=1024", "num_envs=4", "num_steps=32",
                          "num_minibatches=2"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out_file.read_text())
    assert result["identical_final_returns"] is True  # the same checkout on both sides
    assert result["pairs"] == 1 and all(len(v) == 1 and v[0] > 0 for v in result["steps_per_second"].values())
    assert "this / baseline: median" in out.stdout.splitlines()[-1]
