"""experiments/gpu_check.py, the prepared full-size GPU check, exercised on the CPU with --tiny so it cannot
rot before a GPU is lent; and the --minutes budget its tokenizer stages use."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import training as TR

REPO = Path(__file__).resolve().parents[1]
STAGES = ["data", "tokenizers", "vqgan", "cache", "extractor", "pretrain", "cofinetune", "ddp", "latency"]


def check(tmp_path, *flags, timeout=900):
    r = subprocess.run([sys.executable, str(REPO / "experiments" / "gpu_check.py"), "--tiny", "--out",
                        str(tmp_path / "gc"), *flags], capture_output=True, text=True, timeout=timeout, cwd=REPO)
    info = json.loads((tmp_path / "gc" / "gpu_check.json").read_text()) if (tmp_path / "gc" / "gpu_check.json").exists() else None
    return r, info


def test_minutes_budget_fits_the_schedule_to_the_measured_speed(tmp_path):
    """After PROBE warm-up and PROBE timed steps the total becomes what the speed allows: a 0.6 s budget at
    ~10 ms/step ends near step 60, well before --steps 10000, and the cosine schedule is taken over it."""
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=1.0)
    loop = TR.TrainLoop(tmp_path, opt, 10000, 1.0, 0.0, 0, "t", minutes=0.01)
    steps = 0
    while loop.running():
        time.sleep(0.01)
        loop.advance()
        steps += 1
    assert 2 * TR.TrainLoop.PROBE <= steps == loop.total < 1000
    assert loop.lr == pytest.approx(TR.cosine_lr(steps - 1, steps, 1.0, 0.0, 0))  # near the floor, not mid-schedule
    assert loop.lr < 0.01


def test_a_skipped_stage_skips_what_needs_it_and_the_rest_still_runs(tmp_path):
    r, info = check(tmp_path, "--skip", "data", timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rows = info["stages"]
    assert list(rows) == STAGES
    assert rows["data"] == {"status": "skipped", "why": "--skip"}
    assert rows["vqgan"]["why"] == "needs data" and rows["cofinetune"]["why"] == "needs tokenizers, cache, extractor, pretrain"
    lat = rows["latency"]  # needs no data: measured on synthetic context
    assert lat["status"] == "ok" and lat["config"] == "tiny" and 0 < lat["kv_cache_ms"] and 0 < lat["no_cache_ms"]
    assert "| latency | ok |" in r.stdout


@pytest.mark.slow
def test_tiny_check_runs_every_stage_on_cpu(tmp_path):
    """The whole check at the tiny size (~3-5 min on 2 cores): every stage ok, each row's measurements present."""
    r, info = check(tmp_path)
    assert r.returncode == 0, r.stdout[-3000:]
    rows = info["stages"]
    assert [k for k, v in rows.items() if v["status"] != "ok"] == []
    for k in ("vqgan", "extractor"):
        assert rows[k]["steps"] == 20 and 5 < rows[k]["psnr_db"] < 60 and rows[k]["steps_per_s"] > 0
    for k in ("pretrain", "cofinetune"):
        assert rows[k]["effective_batch"] == 8 and rows[k]["tokens_per_s"] > 0 and rows[k]["tflops"] >= 0
        assert rows[k]["mfu"] is None  # no GPU peak to divide by on a CPU
    assert rows["pretrain"]["loss_falling"]
    assert rows["ddp"]["processes"] == 2 and rows["ddp"]["loss_first"] > 0
    assert (tmp_path / "gc" / "runs" / "ddp" / "model.safetensors").exists()
    assert info["gpu"] == "none (CPU)" or torch.cuda.is_available()
