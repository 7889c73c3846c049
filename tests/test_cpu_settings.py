"""The XLA CPU settings: applied by the discover command and by `configure_cpu()`, never on import,
never overriding the user's choice."""

import os
import subprocess
import sys

import pytest

from inner_loop.cpu import DEVICE_COUNT_FLAG, SAFE_SETTING, configure_cpu


def test_flags_are_added_when_unset():
    env = {}
    assert configure_cpu(env, cores=2) == [SAFE_SETTING, f"{DEVICE_COUNT_FLAG}=2"]
    assert env["XLA_FLAGS"] == f"{SAFE_SETTING} {DEVICE_COUNT_FLAG}=2"


def test_one_core_gets_no_device_count():
    env = {}
    assert configure_cpu(env, cores=1) == [SAFE_SETTING] and env["XLA_FLAGS"] == SAFE_SETTING


def test_other_flags_are_kept_and_a_user_device_count_stands():
    env = {"XLA_FLAGS": f"--xla_dump_to=/tmp/x {DEVICE_COUNT_FLAG}=4"}
    assert configure_cpu(env, cores=2) == [SAFE_SETTING]
    assert env["XLA_FLAGS"] == f"--xla_dump_to=/tmp/x {DEVICE_COUNT_FLAG}=4 {SAFE_SETTING}"


def test_jax_num_cpu_devices_counts_as_the_users_device_count():
    env = {"JAX_NUM_CPU_DEVICES": "1"}
    assert configure_cpu(env, cores=8) == [SAFE_SETTING]


def test_user_settings_are_never_overridden():
    flags = f"--xla_cpu_enable_concurrency_optimized_scheduler=true {DEVICE_COUNT_FLAG}=1"
    env = {"XLA_FLAGS": flags}
    assert configure_cpu(env, cores=2) == []
    assert env["XLA_FLAGS"] == flags


def _python(code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter with warnings as errors and no XLA settings of ours."""
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    return subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, env=env,
                          timeout=180)


CORES = len(os.sched_getaffinity(0))


@pytest.mark.slow
def test_importing_the_packages_after_jax_and_gymnax_is_silent_and_changes_nothing():
    # A library user's order: jax and gymnax first (gymnax starts jax's backend), then ours.
    code = ("import os, jax, gymnax, discover, inner_loop; "
            "print(os.environ.get('XLA_FLAGS'), len(jax.devices('cpu')))")
    out = _python(code)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert out.stdout.split() == ["None", "1"]


@pytest.mark.slow
def test_configure_cpu_before_jax_starts_applies_them_and_a_second_call_changes_nothing():
    code = ("import os, jax, discover, inner_loop; from jax._src import xla_bridge; "
            "print(os.environ.get('XLA_FLAGS'), bool(xla_bridge._backends)); "
            "added = discover.configure_cpu(); print(len(added), inner_loop.configure_cpu()); "
            "jax.numpy.zeros(1); print(len(jax.devices('cpu')), os.environ['XLA_FLAGS'])")
    out = _python(code)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    imported, calls, configured = out.stdout.strip().splitlines()
    assert imported == "None False"  # no flag set and jax's backend not started by our imports
    assert calls == f"{1 + (CORES > 1)} []"
    devices, flags = configured.split(" ", 1)
    assert int(devices) == CORES and SAFE_SETTING in flags  # one CPU device per usable core


@pytest.mark.slow
def test_configure_cpu_after_jax_started_warns_once_and_changes_nothing():
    code = ("import warnings, os, jax; jax.numpy.zeros(1); import discover\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    print(discover.configure_cpu(), discover.configure_cpu(), os.environ.get('XLA_FLAGS'))\n"
            "print(len(caught), caught[0].category.__name__, str(caught[0].message))")
    out = _python(code)
    assert out.returncode == 0, out.stderr
    returned, warned = out.stdout.strip().splitlines()
    assert returned == "[] [] None"
    count, category, message = warned.split(" ", 2)
    assert (count, category) == ("1", "RuntimeWarning") and "came after jax started" in message


@pytest.mark.slow
def test_the_discover_command_applies_them_before_jax_starts():
    code = ("import os, jax\nfrom discover.cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(len(jax.devices('cpu')), os.environ['XLA_FLAGS'])")
    out = _python(code)
    assert out.returncode == 0, out.stderr
    devices, flags = out.stdout.strip().splitlines()[-1].split(" ", 1)
    assert int(devices) == CORES and SAFE_SETTING in flags


SCRIPTS = os.path.join(os.path.dirname(__file__), os.pardir, "scripts")
CONFIGURING_SCRIPTS = sorted(f for f in os.listdir(SCRIPTS)
                             if f.endswith(".py") and "configure_cpu()" in open(os.path.join(SCRIPTS, f)).read())


@pytest.mark.slow
@pytest.mark.parametrize("script", CONFIGURING_SCRIPTS)
def test_every_script_configures_the_cpu_before_its_imports_start_jax(script):
    # gymnax and evosax's algorithms start jax when imported: a script that configured after
    # them would run its vmapped trainers on one CPU device (it warns; here that fails).
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", os.path.join(SCRIPTS, script), "--help"],
                         capture_output=True, text=True, env=env, timeout=180)
    assert out.returncode == 0, out.stderr[-1500:]
