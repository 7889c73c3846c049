#!/usr/bin/env bash
# The measurement behind the `robust` preset's envs (docs/results/robust/README.md): PPO, DPO
# and no drift (`zero`) on candidate envs over the learning-rate grid the preset draws from,
# 16 seeds (8 on MinAtar), seeds 2000+ (no sweep or compare of this project uses them). A
# drift can only matter, and be learned, where the policy moves far in an update, so an env
# is a candidate where no drift falls well below PPO somewhere on the grid; held-out envs are
# fixed by this table before any robust sweep runs, and never changed by its results.
#
#   bash scripts/robust_envs.sh            # OUT=docs/results/robust/envs by default
set -euo pipefail
OUT=${OUT:-docs/results/robust/envs}
GRID="lr=1e-3,3e-3,1e-2,3e-2"
discover compare zero --envs CartPole-v1,Acrobot-v1,Catch-bsuite --seeds 16 --seed 2000 --baselines ppo,dpo \
    --set total_timesteps=32768 --grid "$GRID" -o "$OUT/classic"
discover compare zero --envs Pendulum-v1 --seeds 16 --seed 2001 --baselines ppo,dpo \
    --set total_timesteps=65536 --grid "$GRID" -o "$OUT/pendulum"
discover compare zero --envs Breakout-MinAtar,SpaceInvaders-MinAtar,Asterix-MinAtar --seeds 8 --seed 2002 \
    --baselines ppo,dpo --set total_timesteps=131072 --grid "$GRID" -o "$OUT/minatar"
