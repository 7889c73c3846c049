#!/usr/bin/env bash
# Vmapped-run throughput (1, 8, 64, 512 runs) and two generations of the minatar preset on the
# accelerator (at most 8 minutes); see scripts/gpu_check.py. Extra arguments go to it (e.g.
# --out docs/results/throughput/gpu.json; --runs 1 2 --set total_timesteps=2048 for a CPU smoke test).
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import jax; print('jax', jax.__version__, jax.devices())"
exec timeout 480 python scripts/gpu_check.py "$@"
