#!/usr/bin/env bash
# Reproduce docs/results/transfer/: `discover compare` of the shipped `transfer-v1` (made from
# the `transfer` sweep by scripts/package_drift.py), of set-up 2 (that sweep started at DPO) and
# of the `quick` sweep's drift against PPO and DPO with 16 fresh seeds (--seed 1000; the sweeps
# drew theirs from seed 0) on training and held-out envs, each env at the config the sweep used;
# then transfer-v1, PPO and DPO over a learning-rate grid on the transfer preset's envs.
# Run time: docs/results/transfer/README.md.
#
#   bash scripts/transfer_results.sh            # RUNS=runs OUT=docs/results/transfer by default
set -euo pipefail
RUNS=${RUNS:-runs}
OUT=${OUT:-docs/results/transfer}
HIGH_LR="total_timesteps=32768 lr=0.01"
inner() { local env=$1; shift; for kv in "$@"; do printf -- "inner.%s.%s " "$env" "$kv"; done; }

STEPS="inner.CartPole-v1.total_timesteps=32768 inner.Acrobot-v1.total_timesteps=32768 \
       inner.Pendulum-v1.total_timesteps=65536 inner.Breakout-MinAtar.total_timesteps=131072"

# Set-up 2: the transfer sweep started at DPO, 60 generations.
[ -d "$RUNS/transfer-dpo" ] || discover sweep --preset transfer --name transfer-dpo --runs-dir "$RUNS" \
    --set drift.start=dpo generations=60
discover export "$RUNS/transfer-dpo" -o "$RUNS/transfer-dpo.drift.npz"
# shellcheck disable=SC2046
discover compare transfer-v1 "$RUNS/transfer-dpo.drift.npz" --envs CartPole-v1,Pendulum-v1,Acrobot-v1,Breakout-MinAtar \
    --seeds 16 --seed 1000 --baselines ppo,dpo \
    --set $(inner CartPole-v1 $HIGH_LR) $(inner Acrobot-v1 $HIGH_LR) \
          inner.Pendulum-v1.total_timesteps=65536 inner.Breakout-MinAtar.total_timesteps=131072 \
    -o "$OUT/transfer"

[ -d "$RUNS/quick-v1" ] || discover sweep --preset quick --name quick-v1 --runs-dir "$RUNS"
discover export "$RUNS/quick-v1" -o "$RUNS/quick-v1.drift.npz"
# shellcheck disable=SC2086
discover compare "$RUNS/quick-v1.drift.npz" --envs CartPole-v1,Acrobot-v1 --seeds 16 --seed 1000 \
    --baselines ppo,dpo --set $HIGH_LR -o "$OUT/quick"

# Every lr of the grid on every env; each env's other settings as its sweep had them.
# shellcheck disable=SC2086
discover compare transfer-v1 --envs CartPole-v1,Pendulum-v1,Acrobot-v1,Breakout-MinAtar --seeds 16 --seed 1000 \
    --baselines ppo,dpo --set $STEPS --grid lr=1e-3,3e-3,1e-2,3e-2 -o "$OUT/lr-grid"
