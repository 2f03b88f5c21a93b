#!/usr/bin/env bash
# Reproduces docs/results.md, "Five times the demonstrations: 50 per task (2026-11-24)": mini_goal, tiny, seed 0,
# 10 trials per task (and 20 for the 50-demo runs) —
#   10 demos per task, the quickstart (pre-training 500, co-fine-tuning 1500)           18/50
#   10 demos, the quickstart's pre-training, co-fine-tuning 3000                         15/50 (memorised)
#   50 demos, pre-training 1000, co-fine-tuning 4000                                     27/50, 54/100
#   the same continued to 7000 (the cosine restarted over 7000)                          29/50, 58/100
#   50 demos, width 256, pre-training 800, co-fine-tuning 2000                           28/50, 54/100
#   50 demos, no pre-training (--init-from none), co-fine-tuning 4000                    26/50, 57/100
# As in the section, the 50-demo runs reuse the quickstart's VQGAN (800 steps) and extractor (800 steps), trained
# here on the 10-demo data in $RUNS/q10 and re-applied to the 50 demos (keyframe cache and z_m export of their
# own); tokenizers refit on the 50 demos. Measured with the code of 2026-11-24: the paper-default changes of
# 2026-12-01 moved the quickstart from 18/50 to 14/50, so expect the same picture, not the same counts.
# The numbers were measured on the official test init states (INIT_STATES=test, the default); choose among
# variants with INIT_STATES=val (docs/results.md, selection rule). Resumable: finished stages are skipped.
#   bash experiments/goal50.sh        # about 5 h on 2 CPU cores (the section's runs took 5.7 h of one thread
#                                     # each, two side by side)
# Knobs: ARMS ("q10 tiny cft7k w256 nopretrain"; q10 = the two 10-demo rows, scored with the first trial count;
#   its VQGAN and extractor are built in any case), TRIALS ("10 20": one evaluation per count), INIT_STATES
#   (test | val), RUNS, DATA (50 demos per task), DATA10 (10 demos per task).
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/common.sh
NAME=goal50
ARMS="${ARMS:-q10 tiny cft7k w256 nopretrain}"; TRIALS="${TRIALS:-10 20}"; INIT_STATES="${INIT_STATES:-test}"
RUNS="${RUNS:-runs/$NAME}"; DATA="${DATA:-data/goal50}"; DATA10="${DATA10:-data/mini_goal}"
# score POLICY LABEL: closed loop for each trial count, eval_info.json kept as results/$NAME/LABEL_<trials>_<states>/
score() {
  for t in $TRIALS; do
    local out="$1/eval_${INIT_STATES}_$t"
    run python evaluate.py --policy "$1" --env mini --suite mini_goal --trials "$t" --init-states "$INIT_STATES" \
        --out "$out" --workers 2 --videos 0 --resume
    keep "$out/eval_info.json" "${2}_${t}_$INIT_STATES"
  done
}

# the quickstart on 10 demos per task: its VQGAN and extractor serve the 50-demo runs too
demos mini_goal 10 "$DATA10"
Q="$RUNS/q10"
artefacts "$DATA10" "$Q" 800 800
if has q10; then
  run python pretrain_vla.py "${ART[@]}" --out "$Q/pretrain" --tiny --steps 500 --batch-size 16 --log-every 100 --resume
  cft "$Q/cft1500" "$Q/pretrain" 1500
  cft "$Q/cft3000" "$Q/pretrain" 3000
  TRIALS="${TRIALS%% *}" score "$Q/cft1500" q10_cft1500
  TRIALS="${TRIALS%% *}" score "$Q/cft3000" q10_cft3000
fi

# 50 demos per task: tokenizers refit; the quickstart's VQGAN and extractor re-applied
demos mini_goal 50 "$DATA"
R="$RUNS/g50"
reapply "$DATA" "$R" "$Q/vqgan" "$Q/extractor"
if has tiny || has cft7k; then
  run python pretrain_vla.py "${ART[@]}" --out "$R/pretrain" --tiny --steps 1000 --batch-size 16 --log-every 250 --resume
  cft "$R/cft4000" "$R/pretrain" 4000
  if has tiny; then score "$R/cft4000" g50_cft4000; fi
fi
if has cft7k; then  # resumed to 7000: the cosine schedule is then taken over 7000 steps
  done_ "$R/cft7000" || run cp -r "$R/cft4000" "$R/cft7000"
  cft "$R/cft7000" "$R/pretrain" 7000
  score "$R/cft7000" g50_cft7000
  run python experiments/offline.py --policy "$R/cft7000" --data "$DATA"
fi
if has w256; then
  run python pretrain_vla.py "${ART[@]}" --out "$R/w256/pretrain" --tiny --width 256 --steps 800 --batch-size 16 \
      --log-every 250 --resume
  cft "$R/w256/cft2000" "$R/w256/pretrain" 2000
  score "$R/w256/cft2000" g50_w256_cft2000
fi
if has nopretrain; then
  cft "$R/nopretrain/cft4000" none 4000
  score "$R/nopretrain/cft4000" g50_nopretrain_cft4000
fi
