#!/usr/bin/env bash
# Does `evaluate.py --gripper-hold` (a weak decoded gripper command, |g| < 0.5, executes as the last firm one;
# deviation [gripper-hold]) help a trained real-LIBERO policy? Both arms run on the same VALIDATION start states
# with the same policy and flags, in the same code, so the pair differs by the hold alone (docs/results.md,
# "Gripper hold on validation states"). No test states: a winner is scored on them once, by its own command.
#   bash experiments/gripper_hold.sh SUITE POLICY [evaluate flags]
#   bash experiments/gripper_hold.sh libero_object \
#       runs/libero_cpu_object_1session/cft_s1,runs/libero_cpu_object_1session/cft_s2 --replan 5   # (no arguments)
# POLICY: a co-fine-tuned run (or runs A,B: an ensemble) that experiments/libero_cpu.sh trained. Outputs:
# POLICY_DIR/eval_val_hold_{off,on}[_TAG] (POLICY_DIR: the run, or for an ensemble the libero_cpu.sh folder
# ens_s<seeds> beside its members), eval_info.json copied to results/$NAME/; then a per-task table.
# Knobs: VAL_TRIALS (5), WORKERS (2), NAME (results/<NAME>; default: the run's parent folder's name).
set -euo pipefail
{
cd "$(dirname "$0")/.."
source experiments/common.sh
if [ $# -eq 0 ]; then   # the first pair measured: libero_object's tested ensemble, --replan 5
  set -- libero_object runs/libero_cpu_object_1session/cft_s1,runs/libero_cpu_object_1session/cft_s2 --replan 5; fi
if [ $# -lt 2 ]; then sed -n 2,12p "$0" >&2; exit 2; fi
SUITE="$1"; POLICY="$2"; shift 2
VAL_TRIALS="${VAL_TRIALS:-5}"; WORKERS="${WORKERS:-2}"
FIRST="${POLICY%%,*}"; PARENT="$(dirname "$FIRST")"
NAME="${NAME:-$(basename "$PARENT")}"
if [ "$FIRST" = "$POLICY" ]; then DIR="$FIRST"; else   # an ensemble: ens_s1s2 beside cft_s1, cft_s2
  DIR="$PARENT/ens_$(tr ',' '\n' <<< "$POLICY" | sed 's/.*cft_s/s/' | tr -d '\n')"; fi
TAG="$(echo "$*" | tr -d ' -')"
for arm in off on; do
  out="$DIR/eval_val_hold_$arm${TAG:+_$TAG}"
  flags=("$@"); if [ "$arm" = on ]; then flags+=(--gripper-hold); fi
  run python evaluate.py --policy "$POLICY" --env libero --suite "$SUITE" --trials "$VAL_TRIALS" --init-states val \
      --out "$out" --workers "$WORKERS" --videos 0 --resume "${flags[@]}"
  keep "$out/eval_info.json" "$(basename "$DIR")_val_hold_$arm${TAG:+_$TAG}"
done
if [ "${DRY_RUN:-0}" != 1 ]; then
  python - "$DIR/eval_val_hold_off${TAG:+_$TAG}" "$DIR/eval_val_hold_on${TAG:+_$TAG}" <<'EOF'
import json, sys
off, on = (json.load(open(f"{d}/eval_info.json")) for d in sys.argv[1:])
print("| arm | " + " | ".join(f"task {t['task']}" for t in off["per_task"]) + " | all |")
print("|---" * (len(off["per_task"]) + 2) + "|")
for name, info in (("without hold", off), ("--gripper-hold", on)):
    print(f"| {name} | " + " | ".join(str(t["success"]) for t in info["per_task"])
          + f" | {info['overall']['success']}/{info['overall']['n']} |")
EOF
fi
exit
}
