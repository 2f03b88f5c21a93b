#!/usr/bin/env bash
# Real LIBERO on the 2-core CPU, one suite (docs/results.md, "Real LIBERO on a CPU"): scripted demonstrations
# generated in the real simulator, every stage trained in the CPU config the embedded benchmark chose (its
# best recipe: 100 demos per task there, width-256 decoder, proprio state tokens, VQGAN 1500 / extractor 800 /
# pre-training 1000 / co-fine-tuning 4000 steps), then scored under the official protocol (evaluate.py --env
# libero: 10 no-op settling steps, the suite's step budget, success = the BDDL goal).
# Selection rule: variants are compared on VALIDATION start states (placements apart from the demos and the
# official init states; VAL_TRIALS per task); TEST=1 then scores the chosen recipe once on official init
# states 0..TRIALS-1, with the zero-action baseline beside it.
# Needs the real-LIBERO extra (requirements-libero.txt, docs/libero.md). Resumable stage by stage: a finished
# task's demo file, a trained stage and finished episodes are kept, so re-running continues where it stopped.
#   bash experiments/libero_cpu.sh libero_object              # generation, training, validation
#   TEST=1 bash experiments/libero_cpu.sh libero_object       # + the official init states 0-9, once, the
#                                                             # offline error on held-out demos, GIFs
#   SUBSET=20 bash experiments/libero_cpu.sh libero_object    # the same recipe on the first 20 demos per task
#                                                             # of the same generation (data scaling), own runs
#   VARIANTS=1 bash experiments/libero_cpu.sh libero_object   # + evaluation-time variants on validation states
#                                                             # (constrained decoding; re-planning every 5, 2, 3
#                                                             # steps; no history)
# Knobs: DEMOS (50 per task), VAL_TRIALS (5; 0 = none), TRIALS (10), SEEDS ("1"), VQGAN_STEPS, EXTRACTOR_STEPS,
#   PRETRAIN_STEPS, COFINETUNE_STEPS, VLA_FLAGS ("--tiny --width 256"), CFT_FLAGS ("--proprio"), DATA, RUNS,
#   WORKERS (2), TEST, SUBSET, VARIANTS, TRAIN_TRIALS (0; N: also the demos' own start states 0..N-1, a
#   diagnostic of success where the policy was trained, evaluate.py --init-states train; DIVERGENCE (0; N: then
#   experiments/demo_divergence.py on the first N of those episodes per task: where each leaves its demo), NAME (libero_cpu_<suite>: results/$NAME, runs/$NAME), GIFS (1),
#   ZERO_BASELINE (1; 0 where the same states' baseline is committed already), EVAL_FLAGS (the evaluation
#   flags of validation and test, chosen on validation; VARIANTS compares against the run without them), GEN_FLAGS (more `envs.libero generate`
#   flags, e.g. "--give-up-after 3" where a task the expert fails would cost 10 long episodes).
# Wall time per stage, from the log's `stage:` stamps: python experiments/stage_times.py LOG
# One session (1 h 51 min from nothing, libero_goal 2026-12-02): DEMOS=20 VQGAN_STEPS=1000 EXTRACTOR_STEPS=500
#   PRETRAIN_STEPS=500 COFINETUNE_STEPS=2000 VAL_TRIALS=0 TEST=1 EVAL_FLAGS="--replan 5" (chosen on
#   libero_object's validation states). libero_spatial renders slower: one session (1 h 57 min, 2026-12-03) fits
#   DEMOS=6 VQGAN_STEPS=1000 EXTRACTOR_STEPS=500 PRETRAIN_STEPS=500 COFINETUNE_STEPS=1500 VAL_TRIALS=0 TEST=1
#   (generation 32 min at 41-69 s per demo per worker; 0/100 at that size), 10 demos per task does not (80.5 min
#   of generation on 2026-12-02, ~2 h 20 min before the first evaluation).
# libero_10 (520-step budget, two sub-goals): one session (1 h 17 min, 2026-12-03) at DEMOS=4 VQGAN_STEPS=1000
#   EXTRACTOR_STEPS=500 PRETRAIN_STEPS=500 COFINETUNE_STEPS=1000 VAL_TRIALS=0 TEST=1 GEN_FLAGS="--give-up-after 3"
#   (0/100 at that size; SUBSET=2 with the same knobs is the data-scaling arm on its generation).
# Data scaling on libero_object: the default recipe (50 demos) against NAME=libero_cpu_object_gen20 DEMOS=20
#   VAL_TRIALS=0 TEST=1 GIFS=0 ZERO_BASELINE=0 (every other knob the same; one session, 2026-12-03).
# The arm's start pose (2026-12-04): demo placements and validation states now start the arm with the official
#   init states' joint noise (envs.libero INIT_NOISE, docs/libero.md); the runs listed above, and their
#   validation numbers, started every demo and validation state from one fixed pose (GEN_FLAGS="--init-noise 0"
#   gives their demos; their validation states are no longer drawn). Measured with the noise: NAME=
#   libero_cpu_object_gen20_noise DEMOS=20 VAL_TRIALS=5 TEST=1 GIFS=0 ZERO_BASELINE=0 (the 20-demo recipe).
# All 50 official init states in one session (libero_object, 2026-12-07): libero_goal's one-session knobs,
#   NAME=libero_cpu_object_1session DEMOS=20 VQGAN_STEPS=1000 EXTRACTOR_STEPS=500 PRETRAIN_STEPS=500
#   COFINETUNE_STEPS=2000 VAL_TRIALS=5 GIFS=0 ZERO_BASELINE=0, first without TEST (validation), then the same with
#   EVAL_FLAGS="--replan 5" (the second variant on validation), then TEST=1 TRIALS=50 with the chosen EVAL_FLAGS.
# Variants of that run on its validation states (2026-12-07; same data, artefacts and pre-training):
#   COFINETUNE_STEPS=1000 CFT_TAG=c1000 (1000 steps, into cft_s1_c1000), MORE_STEPS=2000 (2000 more steps from
#   the finished run, a second cosine cycle at MORE_LR=5e-4, into cft_s1_more), SEEDS=2 — each with
#   EVAL_FLAGS="--replan 5".
# ENSEMBLE=1 with SEEDS="1 2": the seeds' runs decoded as one ensemble (ens_s1s2), validation and (TEST=1) test;
#   the seeds themselves get validation only. The one-session libero_object run's ensemble (2026-12-07): its
#   command above with SEEDS="1 2" ENSEMBLE=1 EVAL_FLAGS="--replan 5", then TEST=1 TRIALS=50.
# libero_goal's ensemble (2026-12-07; whole chunks, chosen on libero_goal's validation states 2026-12-02; the
#   ensemble chosen on libero_object's): NAME=libero_cpu_goal_ens DEMOS=20 VQGAN_STEPS=1000 EXTRACTOR_STEPS=500
#   PRETRAIN_STEPS=500 COFINETUNE_STEPS=2000 VAL_TRIALS=0 GIFS=0 ZERO_BASELINE=0 SEEDS="1 2" ENSEMBLE=1 TEST=1
#   GEN_FLAGS="--give-up-after 3"; VAL_TRIALS=5 without TEST then adds the validation numbers. Seed 1 alone was
#   tested first (the same knobs with SEEDS=1, no ENSEMBLE: 22/100) while seed 2 waited to train; the
#   ensemble then scored 15/100.
# libero_spatial at 20 demos per task (2026-12-07; the one-session knobs, so the data size is what differs from
#   the 6-demo run): NAME=libero_cpu_spatial_gen20 DEMOS=20 VQGAN_STEPS=1000 EXTRACTOR_STEPS=500
#   PRETRAIN_STEPS=500 COFINETUNE_STEPS=2000 GIFS=0 ZERO_BASELINE=0 SEEDS=1
#   GEN_FLAGS="--give-up-after 3", with VAL_TRIALS=5 (whole chunks: 1/50), then also EVAL_FLAGS="--replan 5"
#   (1/50; a tie keeps whole chunks, the rule fixed before), then VAL_TRIALS=0 TEST=1: 5/100 (about 3 h in all).
# libero_10 at 20 demos per task (2026-12-07; the same one-session knobs, whole chunks as at 4 demos, no variant
#   compared): NAME=libero_cpu_10_gen20 DEMOS=20 VQGAN_STEPS=1000 EXTRACTOR_STEPS=500 PRETRAIN_STEPS=500
#   COFINETUNE_STEPS=2000 VAL_TRIALS=0 GIFS=0 ZERO_BASELINE=0 SEEDS=1 TEST=1 GEN_FLAGS="--give-up-after 3
#   --max-attempts 16" (the cap, added after tasks 0-6 were done, stopped task 7 at 16 demos; task 8 given up).
# The training-states diagnostic (2026-12-07, libero_goal; the 22/100 recipe from a bare machine, co-fine-tuning
#   cut to 1000 steps and 2 states per task to fit one session): NAME=libero_cpu_goal_rerun DEMOS=20
#   VQGAN_STEPS=1000 EXTRACTOR_STEPS=500 PRETRAIN_STEPS=500 COFINETUNE_STEPS=1000 VAL_TRIALS=2 TRAIN_TRIALS=2
#   GIFS=0 ZERO_BASELINE=0 SEEDS=1 GEN_FLAGS="--give-up-after 3" (no test; run as the two evaluations side by
#   side, OMP_NUM_THREADS=1 and --workers 1 each, after the script's co-fine-tuning).
set -euo pipefail
{ # the whole script is read before it runs, so editing it during a long run cannot change that run
cd "$(dirname "$0")/.."
source experiments/common.sh
SUITE="${1:-${SUITE:-libero_object}}"   # libero_spatial | libero_object | libero_goal | libero_10
NAME="${NAME:-libero_cpu_${SUITE#libero_}}"   # another name keeps a second recipe's results apart
DEMOS="${DEMOS:-50}"; VAL_TRIALS="${VAL_TRIALS:-5}"; TRIALS="${TRIALS:-10}"; SEEDS="${SEEDS:-1}"
WORKERS="${WORKERS:-2}"
if [ "${ENSEMBLE:-0}" = 1 ] && [ "$(wc -w <<< "$SEEDS")" -lt 2 ]; then   # refused before any work is done
  echo "ENSEMBLE=1 needs two or more SEEDS, got '$SEEDS'" >&2; exit 2
fi
GEN="${DATA:-data/${SUITE}_gen$DEMOS}"; DATA="$GEN"
if [ -n "${SUBSET:-}" ]; then NAME="${NAME}_d$SUBSET"; DATA="${GEN}_first$SUBSET"; fi
RUNS="${RUNS:-runs/$NAME}"
# what depends on the data size goes under $RUNS; the zero-action baseline does not, so a SUBSET run shares
# (and resumes) the full run's episodes, and its GIFs get their own name beside the full run's
ZERO="$RUNS/zero"; if [ -n "${SUBSET:-}" ]; then ZERO="${RUNS%_d$SUBSET}/zero"; fi
GIF="docs/${SUITE}${NAME#libero_cpu_${SUITE#libero_}}"   # docs/libero_object[_gen20][_d10]
read -ra GENF <<< "${GEN_FLAGS:-}"
read -ra VLA <<< "${VLA_FLAGS---tiny --width 256}"; read -ra CFT <<< "${CFT_FLAGS---proprio}"  # "" = none
# the chosen evaluation flags (e.g. "--replan 5", chosen on validation); outputs tagged "replan5"
read -ra EV <<< "${EVAL_FLAGS:-}"; TAG="$(echo "${EVAL_FLAGS:-}" | tr -d ' -')"
stamp() { run date -u +"%F %T stage: $1"; }   # the log's wall times per stage come from these lines

# 1. demonstrations from training placements (never an evaluation state); a finished task's file is kept
stamp generation
# a task the expert cannot do is left out (--skip-unsupported: libero_10 task 9) and one it does short of DEMOS
# ends generation with status 1 after its report is written: both are named in the log, and the run goes on
done_ "$GEN/libero_sim_report.json" || run python -m envs.libero generate --suite "$SUITE" \
    --demos-per-task "$DEMOS" --out "$GEN" --workers "$WORKERS" --skip-unsupported "${GENF[@]}" \
    || [ -e "$GEN/libero_sim_report.json" ]
if [ -n "${SUBSET:-}" ]; then   # nested subsets of one generation: only the number of demos differs
  done_ "$DATA" || run python data.py subset "$GEN" --out "$DATA" --demos-per-task "$SUBSET"
fi
# 2. tokenizers, VQGAN + keyframe cache, extractor + z_m exports (common.sh)
stamp artefacts
artefacts "$DATA" "$RUNS" "${VQGAN_STEPS:-1500}" "${EXTRACTOR_STEPS:-800}"
# 3. pre-training (Sec. 3.3) and co-fine-tuning (Sec. 3.4) per seed
stamp pretraining
trained "$RUNS/pretrain" "${PRETRAIN_STEPS:-1000}" || run python pretrain_vla.py "${ART[@]}" --out "$RUNS/pretrain" \
    "${VLA[@]}" --steps "${PRETRAIN_STEPS:-1000}" --batch-size 16 --log-every 250 --resume
# evaluate_into DIR POLICY STATES N [TAG evaluate flags]: N trials per task from STATES into DIR/eval_STATES[_TAG],
# eval_info.json kept as results/$NAME/<DIR's name>_STATES[_TAG]; evaluate POLICY ...: DIR = POLICY
evaluate_into() {
  local dir="$1" policy="$2" states="$3" n="$4" tag="${5:+_$5}"; shift 4; shift $(( $# > 0 ))
  run python evaluate.py --policy "$policy" --env libero --suite "$SUITE" --trials "$n" --init-states "$states" \
      --out "$dir/eval_$states$tag" --workers "$WORKERS" --videos 0 --resume "$@"
  keep "$dir/eval_$states$tag/eval_info.json" "$(basename "$dir")_$states$tag"
}
evaluate() { evaluate_into "$1" "$@"; }
MEMBERS=()   # every seed's final run, for ENSEMBLE
for seed in $SEEDS; do
  out="$RUNS/cft_s$seed${CFT_TAG:+_$CFT_TAG}"   # CFT_TAG: a second step count beside the first, same pre-training
  stamp "co-fine-tuning seed $seed"
  trained "$out" "${COFINETUNE_STEPS:-4000}" || run python cofinetune.py "${ART[@]}" --out "$out" \
      --init-from "$RUNS/pretrain" "${VLA[@]}" --steps "${COFINETUNE_STEPS:-4000}" --batch-size 16 \
      --log-every 500 --seed "$seed" --resume "${CFT[@]}"
  if [ "${MORE_STEPS:-0}" -gt 0 ]; then   # a second cosine cycle from the finished run (a warm restart at
    # peak lr MORE_LR; not in the paper: it lets a session that trained 2000 steps add more without starting
    # over); validation and test then score the continued run, cft_s<seed>_more
    stamp "co-fine-tuning continued seed $seed"
    trained "${out}_more" "$MORE_STEPS" || run python cofinetune.py "${ART[@]}" --out "${out}_more" \
        --init-from "$out" "${VLA[@]}" --steps "$MORE_STEPS" --batch-size 16 --lr "${MORE_LR:-5e-4}" \
        --log-every 500 --seed "$seed" --resume "${CFT[@]}"
    out="${out}_more"
  fi
  if [ "$VAL_TRIALS" -gt 0 ]; then   # 0: no validation run (flags chosen on another suite's validation)
    stamp "validation seed $seed"
    evaluate "$out" val "$VAL_TRIALS" "$TAG" "${EV[@]}"
  fi
  if [ "${TRAIN_TRIALS:-0}" -gt 0 ]; then   # a diagnostic: the demos' own start states (attempts 0..N-1; held-out
    stamp "training states seed $seed"      # demos are every 10th, so N <= 9 are all trained on where attempts succeeded)
    evaluate "$out" train "$TRAIN_TRIALS" "$TAG" "${EV[@]}"
    if [ "${DIVERGENCE:-0}" -gt 0 ]; then   # and where the first N of those rollouts per task leave the demo of
      div="$out/divergence_train${TAG:+_$TAG}"   # their start state (about 1 min per episode on 2 cores)
      done_ "$div/demo_divergence.md" || run python experiments/demo_divergence.py "$out/eval_train${TAG:+_$TAG}" \
          --demos "$DATA" --per-task "$DIVERGENCE" --out "$div"
      for f in demo_divergence.md demo_divergence.json; do keep "$div/$f" "$(basename "$out")_train${TAG:+_$TAG}_divergence"; done
    fi
  fi
  if [ "${VARIANTS:-0}" = 1 ]; then   # evaluation-time variants of the same weights, compared on validation
    stamp "validation variants seed $seed"
    evaluate "$out" val "$VAL_TRIALS" constrained --decoding constrained   # FAST's grammar enforced
    evaluate "$out" val "$VAL_TRIALS" replan5 --replan 5                    # half of each chunk, no history
    evaluate "$out" val "$VAL_TRIALS" history0 --history 0                  # whole chunks, no history
    evaluate "$out" val "$VAL_TRIALS" replan3 --replan 3
    evaluate "$out" val "$VAL_TRIALS" replan2 --replan 2                    # a fifth of each chunk: 2.5x slower
  fi
  MEMBERS+=("$out")
  if [ "${TEST:-0}" = 1 ] && [ "${ENSEMBLE:-0}" != 1 ]; then   # ENSEMBLE=1: the ensemble below is tested instead
    stamp "test seed $seed"; evaluate "$out" test "$TRIALS" "$TAG" "${EV[@]}"
    # what limits it: open-loop error on the held-out demos, with and without the right instruction
    stamp "offline seed $seed"
    done_ "$out/offline.md" || run python experiments/offline.py --policy "$out" --data "$DATA" --held-out \
        --episodes 20 --other-instructions --out "$out/offline.md"
    keep "$out/offline.md" "$(basename "$out")_offline"
    # rollout GIFs, the imagined keyframe beside the real one: trial 0 (official init state 0) of every task
    [ "${GIFS:-1}" = 1 ] || continue   # GIFS=0: a second recipe on a suite that has its GIFs already
    stamp "gifs seed $seed"
    run python evaluate.py --policy "$out" --env libero --suite "$SUITE" --trials 1 --init-states test \
        --out "$out/gifs_test${TAG:+_$TAG}" --workers "$WORKERS" --videos 99 --imagine --resume "${EV[@]}"
    # a success and a failure, small enough to commit (every 4th frame): docs/<suite>[_d<SUBSET>]_{success,failure}.gif
    run python experiments/shrink_gif.py --pick "$out/gifs_test${TAG:+_$TAG}" "$GIF" --every 4 || true
    # no success among the trial-0 GIFs: the first successful test episode, recorded alone (deterministic:
    # the same outcome as in the test run) -> docs/<suite>[_d<SUBSET>]_success.gif
    if [ "${DRY_RUN:-0}" = 1 ] || [ -z "$(python experiments/shrink_gif.py --first-success "$out/gifs_test${TAG:+_$TAG}" -)" ]; then
      read -ra FIRST <<< "$(done_ "$out/eval_test${TAG:+_$TAG}" && python experiments/shrink_gif.py \
          --first-success "$out/eval_test${TAG:+_$TAG}" -)"
      if [ "${DRY_RUN:-0}" = 1 ] || [ ${#FIRST[@]} -gt 0 ]; then
        run python evaluate.py --policy "$out" --env libero --suite "$SUITE" --init-states test "${FIRST[@]}" \
            --out "$out/gifs_success${TAG:+_$TAG}" --workers "$WORKERS" --videos 1 --imagine --resume "${EV[@]}"
        run python experiments/shrink_gif.py --pick "$out/gifs_success${TAG:+_$TAG}" "$GIF" --every 4
      fi
    fi
  fi
done
if [ "${ENSEMBLE:-0}" = 1 ]; then   # the seeds' runs decoded as one policy (evaluate.py --policy A,B; cofinetune.py
  # deviation [seed-ensemble], not in the paper) into $RUNS/ens_s<seeds>, e.g. ens_s1s2: validation, and with TEST=1
  # the official init states (no per-seed test, no offline error or GIFs for the ensemble)
  ENS="$RUNS/ens_$(printf 's%s' $SEEDS)"; POLICY="$(IFS=,; echo "${MEMBERS[*]}")"
  run mkdir -p "$ENS"
  if [ "$VAL_TRIALS" -gt 0 ]; then stamp "validation ensemble"; evaluate_into "$ENS" "$POLICY" val "$VAL_TRIALS" "$TAG" "${EV[@]}"; fi
  if [ "${TEST:-0}" = 1 ]; then stamp "test ensemble"; evaluate_into "$ENS" "$POLICY" test "$TRIALS" "$TAG" "${EV[@]}"; fi
fi
if [ "${TEST:-0}" = 1 ] && [ "${ZERO_BASELINE:-1}" = 1 ]; then   # the zero-action baseline on the same official states (physics only: it reads no image)
  stamp "zero-action baseline"
  run mkdir -p "$ZERO"
  run python evaluate.py --policy zero --env libero --suite "$SUITE" --trials "$TRIALS" --init-states test \
      --out "$ZERO/eval_test" --workers "$WORKERS" --videos 0 --resume
  keep "$ZERO/eval_test/eval_info.json" zero_test
fi
stamp done
exit
}
