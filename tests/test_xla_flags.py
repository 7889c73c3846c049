"""The XLA CPU scheduler flag: added by default, never overriding the user's choice."""

import os
import subprocess
import sys

from inner_loop._xla import SAFE_SETTING, configure_xla_cpu


def test_flag_is_added_and_other_flags_kept():
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    assert configure_xla_cpu(env)
    assert env["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=4 {SAFE_SETTING}"


def test_flag_is_added_when_unset():
    env = {}
    assert configure_xla_cpu(env) and env["XLA_FLAGS"] == SAFE_SETTING


def test_user_setting_is_never_overridden():
    env = {"XLA_FLAGS": "--xla_cpu_enable_concurrency_optimized_scheduler=true"}
    assert not configure_xla_cpu(env)
    assert env["XLA_FLAGS"] == "--xla_cpu_enable_concurrency_optimized_scheduler=true"


def test_importing_the_package_applies_it_before_jax_starts():
    code = "import discover, os, jax; jax.numpy.zeros(1); print(os.environ['XLA_FLAGS'])"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and SAFE_SETTING in out.stdout
