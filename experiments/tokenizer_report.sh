#!/usr/bin/env bash
# Reproduces docs/results.md, "Tokenizers: FAST vs binning, text, VQGAN (2026-11-24)": on 10 demos per task of all
# four suites (200 demos, expert noise 0.01), measured on the chunks of the 20 held-out episodes
# (experiments/tokenizer_report.py; the --scales refits are fitted on the other 180 episodes) —
#   naive 256-bin per dimension   70 tokens per chunk, mean |error| 0.00073
#   FAST scale 10 / vocab 1024    12.4 tokens, 0.00227 (the default, as `tokenizers.py fit` writes it)
#   FAST scale 30 / 1024          19.9, 0.00076      FAST scale 60 / 1024   24.6, 0.00037
#   FAST scale 50 / 8192          19.0, 0.00055      FAST scale 60 / 4096   21.0, 0.00037
#   text: 20 instructions, 11.1 tokens on average, 20/20 exact round trips
#   VQGAN --tiny, 1000 steps: 25.4 dB PSNR on 512 held-out frames, 94% code usage, perplexity 338
# The report's output is appended to $RUNS/report.txt and kept in results/tokenizer_report/. The quickstart's
# VQGAN numbers (28.6 dB) come with `bash quickstart.sh`. Measured with the code of 2026-11-24.
#   bash experiments/tokenizer_report.sh     # ~10 min on 2 CPU cores (an estimate: generation ~2 min, the VQGAN's
#                                            # 1000 steps 4.8 min, the reports with their refits a few minutes)
# Knobs: RUNS, DATA (10 demos per task of all four suites).
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/common.sh
NAME=tokenizer_report
RUNS="${RUNS:-runs/$NAME}"; DATA="${DATA:-data/mini}"
REPORT="$RUNS/report.txt"
report() {  # report [flags]: the measurement, printed and (not in a dry run) appended to $REPORT
  if [ "${DRY_RUN:-0}" = 1 ]; then
    run python experiments/tokenizer_report.py --data "$DATA" --tokenizers "$RUNS/tokenizers" "$@"
  else
    run python experiments/tokenizer_report.py --data "$DATA" --tokenizers "$RUNS/tokenizers" "$@" | tee -a "$REPORT"
  fi
}

demos all 10 "$DATA"
done_ "$RUNS/tokenizers/fast.json" || run python tokenizers.py fit --data "$DATA" --out "$RUNS/tokenizers"
run python tokenizers.py train-vqgan --data "$DATA" --out "$RUNS/vqgan" --tiny --steps 1000 --ckpt-every 500 \
    --log-every 250 --resume
[ "${DRY_RUN:-0}" = 1 ] || : > "$REPORT"
report --vqgan "$RUNS/vqgan" --scales 30 60 --action-vocab 1024
report --scales 50 --action-vocab 8192
report --scales 60 --action-vocab 4096
keep "$REPORT" report
