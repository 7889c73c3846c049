"""The bad-input table: hostile formulas and drift files, and configs that cannot work, each
run through the `discover` command as a user would. Prints a markdown table: the command,
its exit status, the last line it wrote to stderr, and the seconds it took.

    python scripts/bad_inputs.py            # about 2 minutes on 2 cores
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from discover.files.drift_file import METADATA_KEY, save_drift
from inner_loop import drifts

LONG_CHAIN = "+".join(["r"] * 400)
CRASHED = [f"({LONG_CHAIN})(1)", f"({LONG_CHAIN}, 1)", "0**-1*(r-1)**2", "(1e300)**2*(r-1)**2",
           "(r-1)**2*(1+(-1)**0.5)"]  # each was a traceback
LOADED_AS_VALID = ["(r-1)**2*(1-2*relu(r-2e6))", "(r-1)**2 - 5e-7", "relu(A-20000)*abs(r-1)"]
TINY = ["--set", "total_timesteps=256", "num_envs=4", "num_steps=16"]


def hostile_file(folder: Path, name: str, expression: str) -> str:
    """A closed_form drift file holding `expression` and claiming it passed the axiom check."""
    path = folder / f"{name}.drift.npz"
    save_drift(str(path), drifts.get("closed_form", expression="(r - 1)**2"), {})
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays.pop(METADATA_KEY)))
    meta["options"]["expression"] = meta["architecture"]["expression"] = expression
    buffer = io.BytesIO()
    np.savez(buffer, **{METADATA_KEY: np.asarray(json.dumps(meta))}, **arrays)
    path.write_bytes(buffer.getvalue())
    return str(path)


def cases(folder: Path) -> list[list[str]]:
    out = []
    for i, expression in enumerate(CRASHED + LOADED_AS_VALID):
        path = hostile_file(folder, f"hostile{i}", expression)
        out.append(["train", "--drift", "closed_form", "--set", f"drift.expression={expression}", *TINY])
        out.append(["train", "--drift", path, *TINY])
        out.append(["compare", path, "-o", str(folder / "report"), *TINY])
        out.append(["inspect", path, "--png", str(folder / "x.png")])
        out.append(["verify", path, "--set", "num_mdps=2", "iterations=2", "inner_steps=2", "inner_restarts=0"])
    for grid in (["--grid", "foo=1,2"], ["--grid", "lr="], ["--grid", "lr=fast,slow"], ["--grid", "lr=1e-3,-1e-2"],
                 ["--grid", "lr=1e-3,1e-2", "--set", "inner.CartPole-v1.lr=1e-2"], ["--grid", "kl_delta=0.01,0.02"]):
        out.append(["compare", "ppo", "-o", str(folder / "report"), *TINY, *grid])
    out.append(["distill", "closed_form", "--set", f"drift.expression={CRASHED[2]}", "-o", str(folder / "d.npz")])
    out.append(["sweep", "--preset", "minatar", "--set", "total_timesteps=262144", "--runs-dir", str(folder)])
    # PPO within the noise of the untrained policy on held-out Catch at 1,024 steps (1.2 standard errors)
    out.append(["sweep", "--preset", "quick", "--set", "test_envs=Catch-bsuite", "inner.Catch-bsuite.total_timesteps=1024",
                "--runs-dir", str(folder), "--wandb", "disabled"])
    return out


def shorten(arg: str, folder: Path) -> str:
    arg = arg.replace(str(folder), "DIR")
    arg = arg.replace(LONG_CHAIN, "r+r+...(400 terms)")
    return arg


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("| command | exit | last line on stderr | s |\n|---|---|---|---|")
        for argv in cases(folder):
            start = time.perf_counter()
            done = subprocess.run(["discover", *argv], capture_output=True, text=True, timeout=600)
            seconds = time.perf_counter() - start
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            last = shorten(lines[-1], folder) if lines else "-"
            if done.returncode == 1:  # a verdict, not an error: the failing line of the output
                failing = [line for line in (done.stdout + done.stderr).splitlines() if "FAIL" in line]
                last = "verdict: " + " ".join(failing[0].replace("│", " ").split()) if failing else last
            shown = " ".join(shorten(a, folder) for a in argv)
            print(f"| `discover {shown}` | {done.returncode} | {last.replace('|', '/')} | {seconds:.1f} |")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
