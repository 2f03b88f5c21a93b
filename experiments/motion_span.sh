#!/usr/bin/env bash
# Eq. (3)'s motion target: the window's own span (default) vs the extractor's 100-step clip (--motion-span clip).
# Same data, artefacts, pre-training and seeds for both; scored on VALIDATION start states (--init-states val),
# so the choice is not made on the test init states. Resumable: re-running skips finished stages.
#   bash experiments/motion_span.sh                 # the quickstart's tiny recipe on mini_goal (~50 CPU min a seed)
# Knobs: SUITE, DEMOS, SEEDS ("0 1"), TRIALS (val trials per task), RUNS, DATA, COFINETUNE_STEPS.
# `DRY_RUN=1 bash experiments/motion_span.sh` lists the commands without running them.
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL="${MUJOCO_GL:-egl}"
SUITE="${SUITE:-mini_goal}"; DEMOS="${DEMOS:-10}"; SEEDS="${SEEDS:-0 1}"; TRIALS="${TRIALS:-20}"
DATA="${DATA:-data/$SUITE}"; RUNS="${RUNS:-runs/motion_span}"; STEPS="${COFINETUNE_STEPS:-1500}"
source experiments/common.sh

demos "$SUITE" "$DEMOS" "$DATA"
artefacts "$DATA" "$RUNS" 800 800   # the quickstart's VQGAN and extractor steps
run python pretrain_vla.py "${ART[@]}" --out "$RUNS/pretrain" --tiny --steps 500 --batch-size 16 --log-every 100 --resume
for seed in $SEEDS; do
  for span in window clip; do
    out="$RUNS/cft_${span}_s$seed"
    run python cofinetune.py "${ART[@]}" --out "$out" --init-from "$RUNS/pretrain" --tiny --steps "$STEPS" \
        --batch-size 16 --log-every 250 --seed "$seed" --motion-span "$span" --resume
    run python evaluate.py --policy "$out" --env mini --suite "$SUITE" --trials "$TRIALS" --init-states val \
        --out "$out/eval_val" --workers 2 --videos 0 --resume
  done
done
# the table (reads the evaluations: not in a dry run)
[ "${DRY_RUN:-0}" = 1 ] || run python - "$RUNS" "$SEEDS" <<'PY'
import json, sys
from pathlib import Path
runs, seeds = Path(sys.argv[1]), sys.argv[2].split()
print("| motion target | seed | val success | episodes |\n|---|---|---|---|")
for span in ("window", "clip"):
    for s in seeds:
        o = json.loads((runs / f"cft_{span}_s{s}" / "eval_val" / "eval_info.json").read_text())["overall"]
        print(f"| {span} | {s} | {o['pc_success']:.1f}% | {o['success']}/{o['n']} |")
PY
