"""The paper's ablations in miniature (Tables 3-4, appendix Table 4): the full method and each ablation on
the same data, artefacts and seeds, scored on validation start states by default, then the comparison
table beside the paper's numbers (each row beside the full model of its own table).

    python experiments/ablations.py --data data/mini_goal --suite mini_goal --trials 20   # after quickstart.sh
    bash experiments/ablations.sh                                                        # from nothing

Rows: full | no_pretrain (--init-from none) | no_last_frame (pre-training without v^f) | lambda1_0 |
lambda2_0 | plain_latent (Q supervised by a plain video-VAE latent of the same size). Resumable: a row
whose run directory already holds its step count is reused.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the method files live at the top level


from evaluate import evaluate  # noqa: E402


# ----------------------------------------------------------------------------------------------
# The paper's ablations in miniature (Tables 3-4): same data, artefacts and seeds for every row

# The paper's LIBERO averages, each row beside the full model of the same table (SPEC §1 "Ablations"):
# (table, this row, the full model in that table). λ1 = 0 with λ2 = 0.01 is not among the paper's rows.
PAPER = {"full": [("Table 3", 0.947, 0.947), ("λ1/λ2 table", 0.955, 0.955)],
         "no_pretrain": [("Table 3", 0.448, 0.947)],
         "no_last_frame": [("Table 3", 0.936, 0.947)],
         "lambda1_0": [],
         "lambda2_0": [("λ1/λ2 table", 0.936, 0.955)],
         "plain_latent": [("appendix Table 4", 0.920, 0.947)]}
ROWS = [  # name, paper's label, pre-training run, co-fine-tuning flags
    ("full", "CoWVLA (motion & cot pre-training, λ1 0.1, λ2 0.01)", "pretrain", []),
    ("no_pretrain", "w/o pre-training (--init-from none)", None, []),
    ("no_last_frame", "pre-training 'motion' only (no v^f)", "pretrain_motion", []),
    ("lambda1_0", "λ1 = 0 (no motion loss in fine-tuning)", "pretrain", ["--lambda1", "0"]),
    ("lambda2_0", "λ2 = 0 (no keyframe loss in fine-tuning)", "pretrain", ["--lambda2", "0"]),
    ("plain_latent", "Q supervised by a plain video-VAE latent (no z_s/z_m split)", "pretrain_plain", []),
]


def paper_cell(name: str) -> str:
    """'0.448 vs 0.947 (Table 3)': the row and its table's full model, or — where the paper has no such row."""
    cells = [f"{row:.3f} vs {full:.3f} ({table})" if row != full else f"{row:.3f} ({table})"
             for table, row, full in PAPER[name]]
    return "; ".join(cells) or "—"


def main(argv=None):
    p = argparse.ArgumentParser(prog="experiments/ablations.py",
                                description="Run the full method and the paper's ablations on the same data "
                                            "and seeds, then write the Table 3-4 style comparison.")
    p.add_argument("--data", required=True, help="LIBERO-format data (the one the artefacts were built from)")
    p.add_argument("--tokenizers", default="runs/tokenizers", help="tokenizers.py fit output")
    p.add_argument("--vqgan", default="runs/vqgan", help="VQGAN run with keyframe_ids.hdf5")
    p.add_argument("--extractor", default="runs/extractor", help="extractor run with the z_m export")
    p.add_argument("--runs", default="runs/ablations", help="where the ablation runs and the table go")
    p.add_argument("--pretrain-steps", type=int, default=600, help="pre-training steps per pre-training run")
    p.add_argument("--cofinetune-steps", type=int, default=1500, help="co-fine-tuning steps per row")
    p.add_argument("--batch-size", type=int, default=16, help="batch size of both stages")
    p.add_argument("--suite", default="all", help="suites to evaluate")
    p.add_argument("--trials", type=int, default=5, help="trials per task")
    p.add_argument("--workers", type=int, default=2, help="evaluation processes")
    p.add_argument("--full-size", action="store_true", help="use the full model config instead of --tiny")
    p.add_argument("--seed", type=int, default=0, help="seed of every run")
    p.add_argument("--extractor-steps", type=int, default=800,
                   help="steps of the plain-latent extractor the appendix-Table-4 row trains (same data, span, size)")
    p.add_argument("--init-states", choices=("val", "test"), default="val",
                   help="start states the rows are scored on (val: choose among variants; test: report once)")
    args = p.parse_args(argv)
    runs = Path(args.runs)
    common = ["--data", args.data, "--tokenizers", args.tokenizers, "--vqgan", args.vqgan,
              "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--log-every", "100"]
    common += [] if args.full_size else ["--tiny"]
    t0 = time.time()

    def run(script, out, *extra, steps, extractor=args.extractor, shared=True):
        if (out / "config.json").exists() and json.loads((out / "config.json").read_text()).get("step") == steps:
            print(f"[ablations] {out} is done, reusing it")
            return
        cmd = [sys.executable, str(REPO / script), *(common + ["--extractor", str(extractor)] if shared else []),
               "--out", str(out), "--steps", str(steps), "--resume", *extra]  # an interrupted run continues
        print("[ablations] " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)

    # appendix Table 4: an extractor of the same size, span and data whose latent has no structure/motion split
    ext = json.loads((Path(args.extractor) / "config.json").read_text())
    size = [] if args.full_size else ["--tiny"]
    run("train_extractor.py", runs / "extractor_plain", "--data", args.data, *size, "--latent", "plain",
        "--span", str(ext["span"]), "--frames", str(ext["extractor"]["frames"]), "--seed", str(args.seed),
        steps=args.extractor_steps, shared=False)
    run("pretrain_vla.py", runs / "pretrain", steps=args.pretrain_steps)
    run("pretrain_vla.py", runs / "pretrain_motion", "--no-last-frame", steps=args.pretrain_steps)
    run("pretrain_vla.py", runs / "pretrain_plain", steps=args.pretrain_steps, extractor=runs / "extractor_plain")
    results = {}
    for name, label, init, flags in ROWS:
        out = runs / name
        run("cofinetune.py", out, "--init-from", str(runs / init) if init else "none", *flags,
            steps=args.cofinetune_steps, extractor=runs / "extractor_plain" if name == "plain_latent" else args.extractor)
        info = evaluate(out, "mini", args.suite, args.trials, out / f"eval_{args.init_states}", args.workers,
                        videos=0, resume=True, init_states=args.init_states)
        results[name] = info
    lines = ["| variant | " + " | ".join(results["full"]["per_suite"]) + " | avg | paper, LIBERO avg (vs its table's full model) |",
             "|---|" + "---|" * (len(results["full"]["per_suite"]) + 2)]
    for name, label, _, _ in ROWS:
        info = results[name]
        cells = [f"{s['pc_success'] / 100:.3f}" for s in info["per_suite"].values()]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {info['overall']['avg_suite_success'] / 100:.3f} | "
                     f"{paper_cell(name)} |")
    table = "\n".join(lines) + "\n"
    note = (f"\nMiniature of the paper's Tables 3-4 on the embedded benchmark ({args.trials} trials per task on "
            f"{'validation' if args.init_states == 'val' else 'test'} start states, "
            f"pre-training {args.pretrain_steps} / co-fine-tuning {args.cofinetune_steps} steps, "
            f"{'full' if args.full_size else 'tiny'} config, seed {args.seed}; {time.time() - t0:.0f} s). "
            f"The paper's numbers are LIBERO averages with an 8.5B backbone, for reference only.\n")
    (runs / "ablations.md").write_text(table + note)
    print(table + note)


if __name__ == "__main__":
    main()
