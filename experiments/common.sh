# Sourced by the experiment scripts: the stages every recipe shares, each skipped or resumed when done.
# Every command goes through `run`, which prints it and, unless DRY_RUN=1, runs it: `DRY_RUN=1 bash
# experiments/X.sh` lists what X would run (tests/test_experiments.py parses every listed command).
#
#   demos SUITE DEMOS DATA [generate flags]     scripted demonstrations (envs.mini) unless DATA exists
#   artefacts DATA RUNS VQGAN_STEPS EXTRACTOR_STEPS [extractor flags]
#                                               tokenizers, tiny VQGAN + keyframe cache, tiny extractor (z_m
#                                               over its 100-step span and co-fine-tuning's 20-step window);
#                                               sets ART, the artefact flags of the VLA stages
#   recipe                                      demos -> artefacts -> pre-training -> co-fine-tuning per seed
#                                               -> evaluation, from the variables below; copies each
#                                               eval_info.json to results/$NAME/
#   has, score, reapply, pretrain, cft, tiny, raw  the pieces scripts with several arms compose (each
#                                               documented above its definition)
# recipe's variables (each script sets its own; the environment overrides): NAME, SUITE, DEMOS, DATA, RUNS,
#   GEN_FLAGS, VQGAN_STEPS, EXTRACTOR_STEPS, PRETRAIN_STEPS, COFINETUNE_STEPS, VLA_FLAGS (both VLA stages:
#   size/width), CFT_FLAGS, SEEDS, TRIALS, INIT_STATES (test | val), EVAL_FLAGS.
export MUJOCO_GL="${MUJOCO_GL:-egl}"

run() {
  printf '+'; printf ' %q' "$@"; printf '\n'   # quoted as bash would read it back
  if [ "${DRY_RUN:-0}" != 1 ]; then "$@"; fi
}

# the one place a stage is skipped: its output exists (never in a dry run, which lists every stage)
done_() { [ "${DRY_RUN:-0}" != 1 ] && [ -e "$1" ]; }
# trained DIR STEPS: a training run reached STEPS (its config.json, rewritten with every checkpoint, says so);
# skipping it saves the minutes a --resume spends loading the data only to find nothing left to do
trained() {
  done_ "$1/config.json" && python -c "import json, sys; sys.exit(json.load(open(sys.argv[1])).get('step', 0) < int(sys.argv[2]))" "$1/config.json" "$2"
}

demos() {
  local suite="$1" n="$2" data="$3"; shift 3
  # sim_report.json is written last: a folder without it is an interrupted generation, generated again
  done_ "$data/sim_report.json" || run python -m envs.mini generate --suite "$suite" --demos-per-task "$n" --out "$data" --workers 2 "$@"
}

artefacts() {
  local data="$1" runs="$2" vqgan_steps="$3" extractor_steps="$4"; shift 4
  done_ "$runs/tokenizers/fast.json" || run python tokenizers.py fit --data "$data" --out "$runs/tokenizers"
  trained "$runs/vqgan" "$vqgan_steps" || run python tokenizers.py train-vqgan --data "$data" --out "$runs/vqgan" \
      --tiny --steps "$vqgan_steps" --ckpt-every 500 --log-every 250 --resume
  done_ "$runs/vqgan/keyframe_ids.hdf5" || run python tokenizers.py cache --data "$data" --vqgan "$runs/vqgan"
  done_ "$runs/extractor/z_m_span20.hdf5" || run python train_extractor.py --data "$data" --out "$runs/extractor" \
      --tiny --steps "$extractor_steps" --val-every 400 --log-every 200 --resume "$@"
  ART=(--data "$data" --tokenizers "$runs/tokenizers" --vqgan "$runs/vqgan" --extractor "$runs/extractor")
}

# keep: copy a run's small outputs (eval_info.json and the like) to results/$NAME/<label>/
keep() {
  local src="$1" label="$2"
  run mkdir -p "results/$NAME/$label"
  run cp "$src" "results/$NAME/$label/"
}

recipe() {
  : "${NAME:?}" "${SUITE:=mini_goal}" "${DEMOS:=100}" "${DATA:=data/${SUITE#mini_}$DEMOS}" "${RUNS:=runs/$NAME}"
  : "${VQGAN_STEPS:=1500}" "${EXTRACTOR_STEPS:=800}" "${PRETRAIN_STEPS:=1000}" "${COFINETUNE_STEPS:=4000}"
  : "${SEEDS:=0}" "${TRIALS:=50}" "${INIT_STATES:=test}"
  local gen=(${GEN_FLAGS:-}) vla=(${VLA_FLAGS:---tiny}) cft=(${CFT_FLAGS:-}) ev=(${EVAL_FLAGS:-})
  demos "$SUITE" "$DEMOS" "$DATA" "${gen[@]}"
  artefacts "$DATA" "$RUNS" "$VQGAN_STEPS" "$EXTRACTOR_STEPS"
  run python pretrain_vla.py "${ART[@]}" --out "$RUNS/pretrain" "${vla[@]}" --steps "$PRETRAIN_STEPS" \
      --batch-size 16 --log-every 250 --resume
  for seed in $SEEDS; do
    local out="$RUNS/cft_s$seed"
    run python cofinetune.py "${ART[@]}" --out "$out" --init-from "$RUNS/pretrain" "${vla[@]}" \
        --steps "$COFINETUNE_STEPS" --batch-size 16 --log-every 500 --seed "$seed" --resume "${cft[@]}"
    run python evaluate.py --policy "$out" --env mini --suite "$SUITE" --trials "$TRIALS" \
        --init-states "$INIT_STATES" --out "$out/eval_$INIT_STATES" --workers 2 --videos 0 --resume "${ev[@]}"
    keep "$out/eval_$INIT_STATES/eval_info.json" "s${seed}_$INIT_STATES"
  done
}

