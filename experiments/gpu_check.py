"""Every stage at full size on one GPU, measured in one prepared command (docs/results.md, "The full size on a
GPU"): the default VQGAN and extractor trained on LIBERO-sized embedded data (128² frames, made here) with their
held-out PSNR against the targets (28 dB, 30 dB); pre-training and co-fine-tuning at the full config (~213M
parameters, bf16 autocast) for ~100 steps each at the paper's effective batch (256, 128) through --grad-accum,
with loss, tokens/s, peak memory and MFU; DDP with two processes on the one GPU (torchrun); and one action chunk
decoded with and without the KV cache. One table on stdout, the same rows in OUT/gpu_check.json.

    python experiments/gpu_check.py                   # one H100/H200-class GPU, ~10 min
    python experiments/gpu_check.py --tiny            # the same steps at the tiny config on a CPU, a few minutes

Every stage is the repository's own CLI run as a child process (its log in OUT/logs/<stage>.log), so the check
measures what users run; a stage that fails is reported with its log's last line and the stages that need its
output are skipped, the rest still run. Knobs for a re-run (e.g. after the first run showed the speeds):
--vqgan-steps, --extractor-steps, --vla-steps, --demos.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# bf16 dense peak of the GPUs this check is meant for (vendor data sheets, without sparsity), for MFU
PEAK_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "A10G": 125.0, "L4": 121.0}
TARGET_DB = {"vqgan": 28.0, "extractor": 30.0}

# per size: demos per task of mini_goal, camera size, steps (the tokenizers' at most, within a --minutes budget
# that fits their schedules to the GPU's measured speed) and (micro-batch, accumulation) of each stage
SIZES = {
    "full": dict(demos=20, camera=128, vqgan_steps=20000, vqgan_minutes=2.0, vqgan_batch=64, extractor_steps=20000,
                 extractor_minutes=2.0, extractor_batch=16,
                 vla_steps=100, pre_batch=(32, 8), cft_batch=(16, 8), ddp_steps=5, size_flags=[], loader=4),
    "tiny": dict(demos=2, camera=64, vqgan_steps=20, vqgan_minutes=None, vqgan_batch=8, extractor_steps=20,
                 extractor_minutes=None, extractor_batch=4,
                 vla_steps=10, pre_batch=(4, 2), cft_batch=(4, 2), ddp_steps=3, size_flags=["--tiny"], loader=0),
}


def sh(stage: str, cmd: list[str], logs: Path, torchrun: int = 0) -> tuple[bool, float, str]:
    """Run one stage's command -> (ok, seconds, the log's last line). torchrun > 0: that many processes."""
    if torchrun:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}", *cmd]
    else:
        cmd = [sys.executable, *cmd]
    log = logs / f"{stage}.log"
    print(f"[{time.strftime('%H:%M:%S')}] {stage}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - t0
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    print(f"    {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {seconds:.0f} s{'' if rc == 0 else ': ' + last}",
          flush=True)
    return rc == 0, seconds, last


def records(run: Path) -> list[dict]:
    path = run / "log.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []


def speed(recs: list[dict]) -> dict:
    """Steps/s (median of the log intervals after the first, which holds start-up) and peak memory."""
    ms = [r["ms_per_step"] for r in recs if "ms_per_step" in r]
    ms = ms[1:] or ms
    peak = [r["peak_mem_gb"] for r in recs if "peak_mem_gb" in r]
    return {"steps_per_s": round(1000 / statistics.median(ms), 2) if ms else None,
            "peak_mem_gb": max(peak) if peak else None}


def peak_tflops(device_name: str, override: float | None) -> float | None:
    if override:
        return override
    return next((v for k, v in PEAK_TFLOPS.items() if k in device_name), None)


def vla_row(run: Path, peak: float | None, world: int = 1) -> dict:
    """Loss first -> last, tokens/s, peak memory and MFU of a VLA stage from its log and config."""
    import torch
    import model as M
    recs = [r for r in records(run) if "loss" in r and "tok_per_s" in r]
    if not recs:
        return {"error": f"no training log lines in {run / 'log.jsonl'}"}
    cfg = json.loads((run / "config.json").read_text())["vla"]
    with torch.device("meta"):  # the parameter count without allocating 213M weights
        vla = M.VLA(M.VLAConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}))
    later = recs[1:] or recs
    tok_s = statistics.median(r["tok_per_s"] for r in later)
    seq = statistics.median(r["seq_len"] for r in later)
    flops = vla.flops_per_token(int(seq)) * tok_s  # tok_per_s counts every process's tokens
    row = {"params_M": round(sum(p.numel() for p in vla.parameters()) / 1e6, 1), "loss_first": round(recs[0]["loss"], 3),
           "loss_last": round(recs[-1]["loss"], 3), "loss_falling": recs[-1]["loss"] < recs[0]["loss"],
           "tokens_per_s": round(tok_s), "seq_len": int(seq), "tflops": round(flops / 1e12, 2), **speed(recs)}
    gpus = min(world, torch.cuda.device_count()) if torch.cuda.is_available() else world  # DDP here: 2 on 1 GPU
    row["mfu"] = round(flops / (peak * 1e12 * gpus), 3) if peak else None
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="the tiny configs and a few steps (a CPU, a few minutes)")
    p.add_argument("--out", default="runs/gpu_check", help="work folder: data, runs, logs/, gpu_check.json")
    p.add_argument("--demos", type=int, default=None, help="mini_goal demos per task to train on (full 20, tiny 2)")
    p.add_argument("--vqgan-steps", type=int, default=None, help="VQGAN steps at most (full 20000, tiny 20)")
    p.add_argument("--vqgan-minutes", type=float, default=None, help="VQGAN budget (full 2: as many steps as fit)")
    p.add_argument("--extractor-steps", type=int, default=None, help="extractor steps at most (full 20000, tiny 20)")
    p.add_argument("--extractor-minutes", type=float, default=None, help="extractor budget (full 2)")
    p.add_argument("--vla-steps", type=int, default=None, help="steps of each VLA stage (full 100, tiny 10)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="the GPU's bf16 dense peak for MFU (default: known from the device name: H100/H200 989)")
    p.add_argument("--skip", default="", help="comma-separated stages not to run (data, vqgan, extractor, pretrain, "
                                                "cofinetune, ddp, latency); their dependants are skipped too")
    args = p.parse_args(argv)
    size = dict(SIZES["tiny" if args.tiny else "full"])
    for k in ("demos", "vqgan_steps", "extractor_steps", "vla_steps", "vqgan_minutes", "extractor_minutes"):
        if getattr(args, k) is not None:
            if getattr(args, k) <= 0:
                p.error(f"--{k.replace('_', '-')} must be positive")
            size[k] = getattr(args, k)
    import torch
    out = (REPO / args.out) if not Path(args.out).is_absolute() else Path(args.out)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)"
    peak = peak_tflops(gpu, args.peak_tflops) if torch.cuda.is_available() else None
    info = {"date": time.strftime("%Y-%m-%d"), "gpu": gpu, "torch": torch.__version__, "size": "tiny" if args.tiny else "full",
            "cpu_cores": os.cpu_count(), "peak_tflops": peak, "settings": size}
    print(json.dumps(info, indent=1), flush=True)
    # --force: a re-run of the check trains and measures again over an earlier one's runs
    data, R, flags = out / "data", out / "runs", [*size["size_flags"], "--force"]
    lw = ["--workers", str(size["loader"])]
    rows, ok = {}, {}
    skip = {s for s in args.skip.split(",") if s}

    def stage(name, needs, cmd, torchrun=0):
        missing = [n for n in needs if not ok.get(n)]
        if name in skip or missing:
            rows[name] = {"status": "skipped", "why": "--skip" if name in skip else f"needs {', '.join(missing)}"}
            ok[name] = False
            return False
        ok[name], secs, last = sh(name, cmd, logs, torchrun)
        rows[name] = {"status": "ok" if ok[name] else "failed", "seconds": round(secs, 1),
                      **({} if ok[name] else {"last_line": last})}
        return ok[name]

    def budget(name):  # a --minutes budget: log every 50 steps (the fitted total is not known in advance)
        m = size[f"{name}_minutes"]
        return ["--minutes", str(m), "--log-every", "50"] if m else []

    # 1. LIBERO-sized data: the embedded mini_goal suite at 128² (the real simulator is an optional extra)
    stage("data", [], ["-m", "envs.mini", "generate", "--suite", "mini_goal", "--demos-per-task", str(size["demos"]),
                       "--camera-size", str(size["camera"]), "--out", str(data), "--workers",
                       str(max(1, min(8, (os.cpu_count() or 2) - 1)))])
    stage("tokenizers", ["data"], ["tokenizers.py", "fit", "--data", str(data), "--out", str(R / "tokenizers")])
    # 2. the default VQGAN (Sec. 3.1's keyframe tokenizer) and extractor (Sec. 3.2): held-out PSNR vs target
    n = size["vqgan_steps"]
    if stage("vqgan", ["data"], ["tokenizers.py", "train-vqgan", "--data", str(data), "--out", str(R / "vqgan"), *flags,
                                 "--steps", str(n), "--batch-size", str(size["vqgan_batch"]), "--ckpt-every", str(n),
                                 "--log-every", str(max(1, n // 10)), *budget("vqgan"), *lw]):
        cfg = json.loads((R / "vqgan" / "config.json").read_text())
        rows["vqgan"].update(steps=cfg["step"], psnr_db=round(cfg["eval"]["psnr"], 2), target_db=TARGET_DB["vqgan"],
                             **speed(records(R / "vqgan")))
    stage("cache", ["vqgan"], ["tokenizers.py", "cache", "--data", str(data), "--vqgan", str(R / "vqgan")])
    n = size["extractor_steps"]
    if stage("extractor", ["data"], ["train_extractor.py", "--data", str(data), "--out", str(R / "extractor"), *flags,
                                     "--steps", str(n), "--batch-size", str(size["extractor_batch"]),
                                     "--val-every", str(n), "--log-every", str(max(1, n // 10)),
                                     *budget("extractor"), *lw]):
        cfg = json.loads((R / "extractor" / "config.json").read_text())
        rows["extractor"].update(steps=cfg["step"], psnr_db=round(cfg["val"]["psnr"], 2), target_db=TARGET_DB["extractor"],
                                 **speed(records(R / "extractor")))
    # 3. the VLA stages at the paper's effective batch: micro-batch x --grad-accum (Sec. 3.3, 3.4)
    art = ["--data", str(data), "--tokenizers", str(R / "tokenizers"), "--vqgan", str(R / "vqgan"),
           "--extractor", str(R / "extractor")]
    n, needs = size["vla_steps"], ["tokenizers", "cache", "extractor"]
    every = ["--log-every", str(max(1, n // 10)), "--val-every", "0", "--ckpt-every", str(n), *lw]
    for name, batch, extra in (("pretrain", size["pre_batch"], []),
                               ("cofinetune", size["cft_batch"], ["--init-from", str(R / "pretrain")])):
        b, accum = batch
        if stage(name, needs + (["pretrain"] if name == "cofinetune" else []),
                 [f"{name if name == 'cofinetune' else 'pretrain_vla'}.py", *art, "--out", str(R / name), *flags,
                  "--steps", str(n), "--batch-size", str(b), "--grad-accum", str(accum), "--warmup", str(max(1, n // 10)),
                  *extra, *every]):
            rows[name].update(steps=n, effective_batch=b * accum, **vla_row(R / name, peak))
    # 4. DDP: two processes on the one device (gloo when they share a GPU: training.setup_distributed)
    n = size["ddp_steps"]
    b = size["pre_batch"][0]
    if stage("ddp", needs, ["pretrain_vla.py", *art, "--out", str(R / "ddp"), *flags, "--steps", str(n),
                            "--batch-size", str(b), "--log-every", "1", "--val-every", "0", "--ckpt-every", str(n),
                            "--workers", "0"], torchrun=2):
        rows["ddp"].update(processes=2, steps=n, batch=f"{b} x 2 processes", **vla_row(R / "ddp", peak, world=2))
    # 5. one action chunk, KV cache vs re-running the sequence per token (cofinetune.py --bench's measurement)
    if "latency" in skip:
        rows["latency"] = {"status": "skipped", "why": "--skip"}
    else:
        import cofinetune
        t0 = time.perf_counter()
        (lat,) = cofinetune.bench(("tiny",) if args.tiny else ("full",))
        rows["latency"] = {"status": "ok", "seconds": round(time.perf_counter() - t0, 1), **lat,
                           "speedup": round(lat["no_cache_ms"] / lat["kv_cache_ms"], 2)}
    info["stages"] = rows
    (out / "gpu_check.json").write_text(json.dumps(info, indent=1))
    print_table(info)
    print(f"wrote {out / 'gpu_check.json'}")
    return 0 if all(r["status"] != "failed" for r in rows.values()) else 1


def print_table(info: dict):
    """The rows as one markdown table (pasted into docs/results.md as it is)."""
    keys = ("seconds", "steps", "psnr_db", "target_db", "steps_per_s", "effective_batch", "loss_first", "loss_last",
            "tokens_per_s", "seq_len", "tflops", "mfu", "peak_mem_gb", "no_cache_ms", "kv_cache_ms", "speedup")
    print(f"\n{info['gpu']} · torch {info['torch']} · {info['size']} config · {info['date']}\n")
    print("| stage | status | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for name, r in info["stages"].items():
        cells = ["" if r.get(k) is None else str(r[k]) for k in keys]
        status = r["status"] + (f" ({r['why']})" if "why" in r else "") + (f": {r['last_line'][:80]}" if "last_line" in r else "")
        print(f"| {name} | {status} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
