#!/usr/bin/env bash
# Reproduce docs/results/distill/: distil the packaged `transfer-v1` drift and the quick
# sweep's drift (runs/quick-v1.drift.npz, from scripts/transfer_results.sh) at the default
# settings, then `discover compare` each learned drift beside its closed form and PPO with 16
# fresh seeds (--seed 1000), every env at the inner config its sweep used (as in
# scripts/transfer_results.sh). About 15 minutes on 2 CPU cores.
#
#   bash scripts/distill_results.sh            # RUNS=runs OUT=docs/results/distill by default
set -euo pipefail
RUNS=${RUNS:-runs}
OUT=${OUT:-docs/results/distill}
HIGH_LR="total_timesteps=32768 lr=0.01"
inner() { local env=$1; shift; for kv in "$@"; do printf -- "inner.%s.%s " "$env" "$kv"; done; }

mkdir -p "$OUT/quick" "$OUT/transfer"
discover distill "$RUNS/quick-v1.drift.npz" -o "$OUT/quick/quick-v1.distilled.drift.npz" | tee "$OUT/quick/distill.txt"
# shellcheck disable=SC2086
discover compare "$RUNS/quick-v1.drift.npz" "$OUT/quick/quick-v1.distilled.drift.npz" --envs CartPole-v1,Acrobot-v1 \
    --seeds 16 --seed 1000 --baselines ppo --set $HIGH_LR -o "$OUT/quick/report"

discover distill transfer-v1 -o "$OUT/transfer/transfer-v1.distilled.drift.npz" | tee "$OUT/transfer/distill.txt"
# shellcheck disable=SC2046
discover compare transfer-v1 "$OUT/transfer/transfer-v1.distilled.drift.npz" \
    --envs CartPole-v1,Pendulum-v1,Acrobot-v1,Breakout-MinAtar --seeds 16 --seed 1000 --baselines ppo \
    --set $(inner CartPole-v1 $HIGH_LR) $(inner Acrobot-v1 $HIGH_LR) \
          inner.Pendulum-v1.total_timesteps=65536 inner.Breakout-MinAtar.total_timesteps=131072 \
    -o "$OUT/transfer/report"
