"""The embedded benchmark's commands: generate demonstrations, measure the expert, show a rollout, bench.

    python -m envs.mini generate --suite all --demos-per-task 2 --out /tmp/d      # tiny dataset (~40 s)
    python -m envs.mini generate --suite all --demos-per-task 50 --out data/mini  # LIBERO-sized (~15 min)
    python -m envs.mini generate --suite goal --demos-per-task 100 --perturb 0.2 --out data/goal100p  # DART
    python -m envs.mini success --suite all --inits 50                           # expert success table
    python -m envs.mini show --suite goal --task 0 --out /tmp/open_drawer.gif     # GIF of an expert rollout
    python -m envs.mini bench                                                    # steps/s, generation time
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import as_completed
from pathlib import Path

import numpy as np
from tqdm import tqdm

from envs.common import (BAR_INTERVAL, CONTROL_HZ, NUM_INIT_STATES, add_task_args, at_least, in_range, contact_sheet, executor,
                         generation_summary, print_table, select_tasks, task_row, write_report)
from envs.mini.env import MiniEnv
from envs.mini.expert import EXPERT_NOISE, rollout_expert, scripted_expert
from envs.mini.scene import SUITES, Suite, Task, get_suite, suite_names

# ----------------------------------------------------------------------------------------------
# Demonstrations and success tables: each worker process builds (and caches) its own environment.

_WORKER_ENV = {}


def _worker_env(suite_name, task_id, camera_size) -> MiniEnv:
    key = (suite_name, task_id, camera_size)
    if key not in _WORKER_ENV:
        for env in _WORKER_ENV.values():
            env.close()
        _WORKER_ENV.clear()
        _WORKER_ENV[key] = MiniEnv(suite_name, task_id, camera_size=camera_size)
    return _WORKER_ENV[key]


def _demo_job(suite_name, task_id, attempt, seed, camera_size, noise=EXPERT_NOISE, perturb=0.0):
    """Attempt k of a task starts from training init state k (never one of the 50 evaluation states)."""
    env = _worker_env(suite_name, task_id, camera_size)
    demo, ok = rollout_expert(suite_name, task_id, attempt, seed, env=env, split="train", noise=noise,
                              perturb=perturb)
    return suite_name, task_id, attempt, demo, ok


def _success_job(suite_name, task_id, inits, seed, perturb=0.0):
    env = _worker_env(suite_name, task_id, 0)
    out = []
    for i in inits:
        demo, ok = rollout_expert(suite_name, task_id, i, seed, env=env, keep_failed=True, perturb=perturb)
        out.append((ok, len(demo["actions"])))
    return suite_name, task_id, out


def _select_tasks(suite_arg, tasks_arg):
    return select_tasks(suite_names, get_suite, suite_arg, tasks_arg)


def _bddl_text(suite: Suite, task: Task) -> str:
    """A BDDL-like description stored in the file (LIBERO stores the task's BDDL source)."""
    goals = " ".join(f"({' '.join(str(x) for x in skill)})" for skill in task.plan)
    return (f"(define (problem {suite.name}_{task.index})\n  (:domain mini_libero)\n"
            f"  (:language {task.language})\n  (:objects {' '.join(o.name for o in suite.objects)})\n"
            f"  (:goal (And {goals})))\n")


def generate(suite="all", demos_per_task=2, out="data/mini", workers=2, seed=0, camera_size=128, tasks=None,
             noise=EXPERT_NOISE, perturb=0.0):
    """Write `out/<suite>/<task_name>_demo.hdf5` for every selected task (successful demos only),
    a contact sheet and a JSON report. Returns the per-task statistics."""
    from data import write_task_file  # imported here: worker processes never need torch
    out = Path(out)
    pairs = _select_tasks(suite, tasks)
    max_attempts = demos_per_task + max(10, demos_per_task)
    state = {p: {"demos": {}, "attempts": 0, "fails": 0, "next": demos_per_task} for p in pairs}
    queue = deque((s, t, k) for s, t in pairs for k in range(demos_per_task))  # (suite, task, attempt)
    stats, first_frames, pending = {}, {}, set()
    bar = tqdm(total=len(pairs) * demos_per_task, desc="demos", unit="demo", **BAR_INTERVAL)
    with executor(workers) as ex:
        while queue or pending:
            # a few jobs in flight at a time, in task order: memory holds about one task's demos
            while queue and len(pending) < 2 * max(1, workers):
                pending.add(ex.submit(_demo_job, *queue.popleft(), seed, camera_size, noise, perturb))
            done = next(as_completed(pending))
            pending.discard(done)
            s, t, attempt, demo, ok = done.result()
            st = state[(s, t)]
            st["attempts"] += 1
            if ok:
                st["demos"][attempt] = demo
                bar.update(1)
            else:
                st["fails"] += 1
                bar.set_postfix(failed=sum(v["fails"] for v in state.values()))
                if st["next"] < max_attempts:  # replace the failure with the next init state
                    queue.appendleft((s, t, st["next"]))
                    st["next"] += 1
            if st["attempts"] < st["next"]:
                continue
            # every attempt of this task has returned: write its file
            task = SUITES[s].tasks[t]
            demos = [st["demos"].pop(k) for k in sorted(st["demos"])]
            lengths = [len(d["actions"]) for d in demos]
            if demos:
                write_task_file(out / s / f"{task.name}_demo.hdf5", demos, language_instruction=task.language,
                                problem_name=f"{s}_{t}", domain_name="mini_libero", env_name="MiniEnv",
                                env_args={"suite": s, "task_id": t, "camera_size": camera_size,
                                          "control_freq": CONTROL_HZ, "sim": "envs.mini"},
                                bddl_file_name=f"{s}/{task.name}.bddl", bddl_file_content=_bddl_text(SUITES[s], task))
                first_frames[(s, t)] = demos[0]["obs"]["agentview_rgb"][0]
            stats[(s, t)] = task_row(s, task, len(demos), st["attempts"], lengths)
    bar.close()
    rows = [stats[p] for p in pairs]
    contact_sheet([(f"{s} {t}: {SUITES[s].tasks[t].language}", first_frames[(s, t)])
                   for s, t in pairs if (s, t) in first_frames], out / "contact_sheet.png")
    write_report(out / "sim_report.json", {"suite": suite, "demos_per_task": demos_per_task, "seed": seed,
                                           "camera_size": camera_size, "tasks": tasks, "noise": noise,
                                           "perturb": perturb}, rows)
    return rows


def measure_success(suite="all", inits=50, workers=2, seed=0, tasks=None, perturb=0.0):
    """Expert success per task over init states 0..inits-1 (physics only: cameras do not affect it)."""
    pairs = _select_tasks(suite, tasks)
    results = {}
    with executor(workers) as ex:
        futures = [ex.submit(_success_job, s, t, range(inits), seed, perturb) for s, t in pairs]
        for f in tqdm(as_completed(futures), total=len(futures), desc="tasks", unit="task", **BAR_INTERVAL):
            s, t, out = f.result()
            results[(s, t)] = out
    rows = []
    for s, t in pairs:
        ok, n = sum(ok for ok, _ in results[(s, t)]), len(results[(s, t)])
        rows.append(task_row(s, SUITES[s].tasks[t], ok, n, [k for good, k in results[(s, t)] if good],
                             success=ok, trials=n, max_steps=SUITES[s].max_steps))
    return rows


def show(suite, task, out, init=0, seed=0, camera_size=128, scale=2):
    """GIF of one expert rollout, agentview | eye-in-hand side by side, upright."""
    from PIL import Image
    demo, ok = rollout_expert(suite, task, init, seed, camera_size=camera_size, keep_failed=True)
    frames = np.concatenate([demo["obs"]["agentview_rgb"], demo["obs"]["eye_in_hand_rgb"]], axis=2)  # (T, H, 2W, 3)
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    images = [Image.fromarray(f) for f in frames]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    images[0].save(out, save_all=True, append_images=images[1:], duration=1000 // CONTROL_HZ, loop=0)
    print(f"{get_suite(suite).name} task {task} init {init}: {'success' if ok else 'FAILED'} in "
          f"{len(frames)} steps -> {out}")
    return ok


def bench(steps=400, camera_size=128, workers=2, demos_per_task=2, skip_generate=False):
    """Environment steps/s per process with both cameras rendering, and dataset generation wall time."""
    REAL_LIBERO = 8.0  # steps/s: 0.125 s per step with two 128x128 cameras on a CPU (SPEC.md Sec. 3)
    res = {}
    for label, size in (("physics + 2 cameras", camera_size), ("physics only", 0)):
        env = MiniEnv("mini_long", 3, camera_size=size)
        rng, t_step, n = np.random.default_rng(0), 0.0, 0
        for init in range(NUM_INIT_STATES):
            obs = env.set_init_state(init)
            expert = scripted_expert(env, rng)
            for k in range(env.suite.max_steps):
                action = expert(obs)
                t0 = time.perf_counter()
                obs, _, done, _ = env.step(action)
                if init > 0 or k >= 20:  # the first renders are slow (GL warm-up)
                    t_step += time.perf_counter() - t0
                    n += 1
                if done or n >= steps:
                    break
            if n >= steps:
                break
        env.close()
        res[label] = n / t_step
        print(f"{label:22s}: {res[label]:7.1f} steps/s per process ({1000 / res[label]:.2f} ms/step, "
              f"{size}x{size} images) = {res[label] / REAL_LIBERO:.1f}x the real LIBERO simulator (8 steps/s)")
    if not skip_generate:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            rows = generate("all", demos_per_task, tmp, workers=workers, camera_size=camera_size)
            wall = time.perf_counter() - t0
        frames = sum(r["mean_len"] * r["demos"] for r in rows)
        print(f"generate --suite all --demos-per-task {demos_per_task} --workers {workers}: {wall:.1f} s wall "
              f"({sum(r['demos'] for r in rows)} demos, {frames:.0f} steps)")
        res["generate_s"] = wall
    return res


# ----------------------------------------------------------------------------------------------
# Command line

def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m envs.mini", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    suite_help = "mini_spatial|mini_object|mini_goal|mini_long, short forms spatial|object|goal|long, " \
                 "a comma-separated list of these, or all"

    g = sub.add_parser("generate", formatter_class=argparse.ArgumentDefaultsHelpFormatter, help="write expert demonstrations in LIBERO's HDF5 layout")
    add_task_args(g, "all", suite_help)
    g.add_argument("--demos-per-task", type=at_least(1), default=50, help="successful demos to keep per task")
    g.add_argument("--out", required=True, help="output root; files go to OUT/<suite>/<task_name>_demo.hdf5")
    g.add_argument("--workers", type=at_least(1), default=os.cpu_count() or 1, help="rollout processes (1: in-process)")
    g.add_argument("--seed", type=int, default=0, help="expert noise seed (init states are fixed per task)")
    g.add_argument("--camera-size", type=at_least(8), default=128, help="image height = width in pixels")
    g.add_argument("--noise", type=in_range(0), default=EXPERT_NOISE,
                   help="std of the Gaussian noise on the expert's position actions (recorded as executed)")
    perturb_help = ("execute the expert's actions with bursts of pushes of up to this many action units per "
                    "position axis (2-6 steps, ~4%% of steps start one) and record the expert's own actions: "
                    "demos then show corrections (DART); 0 = off")
    g.add_argument("--perturb", type=in_range(0, 1), default=0.0, help=perturb_help)

    s = sub.add_parser("success", formatter_class=argparse.ArgumentDefaultsHelpFormatter, help="measure expert success per task (no rendering)")
    add_task_args(s, "all", suite_help)
    s.add_argument("--inits", type=at_least(1), default=50, help="init states 0..N-1 per task")
    s.add_argument("--workers", type=at_least(1), default=os.cpu_count() or 1, help="rollout processes (1: in-process)")
    s.add_argument("--seed", type=int, default=0, help="expert noise seed")
    s.add_argument("--perturb", type=in_range(0, 1), default=0.0, help=perturb_help)

    v = sub.add_parser("show", formatter_class=argparse.ArgumentDefaultsHelpFormatter, help="GIF of an expert rollout, both cameras side by side")
    v.add_argument("--suite", required=True, help=suite_help.replace(", or all", ""))
    v.add_argument("--task", type=int, default=0, help="task id within the suite")
    v.add_argument("--init", type=int, default=0, help="init state id (0..49)")
    v.add_argument("--seed", type=int, default=0, help="expert noise seed")
    v.add_argument("--camera-size", type=int, default=128, help="image height = width in pixels")
    v.add_argument("--out", required=True, help="output .gif path")

    b = sub.add_parser("bench", formatter_class=argparse.ArgumentDefaultsHelpFormatter, help="steps/s per process with both cameras, and dataset generation time")
    b.add_argument("--steps", type=int, default=400, help="timed environment steps per measurement")
    b.add_argument("--camera-size", type=int, default=128, help="image height = width in pixels")
    b.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for the generation run")
    b.add_argument("--demos-per-task", type=int, default=2, help="demos per task in the generation run")
    b.add_argument("--skip-generate", action="store_true", help="only measure steps/s")

    args = p.parse_args(argv)
    print(json.dumps(vars(args)))
    if args.cmd in ("generate", "success"):
        try:
            _select_tasks(args.suite, args.tasks)
        except ValueError as e:
            p.error(str(e))
    if args.cmd == "generate":
        t0 = time.perf_counter()
        rows = generate(args.suite, args.demos_per_task, args.out, args.workers, args.seed, args.camera_size,
                        args.tasks, args.noise, args.perturb)
        print(f"contact sheet: {Path(args.out) / 'contact_sheet.png'}")
        return generation_summary(rows, args.out, args.demos_per_task, time.perf_counter() - t0)
    elif args.cmd == "success":
        rows = measure_success(args.suite, args.inits, args.workers, args.seed, args.tasks, args.perturb)
        print_table(rows)
        worst = min(rows, key=lambda r: r["success"] / r["trials"])
        print(f"worst task: {worst['suite']} {worst['task']} {worst['success']}/{worst['trials']}")
    elif args.cmd == "show":
        show(args.suite, args.task, args.out, args.init, args.seed, args.camera_size)
    elif args.cmd == "bench":
        bench(args.steps, args.camera_size, args.workers, args.demos_per_task, args.skip_generate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
