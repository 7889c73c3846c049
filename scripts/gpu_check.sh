#!/usr/bin/env bash
# Two generations of the minatar preset on the accelerator (at most 8 minutes); see scripts/gpu_check.py.
# Extra arguments go to it (e.g. --set total_timesteps=2048 for a CPU smoke test).
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import jax; print('jax', jax.__version__, jax.devices())"
exec timeout 480 python scripts/gpu_check.py "$@"
