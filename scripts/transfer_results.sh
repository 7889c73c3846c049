#!/usr/bin/env bash
# Reproduce docs/results/transfer/: the `transfer` and `quick` sweeps, their exported drifts
# (best checkpoint by training fitness), and `discover compare` of each against PPO and DPO
# with 16 fresh seeds (--seed 1000; the sweeps drew theirs from seed 0) on its training and
# held-out envs, each env at the config the sweep used. Run time: docs/design.md, Measured decisions.
#
#   bash scripts/transfer_results.sh            # RUNS=runs OUT=docs/results/transfer by default
set -euo pipefail
RUNS=${RUNS:-runs}
OUT=${OUT:-docs/results/transfer}
HIGH_LR="total_timesteps=32768 lr=0.01"
inner() { local env=$1; shift; for kv in "$@"; do printf -- "inner.%s.%s " "$env" "$kv"; done; }

[ -d "$RUNS/transfer-v1" ] || discover sweep --preset transfer --name transfer-v1 --runs-dir "$RUNS"
discover export "$RUNS/transfer-v1" -o "$RUNS/transfer-v1.drift.npz"
# Set-up 2: the same, started from DPO, 60 generations.
[ -d "$RUNS/transfer-dpo" ] || discover sweep --preset transfer --name transfer-dpo --runs-dir "$RUNS" \
    --set drift.start=dpo generations=60
discover export "$RUNS/transfer-dpo" -o "$RUNS/transfer-dpo.drift.npz"
# shellcheck disable=SC2046
discover compare "$RUNS/transfer-v1.drift.npz" "$RUNS/transfer-dpo.drift.npz" --envs CartPole-v1,Pendulum-v1,Acrobot-v1,Breakout-MinAtar \
    --seeds 16 --seed 1000 --baselines ppo,dpo \
    --set $(inner CartPole-v1 $HIGH_LR) $(inner Acrobot-v1 $HIGH_LR) \
          inner.Pendulum-v1.total_timesteps=65536 inner.Breakout-MinAtar.total_timesteps=131072 \
    -o "$OUT/transfer"

[ -d "$RUNS/quick-v1" ] || discover sweep --preset quick --name quick-v1 --runs-dir "$RUNS"
discover export "$RUNS/quick-v1" -o "$RUNS/quick-v1.drift.npz"
# shellcheck disable=SC2086
discover compare "$RUNS/quick-v1.drift.npz" --envs CartPole-v1,Acrobot-v1 --seeds 16 --seed 1000 \
    --baselines ppo,dpo --set $HIGH_LR -o "$OUT/quick"
