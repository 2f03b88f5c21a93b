#!/usr/bin/env bash
# CoWVLA quickstart: the whole pipeline, tiny, on the embedded MuJoCo benchmark (envs/mini), on a CPU.
#   data -> tokenizers (FAST, text, VQGAN) -> Latent Motion Extractor (Sec. 3.2) -> pre-training in
#   latent motion (Sec. 3.3) -> co-fine-tuning (Sec. 3.4) -> closed-loop evaluation (LIBERO protocol).
# Every stage writes to $RUNS/<stage>; re-running resumes finished stages from their checkpoints.
# Knobs (environment variables): SUITE (mini_goal; `all` for the four suites), DEMOS per task (10),
#   TRIALS per task (10), DATA (data/<suite>), RUNS (runs/quickstart/<suite>), steps per stage
#   VQGAN_STEPS / EXTRACTOR_STEPS / PRETRAIN_STEPS / COFINETUNE_STEPS, and EVAL_MAX_STEPS (a shorter
#   episode budget than the suite's, for smoke tests only).
# The default is one suite so that the 30 CPU minutes go into co-fine-tuning (docs/results.md, "The quickstart").
set -euo pipefail
cd "$(dirname "$0")"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
SUITE="${SUITE:-mini_goal}"; DEMOS="${DEMOS:-10}"; TRIALS="${TRIALS:-10}"
DATA="${DATA:-data/${SUITE//,/+}}"; RUNS="${RUNS:-runs/quickstart/${SUITE//,/+}}"
ART=(--data "$DATA" --tokenizers "$RUNS/tokenizers" --vqgan "$RUNS/vqgan" --extractor "$RUNS/extractor")
start=$(date +%s)
stage() { echo; echo "=== [$(( $(date +%s) - start ))s] $*"; }

# Re-runs resume: refuse a DATA generated for another SUITE/DEMOS, or a RUNS trained on other data, rather
# than silently training on stale demonstrations or reusing stale stages.
python - "$DATA" "$RUNS" "$SUITE" "$DEMOS" <<'PY'
import json, sys
from pathlib import Path
data, runs, suite, demos = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
report = data / "sim_report.json"
if report.exists():
    cfg = json.loads(report.read_text())["config"]
    if (cfg["suite"], cfg["demos_per_task"]) != (suite, demos):
        sys.exit(f"quickstart: {data} holds {cfg['demos_per_task']} demos per task of {cfg['suite']}, not "
                 f"{demos} of {suite}; set DATA and RUNS to new folders or remove {data}")
want = {"data": str(data.resolve()), "suite": suite, "demos_per_task": demos}
stamp = runs / "quickstart_data.json"
if stamp.exists() and json.loads(stamp.read_text()) != want:
    sys.exit(f"quickstart: {runs} was trained on {json.loads(stamp.read_text())}, not {want}; "
             f"set RUNS to a new folder or remove {runs}")
runs.mkdir(parents=True, exist_ok=True)
stamp.write_text(json.dumps(want))
PY

stage "1/8 embedded benchmark demonstrations ($SUITE, $DEMOS per task)"
[ -d "$DATA" ] || python -m envs.mini generate --suite "$SUITE" --demos-per-task "$DEMOS" --out "$DATA" --workers 2
python data.py inspect "$DATA" | sed -n 1,8p  # not head: under pipefail a closed pipe ends the script

stage "2/8 FAST + text tokenizers"
python tokenizers.py fit --data "$DATA" --out "$RUNS/tokenizers"

stage "3/8 VQGAN keyframe tokenizer (tiny, 64²)"
python tokenizers.py train-vqgan --data "$DATA" --out "$RUNS/vqgan" --tiny --steps "${VQGAN_STEPS:-800}" \
    --ckpt-every 400 --log-every 200 --resume
python tokenizers.py cache --data "$DATA" --vqgan "$RUNS/vqgan"

stage "4/8 Latent Motion Extractor (tiny, 32², f = 16) + z_m export"
python train_extractor.py --data "$DATA" --out "$RUNS/extractor" --tiny --steps "${EXTRACTOR_STEPS:-800}" \
    --val-every 400 --log-every 200 --resume

stage "5/8 pre-training in latent motion (Eq. 2)"
python pretrain_vla.py "${ART[@]}" --out "$RUNS/pretrain" --tiny --steps "${PRETRAIN_STEPS:-500}" \
    --batch-size 16 --log-every 100 --resume

stage "6/8 co-fine-tuning (Eq. 3)"
python cofinetune.py "${ART[@]}" --out "$RUNS/cofinetune" --init-from "$RUNS/pretrain" --tiny \
    --steps "${COFINETUNE_STEPS:-1500}" --batch-size 16 --log-every 250 --resume

stage "7/8 tokenizer report"
python experiments/tokenizer_report.py --data "$DATA" --tokenizers "$RUNS/tokenizers" --vqgan "$RUNS/vqgan"

stage "8/8 closed-loop evaluation ($TRIALS trials per task)"
python evaluate.py --policy "$RUNS/cofinetune" --env mini --suite "$SUITE" --trials "$TRIALS" \
    --out "$RUNS/eval" --workers 2 --resume ${EVAL_MAX_STEPS:+--max-steps $EVAL_MAX_STEPS}
echo "quickstart finished in $(( $(date +%s) - start )) s; results in $RUNS/eval/results.md"
