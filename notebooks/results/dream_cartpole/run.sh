#!/bin/bash
# Does dreaming pay on cartpole at a fixed real budget? small-preset cartpole runs stopped at REAL
# real steps (100 greedy evaluation episodes at the end), then one dream of 4x the run's own
# updates, evaluated after each 1x (the run's own evaluation key, so the same 100 episodes).
# Usage: OUT=/tmp/dream_cartpole REAL=2000 SEEDS="0 1" bash run.sh
set -euo pipefail
OUT=${OUT:-/tmp/dream_cartpole}
REAL=${REAL:-2000}
SEEDS=${SEEDS:-"0 1"}
for seed in $SEEDS; do
  run=$OUT/real$REAL-s$seed
  start=$(date +%s)
  dreamer train --world cartpole --real-steps "$REAL" --seed "$seed" \
    --set run.eval_interval=100000 --set run.eval_episodes=100 --out "$run" --no-progress
  trained=$(date +%s)
  updates=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['updates'])" "$run/ledger.json")
  dreamer dream --run "$run" --out "$run-dream" --updates $((4 * updates)) --eval-every "$updates" \
    --no-progress
  echo "seed $seed: train $((trained - start)) s, dream $(( $(date +%s) - trained )) s"
done
