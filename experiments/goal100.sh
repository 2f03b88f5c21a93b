#!/usr/bin/env bash
# Reproduces docs/results.md, "Ten times: 100 demos per task and a sharper VQGAN (2026-11-24)": mini_goal, tiny,
# seed 0, pre-training 1000 steps on each row's data, 50 trials per task —
#   50 demos per task, the quickstart's VQGAN (800 steps), co-fine-tuning 7000       146/250 (58.4%)  ARMS g50q
#   50 demos per task, a VQGAN of 3000 steps on them, co-fine-tuning 4000            133/250 (53.2%)  ARMS g50v3k
#   100 demos per task, the same VQGAN, co-fine-tuning 4000                          165/250 (66.0%)  ARMS g100
#   the same continued to 7000 (the cosine taken over 7000)                          166/250 (66.4%)  ARMS g100
# As in the section: the extractor is the quickstart's (800 steps on 10 demos per task, trained here in $RUNS/q10
# with the quickstart's VQGAN) re-applied to each row's data (its own z_m export); tokenizers refit per row; the
# 3000-step VQGAN is trained on the 50 demos and re-applied to the 100 (keyframe caches of their own). Also
# prints the open-loop check of the 7000-step 100-demo policy with other instructions (the mini_goal row of
# the random-layouts section). Measured with the code of 2026-11-24: the paper-default changes of 2026-12-01
# moved the quickstart from 18/50 to 14/50, so expect the same picture, not the same counts.
# The numbers were measured on the official test init states (INIT_STATES=test, the default); choose among
# variants with INIT_STATES=val (docs/results.md, selection rule). Resumable: finished stages are skipped.
#   bash experiments/goal100.sh       # about 5 h on 2 CPU cores (3.3 h with ARMS="g50v3k g100"); the section's
#                                     # runs took one thread each, two side by side
# Knobs: ARMS ("g50q g50v3k g100"), TRIALS (50), INIT_STATES (test | val), RUNS, DATA (100 demos per task),
#   DATA50 (50 demos per task), DATA10 (10 demos per task).
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/common.sh
NAME=goal100
ARMS="${ARMS:-g50q g50v3k g100}"; TRIALS="${TRIALS:-50}"; INIT_STATES="${INIT_STATES:-test}"
RUNS="${RUNS:-runs/$NAME}"; DATA="${DATA:-data/goal100}"; DATA50="${DATA50:-data/goal50}"
DATA10="${DATA10:-data/mini_goal}"

demos mini_goal 10 "$DATA10"
demos mini_goal 50 "$DATA50"
if has g100; then demos mini_goal 100 "$DATA"; fi
# the quickstart's VQGAN and extractor (10 demos per task, 800 steps each)
Q="$RUNS/q10"
if has g50q; then
  run python tokenizers.py train-vqgan --data "$DATA10" --out "$Q/vqgan" --tiny --steps 800 --ckpt-every 500 \
      --log-every 250 --resume
fi
done_ "$Q/extractor/z_m_span20.hdf5" || run python train_extractor.py --data "$DATA10" --out "$Q/extractor" --tiny \
    --steps 800 --val-every 400 --log-every 200 --resume
# the sharper VQGAN: 3000 steps on the 50 demos per task
if has g50v3k || has g100; then
  run python tokenizers.py train-vqgan --data "$DATA50" --out "$RUNS/vqgan3k" --tiny --steps 3000 --ckpt-every 500 \
      --log-every 250 --resume
fi

if has g50q; then
  reapply "$DATA50" "$RUNS/g50q" "$Q/vqgan" "$Q/extractor"
  tiny "$RUNS/g50q" 4000 7000
  score "$RUNS/g50q/cft7000" g50_qsvqgan_cft7000
fi
if has g50v3k; then
  reapply "$DATA50" "$RUNS/g50v3k" "$RUNS/vqgan3k" "$Q/extractor"
  tiny "$RUNS/g50v3k" 4000
  score "$RUNS/g50v3k/cft4000" g50_vqgan3k_cft4000
fi
if has g100; then
  reapply "$DATA" "$RUNS/g100" "$RUNS/vqgan3k" "$Q/extractor"
  tiny "$RUNS/g100" 4000 7000
  score "$RUNS/g100/cft4000" g100_cft4000
  score "$RUNS/g100/cft7000" g100_cft7000
  run python experiments/offline.py --policy "$RUNS/g100/cft7000" --data "$DATA" --other-instructions
fi