# has ARM: ARM is among $ARMS (the arms a script runs)
has() { [[ " ${ARMS:-} " == *" $1 "* ]]; }

# score POLICY LABEL [evaluate flags]: TRIALS per task on INIT_STATES into POLICY/eval_<states>[_LABEL's flags],
# eval_info.json kept as results/$NAME/LABEL_<states>/
score() {
  local policy="$1" label="$2"; shift 2
  local out="$policy/eval_$INIT_STATES${*:+_$(echo "$*" | tr -d ' -')}"
  run python evaluate.py --policy "$policy" --env mini --suite "${SUITE:-mini_goal}" --trials "$TRIALS" \
      --init-states "$INIT_STATES" --out "$out" --workers 2 --videos 0 --resume "$@"
  keep "$out/eval_info.json" "${label}_$INIT_STATES"
}

# reapply DATA DIR VQGAN EXTRACTOR: tokenizers refit on DATA, and the VQGAN's keyframe cache and the extractor's
# z_m export (a copy of its weights) for DATA, all in DIR; sets ART
reapply() {
  local data="$1" dir="$2" vqgan="$3" ext="$4"
  done_ "$dir/tokenizers/fast.json" || run python tokenizers.py fit --data "$data" --out "$dir/tokenizers"
  done_ "$dir/keyframe_ids.hdf5" || run python tokenizers.py cache --data "$data" --vqgan "$vqgan" \
      --out "$dir/keyframe_ids.hdf5"
  if ! done_ "$dir/extractor/z_m_span20.hdf5"; then
    run mkdir -p "$dir/extractor"
    run cp "$ext/model.safetensors" "$ext/config.json" "$dir/extractor/"
    run python train_extractor.py --data "$data" --out "$dir/extractor" --export-only
  fi
  ART=(--data "$data" --tokenizers "$dir/tokenizers" --vqgan "$vqgan" --keyframe-cache "$dir/keyframe_ids.hdf5"
       --extractor "$dir/extractor")
}

# pretrain OUT STEPS [flags]: tiny pre-training on ART
pretrain() {
  local out="$1" steps="$2"; shift 2
  run python pretrain_vla.py "${ART[@]}" --out "$out" --tiny --steps "$steps" --batch-size 16 --log-every 250 \
      --resume "$@"
}

# cft OUT INIT STEPS [flags]: tiny co-fine-tuning on ART from INIT's pre-training (its model config)
cft() {
  local out="$1" init="$2" steps="$3"; shift 3
  run python cofinetune.py "${ART[@]}" --out "$out" --init-from "$init" --tiny --steps "$steps" --batch-size 16 \
      --log-every 500 --resume "$@"
}

# tiny DIR STEPS...: pre-training 1000 steps in DIR/pretrain, then co-fine-tuning to each step count in turn
# (DIR/cft<steps>; each later one resumes a copy of the one before, so its cosine is taken over its own count)
tiny() {
  local dir="$1" prev=""; shift
  pretrain "$dir/pretrain" 1000
  for steps in "$@"; do
    if [ -n "$prev" ]; then done_ "$dir/cft$steps" || run cp -r "$dir/cft$prev" "$dir/cft$steps"; fi
    cft "$dir/cft$steps" "$dir/pretrain" "$steps"
    prev=$steps
  done
}

# raw RUN DST: the raw weights of RUN's last step (its train_state.pt; model.safetensors holds the --ema average)
# as a run directory of their own, written once (evaluate.py --resume keys its episodes on the weights' mtime)
raw() {
  if done_ "$2/model.safetensors"; then return 0; fi
  run mkdir -p "$2"
  run cp -r "$1/config.json" "$1/tokenizers" "$1/vqgan" "$2/"
  run python - "$1/train_state.pt" "$2/model.tmp" <<'PY'
import sys, torch
from safetensors.torch import save_file
save_file(torch.load(sys.argv[1], weights_only=False)["model"], sys.argv[2])
PY
  run mv "$2/model.tmp" "$2/model.safetensors"
}
