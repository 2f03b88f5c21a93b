#!/usr/bin/env bash
# CoWVLA quickstart: the whole pipeline, tiny, on the embedded MuJoCo benchmark (sim.py), on a CPU.
#   data -> tokenizers (FAST, text, VQGAN) -> Latent Motion Extractor (Sec. 3.2) -> pre-training in
#   latent motion (Sec. 3.3) -> co-fine-tuning (Sec. 3.4) -> closed-loop evaluation (LIBERO protocol).
# Every stage writes to $RUNS/<stage>; re-running resumes finished stages from their checkpoints.
# Knobs (environment variables): SUITE (all), DEMOS per task (10), TRIALS per task (2), RUNS, DATA,
#   steps per stage VQGAN_STEPS / EXTRACTOR_STEPS / PRETRAIN_STEPS / COFINETUNE_STEPS, and
#   EVAL_MAX_STEPS (a shorter episode budget than the suite's, for smoke tests only).
set -euo pipefail
cd "$(dirname "$0")"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
SUITE="${SUITE:-all}"; DEMOS="${DEMOS:-10}"; TRIALS="${TRIALS:-2}"
DATA="${DATA:-data/mini}"; RUNS="${RUNS:-runs/quickstart}"
ART=(--data "$DATA" --tokenizers "$RUNS/tokenizers" --vqgan "$RUNS/vqgan" --extractor "$RUNS/extractor")
start=$(date +%s)
stage() { echo; echo "=== [$(( $(date +%s) - start ))s] $*"; }

stage "1/8 embedded benchmark demonstrations ($SUITE, $DEMOS per task)"
[ -d "$DATA" ] || python sim.py generate --suite "$SUITE" --demos-per-task "$DEMOS" --out "$DATA" --workers 2
python data.py inspect "$DATA" | sed -n 1,8p  # not head: under pipefail a closed pipe ends the script

stage "2/8 FAST + text tokenizers"
python tokenizers.py fit --data "$DATA" --out "$RUNS/tokenizers"

stage "3/8 VQGAN keyframe tokenizer (tiny, 64²)"
python tokenizers.py train-vqgan --data "$DATA" --out "$RUNS/vqgan" --tiny --steps "${VQGAN_STEPS:-1000}" \
    --ckpt-every 500 --log-every 250 --resume
python tokenizers.py cache --data "$DATA" --vqgan "$RUNS/vqgan"

stage "4/8 Latent Motion Extractor (tiny, 32², f = 16) + z_m export"
python train_extractor.py --data "$DATA" --out "$RUNS/extractor" --tiny --steps "${EXTRACTOR_STEPS:-800}" \
    --val-every 400 --log-every 200 --resume

stage "5/8 pre-training in latent motion (Eq. 2)"
python pretrain_vla.py "${ART[@]}" --out "$RUNS/pretrain" --tiny --steps "${PRETRAIN_STEPS:-500}" \
    --batch-size 16 --log-every 100 --resume

stage "6/8 co-fine-tuning (Eq. 3)"
python cofinetune.py "${ART[@]}" --out "$RUNS/cofinetune" --init-from "$RUNS/pretrain" --tiny \
    --steps "${COFINETUNE_STEPS:-800}" --batch-size 16 --log-every 250 --resume

stage "7/8 tokenizer report"
python tokenizers.py report --data "$DATA" --tokenizers "$RUNS/tokenizers" --vqgan "$RUNS/vqgan"

stage "8/8 closed-loop evaluation ($TRIALS trials per task)"
python evaluate.py --policy "$RUNS/cofinetune" --env mini --suite "$SUITE" --trials "$TRIALS" \
    --out "$RUNS/eval" --workers 2 --resume ${EVAL_MAX_STEPS:+--max-steps $EVAL_MAX_STEPS}
echo "quickstart finished in $(( $(date +%s) - start )) s; results in $RUNS/eval/results.md"
