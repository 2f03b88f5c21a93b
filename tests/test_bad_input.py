"""Bad input as a matrix: each command × a broken file or flag -> exit status 2, one line naming the file
or the flag, no traceback, and every file that was there before left as it was (compared by hash).

Every case runs the real command line in a child process (what a user sees), ~3-5 s each."""
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import training as TR

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def policy(artifacts, tmp_path_factory):
    """A co-fine-tuned run directory (1 step of a tiny model) and the flags that name its inputs."""
    import cofinetune
    out = tmp_path_factory.mktemp("bad") / "cft"
    art = ["--data", str(artifacts.data), "--tokenizers", str(artifacts.tokenizers), "--vqgan", str(artifacts.vqgan),
           "--extractor", str(artifacts.extractor)]
    cofinetune.main([*art, "--init-from", "none", "--tiny", "--width", "32", "--layers", "2", "--heads", "2",
                     "--steps", "1", "--batch-size", "2", "--out", str(out), "--workers", "0"])
    return out, art, artifacts


def _hashes(*dirs) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for d in dirs if Path(d).exists()
            for p in sorted(Path(d).rglob("*")) if p.is_file()}


def _truncate(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _copy(policy, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(policy[0], dst)
    return dst


# (id, how to break the input -> (command args, folders that must stay unchanged), what the one line names)
def _eval(run, *flags):
    return ["evaluate.py", "--policy", str(run), "--env", "mini", "--suite", "mini_goal", "--tasks", "0",
            "--trials", "1", "--workers", "1", "--videos", "0", *flags]


def case_truncated_weights(policy, tmp_path):
    run = _copy(policy, tmp_path)
    _truncate(run / "model.safetensors")
    return _eval(run, "--out", str(tmp_path / "eval")), [run], f"{run / 'model.safetensors'}: unreadable weights"


def case_config_not_json(policy, tmp_path):
    run = _copy(policy, tmp_path)
    (run / "config.json").write_text("{not json")
    return _eval(run, "--out", str(tmp_path / "eval")), [run], f"{run / 'config.json'}: not valid JSON"


def case_missing_policy(policy, tmp_path):
    run = tmp_path / "nothing_here"
    return _eval(run, "--out", str(tmp_path / "eval")), [], f"{run / 'config.json'}: not found"


def case_truncated_vqgan_inside_policy(policy, tmp_path):
    run = _copy(policy, tmp_path)
    weights = next((run / "vqgan").rglob("model.safetensors"))
    _truncate(weights)
    return _eval(run, "--out", str(tmp_path / "eval")), [run], f"{weights}: unreadable weights"


def case_negative_trials(policy, tmp_path):
    return (["evaluate.py", "--policy", "zero", "--suite", "mini_goal", "--trials", "-3", "--out", str(tmp_path)],
            [], "argument --trials: must be >= 1, got -3")


def case_zero_workers(policy, tmp_path):
    return (["evaluate.py", "--policy", "zero", "--suite", "mini_goal", "--workers", "0", "--out", str(tmp_path)],
            [], "argument --workers: must be >= 1, got 0")


def case_earlier_evaluation(policy, tmp_path):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "eval_info.json").write_text('{"overall": {"n": 50, "success": 40}}')
    return (["evaluate.py", "--policy", "zero", "--suite", "mini_goal", "--tasks", "0", "--trials", "1",
             "--out", str(out)], [out], f"{out / 'eval_info.json'} holds an earlier evaluation; pass --resume")


def case_truncated_init_from(policy, tmp_path):
    run = _copy(policy, tmp_path)
    _truncate(run / "model.safetensors")
    return (["cofinetune.py", *policy[1], "--init-from", str(run), "--tiny", "--steps", "1", "--batch-size", "2",
             "--out", str(tmp_path / "cft2"), "--workers", "0"], [run], f"{run / 'model.safetensors'}: unreadable weights")


def case_truncated_resume_state(policy, tmp_path):
    run = _copy(policy, tmp_path)
    _truncate(run / "train_state.pt")
    return (["cofinetune.py", *policy[1], "--init-from", "none", "--tiny", "--width", "32", "--layers", "2",
             "--heads", "2", "--steps", "2", "--batch-size", "2", "--out", str(run), "--workers", "0", "--resume"],
            [run], f"{run / 'train_state.pt'}: unreadable resume state")


def case_missing_data(policy, tmp_path):
    return ["data.py", "inspect", str(tmp_path / "no_such_folder")], [], str(tmp_path / "no_such_folder")


def _copy_dir(src, tmp_path, name) -> Path:
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def case_cache_with_truncated_vqgan(policy, tmp_path):
    vq = _copy_dir(policy[2].vqgan, tmp_path, "vqgan")
    _truncate(vq / "model.safetensors")
    return (["tokenizers.py", "cache", "--data", str(policy[2].data), "--vqgan", str(vq), "--out",
             str(tmp_path / "ids.hdf5")], [vq], f"{vq / 'model.safetensors'}: unreadable weights")


def case_export_with_truncated_extractor(policy, tmp_path):
    ex = _copy_dir(policy[2].extractor, tmp_path, "extractor")
    _truncate(ex / "model.safetensors")
    return (["train_extractor.py", "--data", str(policy[2].data), "--out", str(ex), "--export-only"], [ex],
            f"{ex / 'model.safetensors'}: unreadable weights")


def case_extractor_config_not_json(policy, tmp_path):
    ex = _copy_dir(policy[2].extractor, tmp_path, "extractor")
    (ex / "config.json").write_text("[")
    return (["train_extractor.py", "--data", str(policy[2].data), "--out", str(ex), "--export-only"], [ex],
            f"{ex / 'config.json'}: not valid JSON")


def case_pretrain_zero_steps(policy, tmp_path):
    return (["pretrain_vla.py", *policy[1], "--tiny", "--steps", "0", "--out", str(tmp_path / "pre")], [],
            "--steps must be >= 1, got 0")


def case_fit_missing_data(policy, tmp_path):
    return (["tokenizers.py", "fit", "--data", str(tmp_path / "no_data"), "--out", str(tmp_path / "tok")], [],
            str(tmp_path / "no_data"))


def _wrong_shape_data(tmp_path) -> Path:
    """A task file whose demo_1 has 6-D actions (LIBERO's are 7-D): what each stage must name."""
    import h5py
    from conftest import write_raw
    path = tmp_path / "bad_data" / "libero_spatial" / "pick_up_the_black_bowl_demo.hdf5"
    write_raw(path, lengths=(12, 9))
    with h5py.File(path, "a") as f:
        del f["data/demo_1/actions"]
        f["data/demo_1"].create_dataset("actions", data=np.zeros((9, 6)))
    return path.parent.parent


WRONG_SHAPE = "demo 'demo_1', key 'actions'"


def case_vqgan_wrong_shape_data(policy, tmp_path):
    d = _wrong_shape_data(tmp_path)
    return (["tokenizers.py", "train-vqgan", "--data", str(d), "--tiny", "--steps", "1", "--out", str(tmp_path / "vq")],
            [d], WRONG_SHAPE)


def case_extractor_wrong_shape_data(policy, tmp_path):
    d = _wrong_shape_data(tmp_path)
    return (["train_extractor.py", "--data", str(d), "--tiny", "--steps", "1", "--out", str(tmp_path / "ex")],
            [d], WRONG_SHAPE)


def case_fit_wrong_shape_data(policy, tmp_path):
    d = _wrong_shape_data(tmp_path)
    return ["tokenizers.py", "fit", "--data", str(d), "--out", str(tmp_path / "tok")], [d], WRONG_SHAPE


def case_pretrain_wrong_shape_data(policy, tmp_path):
    d = _wrong_shape_data(tmp_path)
    art = list(policy[1])
    art[art.index("--data") + 1] = str(d)
    return ["pretrain_vla.py", *art, "--tiny", "--steps", "1", "--out", str(tmp_path / "pre")], [d], WRONG_SHAPE


def case_tokenizer_report_truncated_vqgan(policy, tmp_path):
    vq = _copy_dir(policy[2].vqgan, tmp_path, "vqgan")
    _truncate(vq / "model.safetensors")
    return (["experiments/tokenizer_report.py", "--data", str(policy[2].data), "--tokenizers", str(policy[2].tokenizers),
             "--vqgan", str(vq)], [vq], f"{vq / 'model.safetensors'}: unreadable weights")


def case_generate_zero_demos(policy, tmp_path):
    return (["-m", "envs.mini", "generate", "--suite", "mini_goal", "--demos-per-task", "0", "--out", str(tmp_path / "g")],
            [], "argument --demos-per-task: must be >= 1, got 0")


def case_negative_perturb(policy, tmp_path):
    return (["evaluate.py", "--policy", "zero", "--suite", "mini_goal", "--perturb", "-0.5", "--out", str(tmp_path)],
            [], "argument --perturb: must be in [0, 1], got -0.5")


def case_ema_out_of_range(policy, tmp_path):
    return (["cofinetune.py", *policy[1], "--tiny", "--ema", "1.5", "--out", str(tmp_path / "c")], [],
            "argument --ema: must be in [0, 1], got 1.5")


def case_negative_motion_weight(policy, tmp_path):
    return (["cofinetune.py", *policy[1], "--tiny", "--lambda1", "-1", "--out", str(tmp_path / "c")], [],
            "argument --lambda1: must be in [0, inf), got -1")


def case_vqgan_zero_lr(policy, tmp_path):
    return (["tokenizers.py", "train-vqgan", "--data", str(policy[2].data), "--tiny", "--lr", "0",
             "--out", str(tmp_path / "vq")], [], "argument --lr: must be in (0, inf), got 0")


def case_training_over_an_earlier_run(policy, tmp_path):
    run = _copy(policy, tmp_path)
    return (["cofinetune.py", *policy[1], "--init-from", "none", "--tiny", "--steps", "1", "--batch-size", "2",
             "--out", str(run), "--workers", "0"], [run], f"{run} holds an earlier run (model.safetensors, train_state.pt, "
            f"step 1); pass --resume to continue it, --force to train a new one over it")


def case_vqgan_over_an_earlier_run(policy, tmp_path):
    vq = _copy_dir(policy[2].vqgan, tmp_path, "vqgan")
    return (["tokenizers.py", "train-vqgan", "--data", str(policy[2].data), "--tiny", "--steps", "1", "--out", str(vq)],
            [vq], f"{vq} holds an earlier run")


CASES = [case_truncated_weights, case_config_not_json, case_missing_policy, case_truncated_vqgan_inside_policy,
         case_negative_trials, case_zero_workers, case_earlier_evaluation, case_truncated_init_from,
         case_truncated_resume_state, case_missing_data, case_cache_with_truncated_vqgan,
         case_export_with_truncated_extractor, case_extractor_config_not_json, case_pretrain_zero_steps,
         case_fit_missing_data, case_vqgan_wrong_shape_data, case_extractor_wrong_shape_data,
         case_fit_wrong_shape_data, case_pretrain_wrong_shape_data, case_tokenizer_report_truncated_vqgan,
         case_generate_zero_demos, case_negative_perturb, case_ema_out_of_range, case_negative_motion_weight,
         case_vqgan_zero_lr, case_training_over_an_earlier_run, case_vqgan_over_an_earlier_run]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__[5:] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_changes(case, policy, tmp_path):
    args, keep, names = case(policy, tmp_path)
    before = _hashes(*keep)
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert lines and names in lines[-1], lines[-3:]
    assert _hashes(*keep) == before   # nothing there before was touched


def test_an_unwritable_output_folder_is_named_before_training(artifacts, tmp_path):
    """The VLA stage stops before its first step with one line naming the folder (not a PermissionError
    traceback at the first checkpoint)."""
    if hasattr(__import__("os"), "geteuid") and __import__("os").geteuid() == 0:
        # root writes anywhere: a path under a regular file cannot be created by anyone
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "cft"
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        out = tmp_path / "ro" / "cft"
    art = ["--data", str(artifacts.data), "--tokenizers", str(artifacts.tokenizers), "--vqgan", str(artifacts.vqgan),
           "--extractor", str(artifacts.extractor)]
    r = subprocess.run([sys.executable, "cofinetune.py", *art, "--init-from", "none", "--tiny", "--steps", "1",
                        "--batch-size", "2", "--out", str(out), "--workers", "0"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert lines[-1].startswith(f"error: {out}") and "choose another --out" in lines[-1], lines[-3:]


# ----------------------------------------------------------------------------------------------
# Faults: a training run stopped or killed anywhere resumes onto the uninterrupted run's trajectory

# the child of the mid-write arm: torch.save writes half of the second checkpoint's train_state.pt, then the
# process SIGKILLs itself (as a kill landing inside the write would leave it)
KILL_IN_WRITE = """
import io, os, runpy, signal, sys
import torch
real, calls = torch.save, []
def save(obj, f, *a, **k):
    calls.append(f)
    if len(calls) == 2:
        buf = io.BytesIO()
        real(obj, buf)
        open(f, "wb").write(buf.getvalue()[: len(buf.getvalue()) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return real(obj, f, *a, **k)
torch.save = save
sys.argv = sys.argv[1:]
runpy.run_path("pretrain_vla.py", run_name="__main__")
"""


def _pretrain(artifacts, out, *extra, kill_in_write=False):
    cmd = [sys.executable, *(["-c", KILL_IN_WRITE] if kill_in_write else []), "pretrain_vla.py", "--data", str(artifacts.data), "--tokenizers", str(artifacts.tokenizers),
           "--vqgan", str(artifacts.vqgan), "--extractor", str(artifacts.extractor), "--out", str(out), "--tiny",
           "--width", "32", "--layers", "2", "--heads", "2", "--batch-size", "4", "--workers", "0",
           "--log-every", "1", "--ckpt-every", "2", "--steps", "8", "--val-every", "0", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _weights(out):
    from safetensors.torch import load_file
    return load_file(str(out / "model.safetensors"))


def test_a_stopped_or_killed_run_resumes_to_the_same_weights(artifacts, tmp_path):
    """Uninterrupted 8 steps (more than one epoch of the tiny data) vs (a) --stop-after 3, then --resume;
    (b) SIGKILL once the first checkpoint exists (wherever it lands: the resume starts from the last
    complete checkpoint), then --resume; (c) SIGKILL inside the second checkpoint's write (half of
    train_state.pt written to its temporary file), then --resume from the first. All end bit-identical to the
    uninterrupted run."""
    import signal
    import time
    import torch
    full = _pretrain(artifacts, tmp_path / "full")
    assert full.wait(timeout=600) == 0, full.stderr.read()[-2000:]
    stopped = _pretrain(artifacts, tmp_path / "stop", "--stop-after", "3")
    assert stopped.wait(timeout=600) == 0
    assert '"step": 3' in (tmp_path / "stop" / "config.json").read_text()
    killed = _pretrain(artifacts, tmp_path / "kill")
    state = tmp_path / "kill" / "train_state.pt"
    deadline = time.time() + 300
    while not state.exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    midwrite = _pretrain(artifacts, tmp_path / "midwrite", kill_in_write=True)
    assert midwrite.wait(timeout=600) == -signal.SIGKILL
    assert (tmp_path / "midwrite" / ".train_state.pt.tmp").exists()  # the cut write, never renamed into place
    assert torch.load(tmp_path / "midwrite" / "train_state.pt", weights_only=False)["step"] == 2
    for name in ("stop", "kill", "midwrite"):
        resumed = _pretrain(artifacts, tmp_path / name, "--resume")
        assert resumed.wait(timeout=600) == 0, resumed.stderr.read()[-2000:]
        a, b = _weights(tmp_path / "full"), _weights(tmp_path / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_a_run_takes_the_cores_a_busy_process_leaves():
    """training.free_cores: with one core spun by another process, at most cores - 1 are reported idle (what
    a stage's default thread count then takes), and never fewer than 1."""
    cores = os.cpu_count() or 1
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        busy = TR.free_cores()
    finally:
        spin.kill()
        spin.wait()
    assert 1 <= busy <= max(1, cores - 1)
    assert "idle at start" in TR.threads_line(busy)
