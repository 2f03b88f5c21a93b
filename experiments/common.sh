# Sourced by the experiment scripts: the stages every recipe shares, each skipped or resumed when done.
# artefacts DATA RUNS VQGAN_STEPS EXTRACTOR_STEPS: tokenizers, tiny VQGAN + keyframe cache, tiny extractor
# (exporting z_m over its 100-step span and over co-fine-tuning's 20-step window); sets ART for the VLA stages.
artefacts() {
  local data="$1" runs="$2" vqgan_steps="$3" extractor_steps="$4"
  [ -f "$runs/tokenizers/fast.json" ] || python tokenizers.py fit --data "$data" --out "$runs/tokenizers"
  python tokenizers.py train-vqgan --data "$data" --out "$runs/vqgan" --tiny --steps "$vqgan_steps" \
      --ckpt-every 500 --log-every 250 --resume
  [ -f "$runs/vqgan/keyframe_ids.hdf5" ] || python tokenizers.py cache --data "$data" --vqgan "$runs/vqgan"
  [ -f "$runs/extractor/z_m_span20.hdf5" ] || python train_extractor.py --data "$data" --out "$runs/extractor" \
      --tiny --steps "$extractor_steps" --val-every 400 --log-every 200 --resume
  ART=(--data "$data" --tokenizers "$runs/tokenizers" --vqgan "$runs/vqgan" --extractor "$runs/extractor")
}
