#!/usr/bin/env bash
# The Atari GPU check (issue #25): fits in 10 minutes on one GPU and writes its figures to $1.
#   1. `dreamer bench gpu`: the atari100k preset's learner phase (one batch and 5 batches per
#      search), the learner without per-update reanalysis plus buffer-wide passes, search and
#      acting, the ALE collector, each program's peak memory, the projected hours per game
#      (about 3 minutes);
#   2. a short learning run on atari/pong at the preset (network, batch, search, augmentation),
#      its replay cut to the run's 2,000 steps, learning from 500, and 4 evaluation episodes every
#      1,000 steps (stopped if it outlasts 270 s).
# Usage: COMMIT=<sha> bash notebooks/results/atari_gpu/check.sh OUT_DIR   (from the repository root)
set -u
out=${1:?usage: check.sh OUT_DIR}
mkdir -p "$out/train"
export DREAMER_CACHE=${DREAMER_CACHE:-/tmp/dreamer-xla} PYTHONUNBUFFERED=1
{
  echo "date $(date -u +%FT%TZ)  commit ${COMMIT:-unknown}  host $(hostname)"
  python3 -c "import jax, flax, mctx; print('jax', jax.__version__, 'flax', flax.__version__, \
'mctx', mctx.__version__, jax.devices())"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
} 2>&1 | tee "$out/about.txt"

t0=$(date +%s)
timeout -k 10 240 python3 -m dreamer.cli bench gpu >"$out/bench_gpu.txt" 2>&1
echo "bench gpu: exit $? in $(( $(date +%s) - t0 )) s" | tee -a "$out/about.txt"
tail -12 "$out/bench_gpu.txt"

t0=$(date +%s)
timeout -k 20 270 python3 -m dreamer.cli train --world atari/pong --real-steps 2000 --out /tmp/pong \
  --no-progress --set train.learning_starts=500 --set replay.capacity=500 \
  --set run.eval_interval=1000 --set run.eval_episodes=4 --set run.checkpoint_interval=2000 \
  >"$out/train/train.txt" 2>&1
echo "train: exit $? in $(( $(date +%s) - t0 )) s" | tee -a "$out/about.txt"
tail -8 "$out/train/train.txt"
for f in eval.csv ledger.json config.json metrics.jsonl; do cp "/tmp/pong/$f" "$out/train/" 2>/dev/null; done
cat "$out/train/eval.csv" 2>/dev/null
