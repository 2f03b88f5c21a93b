#!/usr/bin/env bash
# Reproduces docs/results.md, "Weight averaging (EMA): no measurable gain (2026-11-29)": every artefact rebuilt
# (mini_goal, 100 demos per task; VQGAN 1500 and extractor 800 steps; tokenizers; keyframe cache), pre-training
# 1000 steps at width 256, then co-fine-tuning 4000 steps with --ema 0.999 per seed; each run gives two policies,
# the average (its model.safetensors) and the raw weights of the same step (exported from train_state.pt); 50
# trials per task —
#   seed 0   raw 177/250 (70.8%)   EMA 179/250 (71.6%)
#   seed 1   raw 160/250 (64.0%)   EMA 164/250 (65.6%)
# The numbers were measured on the official test init states (INIT_STATES=test, the default); choose among
# variants with INIT_STATES=val (docs/results.md, selection rule). Resumable: finished stages are skipped.
#   bash experiments/w256_ema.sh      # about 2 h 20 min alone on 2 CPU cores (co-fine-tuning 51 and 54 min,
#                                     # evaluations 3.6-3.9 min each)
# Knobs: SEEDS ("0 1"), TRIALS (50), INIT_STATES (test | val), RUNS, DATA (100 demos per task).
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/common.sh
NAME=w256_ema
SEEDS="${SEEDS:-0 1}"; TRIALS="${TRIALS:-50}"; INIT_STATES="${INIT_STATES:-test}"
RUNS="${RUNS:-runs/$NAME}"; DATA="${DATA:-data/goal100}"

demos mini_goal 100 "$DATA"
artefacts "$DATA" "$RUNS" 1500 800
W="$RUNS/w256"
run python pretrain_vla.py "${ART[@]}" --out "$W/pretrain" --tiny --width 256 --steps 1000 --batch-size 16 \
    --log-every 250 --resume
for seed in $SEEDS; do
  run python cofinetune.py "${ART[@]}" --out "$W/cft_ema_s$seed" --init-from "$W/pretrain" --tiny --steps 4000 \
      --batch-size 16 --log-every 500 --seed "$seed" --ema 0.999 --resume
  score "$W/cft_ema_s$seed" "ema_s$seed"
  raw "$W/cft_ema_s$seed" "$W/cft_raw_s$seed"
  score "$W/cft_raw_s$seed" "raw_s$seed"
done
