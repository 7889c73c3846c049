"""Progress in a log file: plain lines, throttled, with done/total, elapsed and ETA."""

import subprocess
import sys

import pytest

from discover.cli.progress import PlainProgress


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_plain_progress_prints_at_most_every_interval_with_eta():
    clock, lines = FakeClock(), []
    with PlainProgress(unit="runs", every=30, write=lines.append, clock=clock) as progress:
        task = progress.add_task("compiling", total=10, best="-")
        clock.now = 40.0  # compilation: not counted in the rate
        progress.update(task, description="ppo on CartPole-v1", advance=1, best="0.9")
        for _ in range(8):
            clock.now += 5.0
            progress.advance(task)
    assert lines[0] == "ppo on CartPole-v1  1/10 runs  elapsed 0:00:40  best 0.9"
    assert lines[1] == "ppo on CartPole-v1  7/10 runs  elapsed 0:01:10  ETA 0:00:15  best 0.9"
    assert lines[-1] == "ppo on CartPole-v1  9/10 runs  elapsed 0:01:20  ETA 0:00:05  best 0.9"
    assert len(lines) == 3  # 40 s, 70 s, and the end


@pytest.mark.slow
def test_train_to_a_log_file_prints_plain_progress_lines(tmp_path):
    log = tmp_path / "train.log"
    with open(log, "w") as out:
        code = subprocess.run([sys.executable, "-m", "discover", "train", "--env", "CartPole-v1", "--drift", "ppo",
                               "--seeds", "2", "--set", "total_timesteps=2048", "num_envs=4", "num_steps=64"],
                              stdout=out, stderr=subprocess.STDOUT, timeout=600).returncode
    text = log.read_text()
    assert code == 0 and "/8 updates  elapsed 0:00:" in text and "\x1b[" not in text
