"""Measure the tokenizers: FAST against naive 256-bin binning (tokens per chunk, |error| in action units) on
held-out episodes, optional FAST refits at other DCT scales, the text tokenizer's round trip, and the
VQGAN's held-out PSNR / code usage / perplexity.

    python experiments/tokenizer_report.py --data data/mini --tokenizers runs/tokenizers --vqgan runs/vqgan
    python experiments/tokenizer_report.py --data data/mini --scales 5 20 --action-vocab 512
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the method files live at the top level

import numpy as np  # noqa: E402
import torch  # noqa: E402

import data as D  # noqa: E402
import tokenizers as TK  # noqa: E402
import training as TR  # noqa: E402


def fast_report_rows(fast: TK.FASTTokenizer, chunks: np.ndarray, stats) -> dict:
    """Tokens per chunk and |error| in un-normalised action units for FAST and 256-bin binning."""
    toks = np.array([len(fast.encode(c)) for c in chunks])
    rec = np.stack([fast.decode(fast.encode(c)) for c in chunks])
    raw = stats["actions"].unnormalize(chunks)
    err = np.abs(stats["actions"].unnormalize(rec) - raw)
    err_naive = np.abs(stats["actions"].unnormalize(TK.naive_bins(chunks)) - raw)
    return {"tokens_mean": toks.mean(), "tokens_max": toks.max(), "err_mean": err.mean(), "err_max": err.max(),
            "naive_tokens": chunks.shape[1] * chunks.shape[2], "naive_err_mean": err_naive.mean(),
            "naive_err_max": err_naive.max()}


def report(args):
    """FAST vs naive binning on held-out episodes (+ --scales refits), the text tokenizer's round trip,
    the VQGAN's held-out PSNR, code usage and perplexity."""
    data = D.open_data(args.data)
    out = Path(args.tokenizers)
    stats = D.load_stats(out / "stats.json")
    fast = TK.FASTTokenizer.load(out)
    # measured on held-out episodes (every 10th); the --scales refits are fitted on the others, so their
    # BPE merges cannot memorise the measured chunks (the `fit` tokenizer saw all of DATA if fitted on it)
    held = D.heldout_episodes(len(data))
    chunks = TK.action_chunks(data, stats, fast.l_a, episodes=held)
    print(f"FAST on {len(chunks)} chunks of ({fast.l_a}, 7) from {len(held)} held-out episodes of {args.data} "
          f"(every 10th; error in un-normalised action units)")
    print(f"{'tokenizer':<28} {'tokens/chunk mean':>17} {'max':>5} {'|err| mean':>11} {'max':>9} {'tokens vs naive':>15}")
    rows = {f"FAST scale {fast.scale:g} (fitted)": fast_report_rows(fast, chunks, stats)}
    if args.scales:
        train = TK.action_chunks(data, stats, fast.l_a, episodes=sorted(set(range(len(data))) - set(held)) or held)
    for s in args.scales:
        refit = TK.FASTTokenizer(fast.l_a, fast.D, s, args.action_vocab).fit(train)
        rows[f"FAST scale {s:g} (refit here)"] = fast_report_rows(refit, chunks, stats)
    r0 = next(iter(rows.values()))
    print(f"{'naive 256-bin per dim':<28} {r0['naive_tokens']:>17.1f} {r0['naive_tokens']:>5} "
          f"{r0['naive_err_mean']:>11.5f} {r0['naive_err_max']:>9.5f} {1:>14.2f}x")
    for name, r in rows.items():
        print(f"{name:<28} {r['tokens_mean']:>17.1f} {r['tokens_max']:>5} {r['err_mean']:>11.5f} "
              f"{r['err_max']:>9.5f} {r['naive_tokens'] / r['tokens_mean']:>14.2f}x fewer")
    text = TK.TextTokenizer.load(out)
    n = [len(text.encode(s)) for s in data.instructions]
    ok = sum(text.decode(text.encode(s)) == s.lower() for s in data.instructions)
    print(f"\ntext: {len(n)} instructions, tokens/instruction mean {np.mean(n):.1f} max {max(n)}, "
          f"round trip exact for {ok}/{len(n)}, vocab {text.vocab_size}")
    if args.vqgan:
        model = TK.load_vqgan(args.vqgan)
        cfg = json.loads((Path(args.vqgan) / "config.json").read_text())
        held = [i for i in cfg["heldout_episodes"] if i < len(data)] or D.heldout_episodes(len(data))
        view = TK.FrameView(data, held, model.cfg.image_size)
        idx = torch.randperm(len(view), generator=torch.Generator().manual_seed(0))[: args.eval_frames]
        m = TK.evaluate_vqgan(model, torch.stack([view[int(i)] for i in idx]))
        h = model.cfg.image_size // model.cfg.factor
        print(f"\nVQGAN ({model.cfg.quantizer}, {model.cfg.n_codes} codes, {model.cfg.image_size}² -> {h}x{h} "
              f"tokens) on {len(idx)} held-out frames: PSNR {m['psnr']:.2f} dB | code usage {m['usage']:.1%} | "
              f"perplexity {m['perplexity']:.0f}")


def main(argv=None):
    p = argparse.ArgumentParser(prog="experiments/tokenizer_report.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="LIBERO-format data to measure on")
    p.add_argument("--tokenizers", default="runs/tokenizers", help="output directory of `tokenizers.py fit`")
    p.add_argument("--vqgan", default=None, help="VQGAN run directory (optional)")
    p.add_argument("--scales", type=float, nargs="*", default=[], help="also refit FAST at these scales and compare")
    p.add_argument("--action-vocab", type=TR.at_least(2), default=1024, help="vocabulary for the --scales refits")
    p.add_argument("--eval-frames", type=TR.at_least(1), default=512, help="held-out frames for the VQGAN figures")
    args = p.parse_args(argv)
    report(args)
    return 0


if __name__ == "__main__":
    sys.exit(TR.run_cli(main))
