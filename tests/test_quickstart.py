"""The README's quickstart command, end to end, on a micro config (the whole pipeline through the CLIs)."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quickstart(tmp_path, timeout=60, **over):
    """Run the README's quickstart.sh with DATA/RUNS under tmp_path and the env overrides `over`."""
    env = {**os.environ, "SUITE": "mini_goal", "DEMOS": "10", "DATA": str(tmp_path / "data"),
           "RUNS": str(tmp_path / "runs"), **over,
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run(["bash", str(ROOT / "quickstart.sh")], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_quickstart_micro_pipeline(tmp_path):
    r = _quickstart(tmp_path, DEMOS="1", TRIALS="1", VQGAN_STEPS="2", EXTRACTOR_STEPS="2", PRETRAIN_STEPS="2",
                    COFINETUNE_STEPS="2", EVAL_MAX_STEPS="10", timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    runs = tmp_path / "runs"
    for f in ["tokenizers/fast.json", "vqgan/keyframe_ids.hdf5", "extractor/z_m.hdf5", "extractor/figure.png",
              "pretrain/model.safetensors", "cofinetune/model.safetensors", "eval/results.md"]:
        assert (runs / f).exists(), f
    info = json.loads((runs / "eval" / "eval_info.json").read_text())
    assert {"per_task", "per_suite", "overall", "policy", "env", "trials_per_task", "protocol"} <= set(info)
    assert set(info["overall"]) == {"n", "success", "pc_success", "avg_suite_success"}
    assert info["overall"]["n"] == 5 and list(info["per_suite"]) == ["mini_goal"]
    assert {t["task"] for t in info["per_task"]} == set(range(5))
    assert len((runs / "eval" / "episodes.jsonl").read_text().splitlines()) == 5
    assert "| **all** |" in r.stdout and "quickstart finished" in r.stdout
    assert "(simulator mask)" in r.stdout                                   # factorisation measured on sim masks


def test_quickstart_refuses_stale_data_and_runs(tmp_path):
    """A re-run with other DEMOS must not train on the old demonstrations or resume the old stages."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sim_report.json").write_text(json.dumps({"config": {"suite": "mini_goal",
                                                                              "demos_per_task": 10}}))
    r = _quickstart(tmp_path, DEMOS="50")
    assert r.returncode != 0 and "holds 10 demos per task of mini_goal, not 50" in r.stderr
    assert not (tmp_path / "runs").exists()                                  # nothing ran
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "quickstart_data.json").write_text(json.dumps({"data": "elsewhere"}))
    r = _quickstart(tmp_path)
    assert r.returncode != 0 and "set RUNS to a new folder" in r.stderr
    assert "=== [" not in r.stdout                                           # no stage started
