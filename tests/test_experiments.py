"""Every experiments/ script, in its dry-run mode: it lists the commands it would run, and each listed
command's arguments parse with today's CLIs (so no script can rot unseen when a flag changes)."""
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.name for p in (REPO / "experiments").glob("*.sh") if p.name != "common.sh")

# Run in a child: each command's main() up to its argparse parse, which then raises instead of training.
PARSE_ONLY = r"""
import argparse, json, runpy, sys
sys.path.insert(0, {repo!r})
class Parsed(Exception):
    pass
real = argparse.ArgumentParser.parse_args
def parse_args(self, *a, **k):
    real(self, *a, **k)
    raise Parsed()
argparse.ArgumentParser.parse_args = parse_args
import envs.libero.cli  # its main checks the optional extra before parsing: parse without it
envs.libero.cli._installed = lambda: None
bad = []
for argv in json.loads(sys.argv[1]):
    target, args = (argv[2], argv[3:]) if argv[1] == "-m" else (argv[1], argv[2:])
    sys.argv = [target, *args]
    try:
        if argv[1] == "-m":
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path({repo!r} + "/" + target, run_name="__main__")
        bad.append([argv, "returned without parsing its arguments"])
    except Parsed:
        pass
    except SystemExit as e:
        bad.append([argv, f"exit {{e.code}}"])
print(json.dumps(bad))
"""


