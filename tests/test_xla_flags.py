"""The XLA CPU flags: added by default, never overriding the user's choice."""

import os
import subprocess
import sys

import pytest

from inner_loop._xla import DEVICE_COUNT_FLAG, SAFE_SETTING, configure_xla_cpu


def test_flags_are_added_when_unset():
    env = {}
    assert configure_xla_cpu(env, cores=2) == [SAFE_SETTING, f"{DEVICE_COUNT_FLAG}=2"]
    assert env["XLA_FLAGS"] == f"{SAFE_SETTING} {DEVICE_COUNT_FLAG}=2"


def test_one_core_gets_no_device_count():
    env = {}
    assert configure_xla_cpu(env, cores=1) == [SAFE_SETTING] and env["XLA_FLAGS"] == SAFE_SETTING


def test_other_flags_are_kept_and_a_user_device_count_stands():
    env = {"XLA_FLAGS": f"--xla_dump_to=/tmp/x {DEVICE_COUNT_FLAG}=4"}
    assert configure_xla_cpu(env, cores=2) == [SAFE_SETTING]
    assert env["XLA_FLAGS"] == f"--xla_dump_to=/tmp/x {DEVICE_COUNT_FLAG}=4 {SAFE_SETTING}"


def test_jax_num_cpu_devices_counts_as_the_users_device_count():
    env = {"JAX_NUM_CPU_DEVICES": "1"}
    assert configure_xla_cpu(env, cores=8) == [SAFE_SETTING]


def test_user_settings_are_never_overridden():
    flags = f"--xla_cpu_enable_concurrency_optimized_scheduler=true {DEVICE_COUNT_FLAG}=1"
    env = {"XLA_FLAGS": flags}
    assert configure_xla_cpu(env, cores=2) == []
    assert env["XLA_FLAGS"] == flags


@pytest.mark.slow
def test_importing_the_package_applies_them_before_jax_starts():
    code = ("import discover, os, jax; jax.numpy.zeros(1); "
            "print(os.environ['XLA_FLAGS']); print(len(jax.devices('cpu')))")
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and SAFE_SETTING in out.stdout
    flags, devices = out.stdout.strip().splitlines()
    cores = len(os.sched_getaffinity(0))
    assert int(devices) == cores  # one CPU device per usable core
