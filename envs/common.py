"""The interface both simulators share, written once (SPEC.md Sec. 3).

`envs.mini` (the embedded MuJoCo benchmark) and `envs.libero` (the real LIBERO simulator, an optional
extra) each provide, over the pieces here:

    get_suite(name) -> Suite      .name, .max_steps, .tasks (Task: .index, .language, .name)
    make_env(suite, task_id, camera_size=128, seed=0) -> env with LIBERO's OffScreenRenderEnv protocol:
        .set_init_state(i | state), .set_val_state(i), .set_train_state(i), .reset(), .check_success(),
        .get_state(), .close(),
        .step(a, render=True) -> (obs, reward, done, info); obs = LIBERO's dict (images upside down), without
        the images after a step(render=False)
    generate(...)                 expert demonstrations -> data.write_task_file (LIBERO's HDF5 layout)
    measure_success(...)          the expert's success table from the evaluation init states
    bench(...)                    per-step and generation cost

What is shared lives here: LIBERO's action/observation conventions (`obs_proprio`, `quat2axisangle`), the
recording loop (`record_demo`) and its resume within a task (`PartialTask`), `--tasks` selection, the
per-task statistics row and its table, the JSON report, a process pool that degrades to in-process, the
contact sheet.
"""
from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CONTROL_HZ = 20       # LIBERO's control frequency (robosuite control_freq)
MAX_DELTA_POS = 0.05  # m per step at |action| = 1 (robosuite controllers/config/osc_pose.json)
MAX_DELTA_ROT = 0.5   # rad per step at |action| = 1
NUM_INIT_STATES = 50  # LIBERO's init files: 50 evaluation (test) start states per task
NOOP = np.array([0, 0, 0, 0, 0, 0, -1.0])  # hold still, gripper open
SPLITS = ("eval", "train", "val")  # start-state streams: test states, demonstrations, validation

# Progress bars refresh every 30 s, not ten times a second, when written to a log file (data.progress_bar)
BAR_INTERVAL = ({} if "TQDM_MININTERVAL" in os.environ or sys.stderr.isatty()
                else {"mininterval": 30.0, "maxinterval": 30.0})


# ----------------------------------------------------------------------------------------------
# Suites and tasks

@dataclass
class Task:
    index: int
    language: str   # the instruction
    name: str = ""  # LIBERO's task (file) name; data.py maps it back to `language`

    def __post_init__(self):
        self.name = self.name or self.language.replace(" ", "_")


@dataclass
class Suite:
    name: str
    max_steps: int  # the evaluation budget per episode
    tasks: list = field(default_factory=list)

    def task(self, task_id: int) -> Task:
        if not 0 <= task_id < len(self.tasks):
            raise ValueError(f"{self.name} has tasks 0..{len(self.tasks) - 1}, got {task_id}")
        return self.tasks[task_id]