def dry_run(script: str, tmp_path, **knobs) -> list[list[str]]:
    env = {"PATH": "/usr/bin:/bin", "DRY_RUN": "1", "RUNS": str(tmp_path / "runs"), "DATA": str(tmp_path / "data"),
           "HOME": str(tmp_path), **knobs}
    r = subprocess.run(["bash", str(REPO / "experiments" / script)], capture_output=True, text=True, env=env,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 0, f"{script} (DRY_RUN=1) failed:\n{r.stderr[-2000:]}"
    cmds = [shlex.split(line[2:]) for line in r.stdout.splitlines() if line.startswith("+ ")]
    assert not any((tmp_path / "runs").rglob("*")), f"{script}: a dry run wrote into RUNS"
    return cmds


def parse_only(commands: list[list[str]]) -> list:
    """-> [[argv, why], ...] for the commands whose arguments do not parse (one child for all)."""
    r = subprocess.run([sys.executable, "-c", PARSE_ONLY.format(repo=str(REPO)), json.dumps(commands)],
                       capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def listed(tmp_path_factory) -> dict:
    """Each script's dry-run python commands, and which of all of them fail to parse (one child process:
    importing torch once instead of once per script)."""
    cmds = {}
    for script in SCRIPTS:
        tmp = tmp_path_factory.mktemp(script.replace(".", "_"))
        cmds[script] = [c for c in dry_run(script, tmp) if c and c[0] == "python" and len(c) > 1 and c[1] != "-"]
    bad = parse_only([c for v in cmds.values() for c in v])
    return {"commands": cmds, "bad": bad}


@pytest.mark.parametrize("script", SCRIPTS)
def test_experiment_script_parses_and_lists_commands(script, listed):
    r = subprocess.run(["bash", "-n", str(REPO / "experiments" / script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = (REPO / "experiments" / script).read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    python = listed["commands"][script]
    assert python, f"{script} lists no python command in its dry run"
    bad = [b for b in listed["bad"] if b[0] in python]
    assert not bad, f"{script}: commands whose arguments do not parse: {bad}"


def test_libero_cpu_step_variants_share_the_pre_training(tmp_path):
    """experiments/libero_cpu.sh: CFT_TAG puts a second step count beside the first (same pre-training);
    MORE_STEPS continues the finished run into <run>_more, and validation and test then score that one."""
    cmds = dry_run("libero_cpu.sh", tmp_path, CFT_TAG="c1000", COFINETUNE_STEPS="1000", MORE_STEPS="2000",
                   EVAL_FLAGS="--replan 5", TEST="1", GIFS="0", ZERO_BASELINE="0")
    runs = str(tmp_path / "runs")
    cft = [c for c in cmds if c[:2] == ["python", "cofinetune.py"]]
    arg = lambda c, flag: c[c.index(flag) + 1]
    assert [(arg(c, "--init-from"), arg(c, "--out"), arg(c, "--steps")) for c in cft] == [
        (f"{runs}/pretrain", f"{runs}/cft_s1_c1000", "1000"),
        (f"{runs}/cft_s1_c1000", f"{runs}/cft_s1_c1000_more", "2000")]
    assert arg(cft[1], "--lr") == "5e-4"
    scored = [arg(c, "--policy") for c in cmds if c[:2] == ["python", "evaluate.py"]]
    assert scored and set(scored) == {f"{runs}/cft_s1_c1000_more"}, scored
    assert parse_only(cft) == []


def test_libero_cpu_ensemble_is_tested_instead_of_its_seeds(tmp_path):
    """experiments/libero_cpu.sh ENSEMBLE=1: the seeds' runs are validated one by one, then decoded as one
    ensemble (evaluate.py --policy A,B) into ens_s1s2, and only the ensemble runs on the official states."""
    cmds = dry_run("libero_cpu.sh", tmp_path, SEEDS="1 2", ENSEMBLE="1", EVAL_FLAGS="--replan 5", TEST="1",
                   TRIALS="50", GIFS="0", ZERO_BASELINE="0")
    runs = str(tmp_path / "runs")
    arg = lambda c, flag: c[c.index(flag) + 1]
    ev = [(arg(c, "--policy"), arg(c, "--init-states"), arg(c, "--out")) for c in cmds
          if c[:2] == ["python", "evaluate.py"]]
    both = f"{runs}/cft_s1,{runs}/cft_s2"
    assert ev == [(f"{runs}/cft_s1", "val", f"{runs}/cft_s1/eval_val_replan5"),
                  (f"{runs}/cft_s2", "val", f"{runs}/cft_s2/eval_val_replan5"),
                  (both, "val", f"{runs}/ens_s1s2/eval_val_replan5"),
                  (both, "test", f"{runs}/ens_s1s2/eval_test_replan5")], ev
    assert parse_only([c for c in cmds if c[:2] == ["python", "evaluate.py"]]) == []


def test_libero_cpu_training_states_diagnostic(tmp_path):
    """experiments/libero_cpu.sh TRAIN_TRIALS=N: after validation, the same policy and flags on the demos' own
    start states (evaluate.py --init-states train) into eval_train[_TAG]; nothing on the test states."""
    cmds = dry_run("libero_cpu.sh", tmp_path, TRAIN_TRIALS="5", EVAL_FLAGS="--replan 5", GIFS="0")
    runs = str(tmp_path / "runs")
    arg = lambda c, flag: c[c.index(flag) + 1]
    ev = [(arg(c, "--init-states"), arg(c, "--trials"), arg(c, "--out")) for c in cmds
          if c[:2] == ["python", "evaluate.py"]]
    assert ev == [("val", "5", f"{runs}/cft_s1/eval_val_replan5"),
                  ("train", "5", f"{runs}/cft_s1/eval_train_replan5")], ev
    assert parse_only([c for c in cmds if c[:2] == ["python", "evaluate.py"]]) == []
    # DIVERGENCE=2: the first 2 of those episodes per task against the demo of each one's start state
    cmds = dry_run("libero_cpu.sh", tmp_path, TRAIN_TRIALS="5", DIVERGENCE="2", GIFS="0")
    div = [c for c in cmds if c[:2] == ["python", "experiments/demo_divergence.py"]]
    assert [(c[2], arg(c, "--per-task"), arg(c, "--out")) for c in div] == \
        [(f"{runs}/cft_s1/eval_train", "2", f"{runs}/cft_s1/divergence_train")], div
    assert parse_only(div) == []


def test_libero_cpu_ensemble_of_one_seed_is_refused(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DRY_RUN": "1", "RUNS": str(tmp_path / "runs"), "DATA": str(tmp_path / "data"),
           "HOME": str(tmp_path), "ENSEMBLE": "1", "SEEDS": "1"}
    r = subprocess.run(["bash", str(REPO / "experiments" / "libero_cpu.sh")], capture_output=True, text=True,
                       env=env, timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "ENSEMBLE=1 needs two or more SEEDS" in r.stderr, r.stderr


def test_carry_trace_tells_an_opened_hand_from_a_slip():
    """experiments/carry_trace.py's verdict from a per-step (gripper command, held, rise) trace."""
    from experiments.carry_trace import verdict
    lift = [(1.0, True, 0.01 * t) for t in range(8)]                 # closed, held, rising to 7 cm
    assert verdict([(-1.0, False, 0.0)] * 5, 0.03) == ("never held", None)
    assert verdict(lift, 0.03) == ("held to the end", None)
    assert verdict(lift + [(-1.0, True, 0.07), (-1.0, False, 0.07)], 0.03) == ("opened", 9)
    assert verdict(lift + [(1.0, False, 0.07)] * 3, 0.03) == ("slipped", 8)
    assert verdict(lift[:3] + [(-1.0, False, 0.02)], 0.03) == ("held, not lifted", 3)
    # an open command long before the release does not count: only the last steps before it
    assert verdict([(-1.0, True, 0.05)] + lift + [(1.0, True, 0.07)] * 6 + [(1.0, False, 0.0)], 0.03)[0] == "slipped"


def test_close_trace_tells_a_weak_first_close_from_the_firm_one():
    """experiments/close_trace.py's closes(): a weak close (0 < g < firm) in the first chunk is the first
    close, the firm close comes later; offsets are the hand minus the object, in cm."""
    import numpy as np
    from experiments.close_trace import closes
    obj = [0.0, 0.0, 0.9]
    rows = [(t, -1.0, 0.0, 0.0, 1.2, *obj) for t in range(1, 11)]            # settling, hand 30 cm above
    rows += [(11, 0.2, 0.0, 0.0, 1.2, *obj), (12, -0.1, 0.0, 0.0, 1.1, *obj)]  # the first chunk's weak close
    rows += [(13, 1.0, 0.03, 0.04, 1.0, *obj), (14, 1.0, 0.0, 0.0, 0.92, *obj)]
    c = closes(np.array(rows), 0.5, 10)
    assert c["first_close"] == {"step": 11, "xy_cm": 0.0, "dz_cm": 30.0}
    assert c["firm_close"] == {"step": 13, "xy_cm": 5.0, "dz_cm": 10.0}
    assert c["first_chunk_gripper"] == [0.2, -0.1, 1.0, 1.0] and c["lowest_dz_cm"] == 2.0
    assert closes(np.array(rows[:10]), 0.5, 10)["firm_close"] is None


def test_demo_divergence_finds_where_a_rollout_leaves_its_demo():
    """experiments/demo_divergence.py's divergence(): evaluation step SETTLED + j is set beside demo step j; a
    rollout on the demo's path at the demo's pace never leaves it, one drifting 0.5 cm per step leaves it by
    2 cm after 5 steps and by 5 cm after 11, and its nearest approach to the demo's close is measured."""
    import numpy as np
    from experiments.demo_divergence import divergence
    j = np.arange(40)
    demo = np.stack([0 * j, 0 * j, 1.2 - 0.01 * np.minimum(j, 30)], 1)          # descends 30 cm, then waits
    demo_grip = np.where(j >= 30, 1.0, -1.0)                                    # closes at step 30
    t = np.arange(1, 51)                                                        # 10 settling steps, 40 actions
    follow = demo[np.clip(t - 10, 0, 39)]
    grip = np.where(t - 10 - 1 >= 30, 1.0, -1.0)                                # action 30 closes, as the demo's
    d = divergence(t, grip, follow, demo, demo_grip, 10, 0.5)
    assert d["leaves_2cm"] is None and d["path_cm"] == 0.0 and d["reach_cm"] == 0.0
    assert d["close"] == {"step": 30, "demo_step": 30, "from_demo_cm": 0.0}
    drift = follow + np.stack([0.005 * np.clip(t - 10, 0, None), 0 * t, 0 * t], 1)
    d = divergence(t, -np.ones(len(t)), drift, demo, demo_grip, 10, 0.5)
    assert (d["leaves_2cm"], d["leaves_5cm"], d["close"]) == (5, 11, None)
    assert d["reach_cm"] == 13.4              # at step 24: 12 cm to the side, 6 cm above (sqrt(180))
    # which task's demos an approach follows: the drifting one is nearer a demo that drifts the same way
    from experiments.demo_divergence import approach, demo_approach, nearest_task
    other = demo + np.stack([0.005 * j, 0 * j, 0 * j], 1)
    mine = approach(t, -np.ones(len(t)), drift, 10, 0.5)
    assert len(mine) == 40 and len(demo_approach(demo, demo_grip)) == 31
    n = nearest_task(mine, {0: [demo_approach(demo, demo_grip)], 1: [demo_approach(other, demo_grip)], 2: []})
    assert n["follows"] == 1 and set(n["mean_cm"]) == {0, 1} and n["mean_cm"][1] < n["mean_cm"][0]


def test_the_parse_check_catches_a_bad_flag(tmp_path):
    """The check above must fail on a flag a CLI does not have."""
    bad = [["python", "evaluate.py", "--no-such-flag"], ["python", "-m", "envs.mini", "generate", "--out", "x"]]
    result = parse_only(bad)
    assert [b[0] for b in result] == [bad[0]], result


def test_shrink_gif_picks_the_first_success_and_failure(tmp_path):
    """experiments/shrink_gif.py --pick: the first success and the first failure (by task) of an evaluation
    with GIFs, every k-th frame plus the last, each shown k times as long."""
    import numpy as np
    from PIL import Image, ImageSequence
    from experiments.shrink_gif import pick
    ev = tmp_path / "eval"
    (ev / "videos").mkdir(parents=True)
    rows = [{"suite": "s", "task": 2, "trial": 0, "success": True, "steps": 9},
            {"suite": "s", "task": 0, "trial": 0, "success": False, "steps": 9, "failure_mode": "never_lifted"},
            {"suite": "s", "task": 1, "trial": 0, "success": True, "steps": 9}]
    (ev / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for r in rows:
        frames = [Image.fromarray(np.full((8, 24, 3), 20 * i + r["task"], np.uint8)) for i in range(10)]
        frames[0].save(ev / "videos" / f"s_task{r['task']}_trial0.gif", save_all=True, append_images=frames[1:],
                       duration=100, loop=0)
    chosen = pick(ev, tmp_path / "docs" / "s", every=4)
    assert chosen["success"]["task"] == 1 and chosen["failure"]["task"] == 0
    with Image.open(tmp_path / "docs" / "s_success.gif") as im:
        n = sum(1 for _ in ImageSequence.Iterator(im))
        assert n == 4 and im.info["duration"] == 400   # frames 0, 4, 8 and the last (9)


def test_shrink_gif_first_success_names_the_evaluate_flags(tmp_path):
    """experiments/shrink_gif.py --first-success: the evaluate.py flags (task, trials, --video-trial) that
    record the first successful episode by task, then trial; none when nothing succeeded."""
    from experiments.shrink_gif import first_success
    rows = [{"task": 4, "trial": 1, "success": True}, {"task": 2, "trial": 7, "success": True},
            {"task": 2, "trial": 5, "success": True}, {"task": 0, "trial": 0, "success": False}]
    (tmp_path / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert first_success(tmp_path) == ["--tasks", "2", "--trials", "6", "--video-trial", "5"]
    (tmp_path / "episodes.jsonl").write_text(json.dumps(rows[-1]) + "\n")
    assert first_success(tmp_path) == []


def test_stage_times_reads_the_stamps_of_a_log():
    """experiments/stage_times.py: each stage timed to the next stamp, the whole run from the first stamp
    to "done"; command lines between stamps are ignored; a log without stamps is an error."""
    from experiments.stage_times import table
    log = ("+ date\n2026-12-02 13:42:00 stage: generation\n+ python -m envs.libero generate\n"
           "2026-12-02 14:27:00 stage: artefacts\n2026-12-02 14:33:48 stage: done\n")
    rows = table(log).splitlines()
    assert rows[2] == "| generation | 13:42:00 | 45.0 min |" and rows[3] == "| artefacts | 14:27:00 | 6.8 min |"
    assert rows[-1] == "| **the whole run** | 13:42:00 → 14:33:48 | **51.8 min** |"
    assert table(log.rsplit("2026-12-02 14:33", 1)[0]).splitlines()[-1] == "| artefacts | 14:27:00 | (running) |"
    with pytest.raises(ValueError):
        table("+ python train.py\n")
