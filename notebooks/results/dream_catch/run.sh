#!/bin/bash
# When does more dreaming stop paying? tiny catch runs stopped at REAL real steps, then one
# dream of 4x the run's own updates, evaluated (100 greedy episodes, the run's own evaluation
# key) after each 1x. A dream is deterministic and keyed by the update count, so its evaluation
# after 1x, 2x, 3x equals a separate dream of that size.
# Usage: OUT=/tmp/dream_catch REAL=768 SEEDS="0 1" bash run.sh
set -euo pipefail
OUT=${OUT:-/tmp/dream_catch}
REAL=${REAL:-768}
SEEDS=${SEEDS:-"0 1"}
for seed in $SEEDS; do
  run=$OUT/real$REAL-s$seed
  start=$(date +%s)
  dreamer train --world catch --preset tiny --real-steps "$REAL" --seed "$seed" \
    --set run.eval_interval=100000 --set run.eval_episodes=100 --out "$run" --no-progress
  trained=$(date +%s)
  updates=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['updates'])" "$run/ledger.json")
  dreamer dream --run "$run" --out "$run-dream" --updates $((4 * updates)) --eval-every "$updates" \
    --no-progress
  echo "seed $seed: train $((trained - start)) s, dream $(( $(date +%s) - trained )) s"
done