def task_ids(suite: str, n: int, tasks_arg) -> list[int]:
    """The ids `--tasks` selects in a suite of n tasks (None or "all": every task), checked up front so a
    typo fails with one line naming the flag instead of a traceback from inside a rollout worker."""
    if tasks_arg is None or str(tasks_arg).strip() == "all":
        return list(range(n))
    try:
        ids = [int(t) for t in str(tasks_arg).split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--tasks {tasks_arg!r}: expected comma-separated integers or 'all'") from None
    bad = [t for t in ids if not 0 <= t < n]
    if bad:
        raise ValueError(f"--tasks {tasks_arg!r}: {suite} has tasks 0..{n - 1}, got {bad}")
    return ids


def select_tasks(suite_names, get_suite, suite_arg, tasks_arg) -> list[tuple[str, int]]:
    """(suite, task id) pairs for `--suite` and `--tasks` of one backend."""
    return [(name, t) for name in suite_names(suite_arg) for t in task_ids(name, len(get_suite(name).tasks), tasks_arg)]


# ----------------------------------------------------------------------------------------------
# LIBERO's observation conventions and the recording loop

def offset_cm(offset) -> tuple[float, float]:
    """An offset (dx, dy, dz) in m (envs.libero LiberoEnv.grasp_offset, goal_offset) -> (horizontal distance, height) in cm."""
    dx, dy, dz = offset
    return round(100 * float(np.hypot(dx, dy)), 1), round(100 * float(dz), 1)


def check_action(action) -> np.ndarray:
    """LIBERO's 7-D action (dpos 3, drot 3, gripper 1) as floats, or a ValueError saying what is wrong."""
    a = np.asarray(action, float).ravel()
    if a.shape != (7,):
        raise ValueError(f"action must have 7 values (dpos 3, drot 3, gripper 1), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"action has NaN/inf values: {a}")
    return a


def quat2axisangle(q_xyzw) -> np.ndarray:
    """robosuite's quat2axisangle: (x, y, z, w) -> axis * angle."""
    w = float(np.clip(q_xyzw[3], -1.0, 1.0))
    den = math.sqrt(max(1.0 - w * w, 0.0))
    return np.zeros(3) if den < 1e-8 else np.asarray(q_xyzw[:3]) * 2.0 * math.acos(w) / den


def obs_proprio(obs) -> np.ndarray:
    """A LIBERO-format observation -> the 8-D proprio its demos record (data.PROPRIO_KEYS:
    ee_pos (3), ee_ori = axis-angle of robot0_eef_quat (3), gripper_states (2)); shared by record_demo
    and the policy (--proprio), for both simulators."""
    return np.concatenate([np.asarray(obs["robot0_eef_pos"], np.float64), quat2axisangle(obs["robot0_eef_quat"]),
                           np.asarray(obs["robot0_gripper_qpos"], np.float64)])            # (8,)


def record_demo(env, expert, obs: dict, max_steps: int, model_file: str, cameras: bool, disturb=None):
    """Drive `env` with `expert(obs) -> action` from `obs` until `done` or `max_steps` and record the
    episode in data.write_task_file's format (LIBERO's demo keys) -> (demo dict, success).
    `disturb(action) -> executed action` (optional) perturbs execution; the expert's action is recorded.
    Observation t is recorded before action t (LIBERO); images are stored upright. Used by the experts
    of both simulators: both envs give LIBERO's observations."""
    rec = {k: [] for k in ("actions", "agentview_rgb", "eye_in_hand_rgb", "ee_pos", "ee_ori", "gripper_states",
                           "joint_states", "states", "robot_states")}
    success = False
    for _ in range(max_steps):
        action = expert(obs)
        quat, proprio = obs["robot0_eef_quat"], obs_proprio(obs)
        rec["ee_pos"].append(proprio[:3])
        rec["ee_ori"].append(proprio[3:6])
        rec["gripper_states"].append(proprio[6:])
        rec["joint_states"].append(obs["robot0_joint_pos"])
        rec["states"].append(env.get_state())
        rec["robot_states"].append(np.concatenate([obs["robot0_gripper_qpos"], obs["robot0_eef_pos"], quat]))
        if cameras:
            rec["agentview_rgb"].append(obs["agentview_image"][::-1, ::-1])  # upright
            rec["eye_in_hand_rgb"].append(obs["robot0_eye_in_hand_image"][::-1, ::-1])
        rec["actions"].append(action)
        obs, reward, done, info = env.step(action if disturb is None else disturb(action))
        if done:
            success = True
            break
    T = len(rec["actions"])
    demo = {"actions": np.asarray(rec["actions"]), "states": np.asarray(rec["states"]),
            "robot_states": np.asarray(rec["robot_states"]), "model_file": model_file,
            "init_state": rec["states"][0], "obs": {}}
    for k in ("ee_pos", "ee_ori", "gripper_states", "joint_states"):
        demo["obs"][k] = np.asarray(rec[k])
    if rec["agentview_rgb"]:
        demo["obs"]["agentview_rgb"] = np.asarray(rec["agentview_rgb"], np.uint8)  # (T, H, W, 3)
        demo["obs"]["eye_in_hand_rgb"] = np.asarray(rec["eye_in_hand_rgb"], np.uint8)
    demo["rewards"] = demo["dones"] = (np.arange(T) == T - 1).astype(np.uint8) * int(success)
    return demo, success


class PartialTask:
    """One task's generation so far, kept beside its future task file so that an interrupted generation
    resumes at the next attempt instead of redoing the task (attempt k starts from a placement seeded by k,
    so the resumed attempts are the ones the uninterrupted run would have made). A kept demo is one
    compressed .npz; `attempts.json` lists every attempt's outcome and seconds. Both are written
    atomically after each attempt; `clear()` removes the directory once the task file is written."""

    def __init__(self, task_file, meta: dict):
        self.dir = Path(task_file).with_name(f".{Path(task_file).name}.partial")
        self.meta = meta  # what must match for the attempts to be reused (seed, camera size)

    def load(self) -> tuple[list[dict], list[dict]]:
        """-> (kept demos in attempt order, attempt rows {k, ok, steps, s}); nothing when no partial run."""
        log = self.dir / "attempts.json"
        if not log.exists():
            return [], []
        state = json.loads(log.read_text())
        if state["meta"] != self.meta:
            raise SystemExit(f"error: {self.dir} holds attempts made with {state['meta']}, this generation "
                             f"asks for {self.meta}; remove that directory or use another --out")
        demos = []
        for row in state["attempts"]:
            if row["ok"]:
                with np.load(self.dir / f"attempt_{row['k']:05d}.npz", allow_pickle=False) as z:
                    demo = {"obs": {}}
                    for key in z.files:
                        if key.startswith("obs."):
                            demo["obs"][key[4:]] = z[key]
                        else:
                            demo[key] = str(z[key]) if key == "model_file" else z[key]
                demos.append(demo)
        return demos, state["attempts"]

    def add(self, attempts: list[dict], demo: dict | None):
        """Record the newest attempt (`attempts[-1]`) and, when it succeeded, its demo."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if demo is not None:
            flat = {k: v for k, v in demo.items() if k != "obs"}
            flat.update({f"obs.{k}": v for k, v in demo["obs"].items()})
            self._replace(f"attempt_{attempts[-1]['k']:05d}.npz", lambda f: np.savez_compressed(f, **flat))
        self._replace("attempts.json", lambda f: f.write(json.dumps({"meta": self.meta, "attempts": attempts},
                                                                    indent=0).encode()))

    def _replace(self, name: str, write):
        tmp = self.dir / f".{name}.tmp"
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, self.dir / name)

    def clear(self):
        if self.dir.exists():
            for f in self.dir.iterdir():
                f.unlink()
            self.dir.rmdir()


# ----------------------------------------------------------------------------------------------
# Statistics, tables, reports

def task_row(suite: str, task: Task, kept: int, attempts: int, lengths, **extra) -> dict:
    """One task's statistics: generation (kept demos of attempts) and success tables (successes of trials)
    share it; `lengths` are the episode lengths the mean/max describe."""
    lengths = list(lengths)
    return {"suite": suite, "task": task.index, "language": task.language, "demos": kept, "attempts": attempts,
            "success_rate": kept / max(attempts, 1), "mean_len": float(np.mean(lengths)) if lengths else 0.0,
            "max_len": max(lengths, default=0), **extra}


def print_table(rows):
    """The per-task table of `task_row`s, with the total."""
    print(f"{'suite':15s} {'id':>2s} {'ok':>9s} {'len mean/max':>13s}  instruction")
    for r in rows:
        print(f"{r['suite']:15s} {r['task']:2d} {r['demos']:4d}/{r['attempts']:<4d} "
              f"{r['mean_len']:7.0f}/{r['max_len']:<5d}  {r['language']}")
    n, d = sum(r["demos"] for r in rows), sum(r["attempts"] for r in rows)
    print(f"total {n}/{d} ({100 * n / max(d, 1):.0f}%)")


def write_report(path, config: dict, rows: list[dict]):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump({"config": config, "tasks": rows}, f, indent=1)


def generation_summary(rows, out, demos_per_task: int, wall: float) -> int:
    """The line `generate` ends with -> exit code (1 when a task got fewer demos than asked)."""
    print_table(rows)
    n = sum(r["demos"] for r in rows)
    print(f"wrote {n} demos for {len(rows)} tasks to {out} in {wall:.1f} s ({wall / max(n, 1):.1f} s per kept demo)")
    short = [r for r in rows if r["demos"] < demos_per_task]
    if short:
        print(f"WARNING: {len(short)} task(s) got fewer than {demos_per_task} successful demos", file=sys.stderr)
        return 1
    return 0


def contact_sheet(items, path, tile=192, cols=5):
    """A PNG grid of (label, upright image) tiles, each image labelled below."""
    if not items:
        return None
    import textwrap
    from PIL import Image, ImageDraw
    rows, band = -(-len(items) // cols), 62
    sheet = Image.new("RGB", (cols * tile, rows * (tile + band)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (label, img) in enumerate(items):
        x, y = (k % cols) * tile, (k // cols) * (tile + band)
        sheet.paste(Image.fromarray(img).resize((tile, tile), Image.NEAREST), (x, y))
        draw.multiline_text((x + 3, y + tile + 2), "\n".join(textwrap.wrap(label, 34)[:4]), fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


# ----------------------------------------------------------------------------------------------
# Command-line argument types (every CLI's flag checks; training re-exports them)

def at_least(n: int):
    """An argparse `type` for an integer flag that must be >= n: a bad value is argparse's usage error."""
    import argparse

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < n:
            raise argparse.ArgumentTypeError(f"must be >= {n}, got {value}")
        return value
    parse.__name__ = f"integer >= {n}"
    return parse


def in_range(lo: float, hi: float | None = None, open_lo: bool = False):
    """An argparse `type` for a real-valued flag in [lo, hi] ((lo, hi] with `open_lo`): a bad value is
    argparse's usage error."""
    import argparse

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value < lo or (open_lo and value == lo) or (hi is not None and value > hi) or value != value:
            raise argparse.ArgumentTypeError(f"must be in {'(' if open_lo else '['}{lo}, "
                                             f"{'inf)' if hi is None else f'{hi}]'}, got {text}")
        return value
    parse.__name__ = "number in range"
    return parse


# ----------------------------------------------------------------------------------------------
# Parallel rollouts

class _Inline:
    """The executor interface run in-process (--workers 1)."""
    def submit(self, fn, *args):
        f = Future()
        f.set_result(fn(*args))
        return f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def executor(workers: int):
    """A spawn-context process pool (each worker builds its own simulator), or in-process for workers <= 1."""
    return _Inline() if workers <= 1 else ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))


def add_task_args(p, suite_default: str, suite_help: str):
    """--suite and --tasks, shared by every subcommand that selects tasks."""
    p.add_argument("--suite", default=suite_default, help=suite_help)
    p.add_argument("--tasks", default="all", help="comma-separated task ids within each suite, or all")
