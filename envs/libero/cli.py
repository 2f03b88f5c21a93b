"""The real-LIBERO commands: rollouts of the expert, demonstrations in the official layout, success tables,
costs.

    python -m envs.libero setup
    python -m envs.libero generate --suite libero_object --demos-per-task 3 --out data/libero_gen
    python -m envs.libero success --suite libero_object --inits 10    # expert from official init states
    python -m envs.libero bench [--generation]                         # construction / reset / step cost
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from envs.common import (CONTROL_HZ, PartialTask, add_task_args, at_least, executor, generation_summary, offset_cm, print_table,
                         record_demo, select_tasks, task_row, write_report)
from envs.libero.env import (INIT_NOISE, STANDARD_SUITES, SUITE_MAX_STEPS, LiberoEnv, get_suite, suite_name, suite_names,
                             train_seed)
from envs.libero.expert import expert_support, scripted_expert
from envs.libero.install import _installed, setup, torchvision_check


def _log(*args):
    print(*args, flush=True)


def rollout_expert(env: LiberoEnv, start, seed: int = 0, max_steps: int | None = None,
                   keep_failed: bool = False):
    """Run the expert once -> (demo dict in data.write_task_file's format | None, success).

    `start`: ("eval", i) LIBERO's official init state i, or ("train", k) demo attempt k, which starts
    from `env.place(train_seed(...))` (a placement none of the evaluation states use, the arm noise as theirs).
    Observation t is recorded before action t; images are stored upright in the dict (write_task_file
    turns them upside down again, as LIBERO's files hold them). A failed rollout returns None unless
    `keep_failed`."""
    split, k = start
    suite, task_id = env.suite.name, env.task_id
    if split == "eval":
        obs = env.set_init_state(int(k))
    elif split == "train":
        obs = env.place(train_seed(suite, task_id, int(k), seed))
    else:
        raise ValueError(f"start must be ('eval', i) or ('train', k), got {start!r}")
    rng = np.random.default_rng([seed, task_id, int(k), zlib.crc32(f"{suite}/{split}".encode())])
    expert = scripted_expert(env, rng)
    demo, success = record_demo(env, expert, obs, max_steps or env.suite.max_steps, env.sim.model.get_xml(),
                                    cameras=bool(env.camera_size))
    return (demo, success) if success or keep_failed else (None, False)


def replay(env: LiberoEnv, init_state, actions, model_xml: str | None = None) -> tuple[bool, int]:
    """Replay recorded actions from a recorded state, or from official init state `init_state` when it is an
    index (its fixtures' draw seeded as in the recording), in the recorded scene when `model_xml`, a demo's
    model_file, is given -> (reached success, steps taken)."""
    if model_xml:
        env.reset_from_xml(model_xml)
    env.set_init_state(np.asarray(init_state))
    for t, a in enumerate(np.asarray(actions)):
        if env.step(a)[2]:
            return True, t + 1
    return False, len(actions)


def _task_file_attrs(env: LiberoEnv, camera_size: int) -> dict:
    """The `data` group's attributes, as LIBERO's create_dataset.py fills them."""
    ctrl, bddl = env.env, Path(env.task.bddl_file)
    env_name = type(ctrl.env).__name__
    return dict(language_instruction=ctrl.language_instruction, problem_name=ctrl.problem_name,
                domain_name=ctrl.domain_name, env_name=env_name,
                env_args={"type": 1, "env_name": env_name, "problem_name": ctrl.problem_name,
                          "bddl_file": f"{env.suite.name}/{bddl.name}",
                          "env_kwargs": {"robots": ["Panda"], "controller": "OSC_POSE",
                                         "control_freq": CONTROL_HZ, "camera_heights": camera_size,
                                         "camera_widths": camera_size,
                                         "camera_names": ["agentview", "robot0_eye_in_hand"]},
                          "generator": "envs.libero scripted expert",
                          # LiberoEnv.place's arm noise (std, rad) at every demo's start, not robosuite's
                          "arm_init_noise": env.init_noise},
                bddl_file_name=f"{env.suite.name}/{bddl.name}", bddl_file_content=bddl.read_text())


def generate_task(suite, task_id: int, demos_per_task: int, out, seed: int = 0, camera_size: int = 128,
                  max_attempts: int | None = None, log=_log, give_up_after: int = 10,
                  init_noise: float = INIT_NOISE) -> dict:
    """Demonstrations of one task -> `out/<suite>/<task_name>_demo.hdf5` (successful episodes only).
    Attempts k = 0, 1, ... (training placements) until `demos_per_task` succeed or `max_attempts`; a task
    whose first `give_up_after` attempts all fail is given up (each failure costs the whole step budget
    with cameras: ~45 s). Every attempt is kept as it ends (`PartialTask`), so an interrupted run resumes
    at the next attempt. `init_noise`: the arm's joint noise at each placement (INIT_NOISE, as in the
    official init states; 0 gives the noise-free starts of the generations before 2026-12-04)."""
    from data import write_task_file  # torch is needed only here
    suite = get_suite(suite)
    path = Path(out) / suite.name / f"{suite.tasks[task_id].name}_demo.hdf5"
    done = _finished_task(path, demos_per_task, camera_size, init_noise)
    if done is not None:  # an earlier, interrupted generation finished this task: resume after it
        log(f"  {suite.name} task {task_id}: {done['demos']} demos already in {done['file']}, kept")
        return task_row(suite.name, suite.tasks[task_id], done["demos"], done["demos"], done["lengths"],
                        kept_from_earlier_run=True, file=done["file"])
    max_attempts = max_attempts or demos_per_task + max(5, demos_per_task // 2)
    partial = PartialTask(path, {"seed": seed, "camera_size": camera_size, "init_noise": init_noise})
    demos, attempts = partial.load()
    if attempts:
        log(f"  {suite.name} task {task_id}: resuming after attempt {len(attempts) - 1} "
            f"({len(demos)} demos kept in {partial.dir})")
    t0 = time.perf_counter()
    env = LiberoEnv(suite, task_id, camera_size=camera_size, init_noise=init_noise)
    t_build = time.perf_counter() - t0

    def hopeless():
        return not demos and len(attempts) >= give_up_after
    while len(demos) < demos_per_task and len(attempts) < max_attempts and not hopeless():
        t1 = time.perf_counter()
        demo, ok = rollout_expert(env, ("train", len(attempts)), seed)
        attempts.append({"k": len(attempts), "ok": ok, "steps": len(demo["actions"]) if ok else None,
                         "s": time.perf_counter() - t1})
        partial.add(attempts, demo)
        if ok:
            demos.append(demo)
        log(f"  {suite.name} task {task_id} attempt {len(attempts) - 1}: {'ok' if ok else 'FAILED'} "
            f"({attempts[-1]['steps'] or '-'} steps, {attempts[-1]['s']:.1f} s)")
    if hopeless():
        log(f"  {suite.name} task {task_id}: given up, its first {len(attempts)} attempts all failed")
    task = suite.tasks[task_id]
    written = None
    if demos:
        written = write_task_file(path, demos, **_task_file_attrs(env, camera_size))
    env.close()
    times = [a["s"] for a in attempts]
    row = task_row(suite.name, task, len(demos), len(attempts), [len(d["actions"]) for d in demos],
                   env_build_s=t_build, s_per_attempt=float(np.mean(times)) if times else 0.0,
                   file=str(written) if written else None, given_up=hopeless())
    # the task file holds the demos now; a short or given-up task keeps its attempts, so a re-run skips them
    if len(demos) >= demos_per_task:
        partial.clear()
    return row


def _finished_task(path: Path, demos_per_task: int, camera_size: int, init_noise: float = INIT_NOISE) -> dict | None:
    """A task file an earlier generation wrote with at least `demos_per_task` demos at this camera size
    and arm noise -> {"demos", "lengths", "file"}; None when there is none or it holds fewer (generated
    again: attempts are seeded, so the same demos come first). Another camera size or arm noise (files
    without the key: none, the generations before 2026-12-04) is refused, never overwritten."""
    if not path.exists():
        return None
    import h5py
    try:
        with h5py.File(path, "r") as f:
            g = f["data"]
            lengths = [len(g[k]["actions"]) for k in g if k.startswith("demo_")]
            env_args = json.loads(g.attrs["env_args"])
            size = env_args["env_kwargs"]["camera_heights"]
            noise = float(env_args.get("arm_init_noise", 0.0))
    except Exception as e:  # truncated or foreign: say so rather than regenerate over it
        raise SystemExit(f"error: {path} exists but cannot be read as a generated task file ({e}); "
                         f"move it away to generate this task again")
    if size != camera_size:
        raise SystemExit(f"error: {path} holds {size}² images, this generation asks for {camera_size}²; "
                         f"use another --out or --camera-size {size}")
    if noise != init_noise:
        raise SystemExit(f"error: {path} holds demos started with arm joint noise {noise}, this generation "
                         f"asks for {init_noise}; use another --out or --init-noise {noise}")
    return {"demos": len(lengths), "lengths": lengths, "file": str(path)} if len(lengths) >= demos_per_task else None


def unsupported(pairs) -> list[tuple[str, int, str]]:
    """(suite, task, why) of the selected tasks the scripted experts cannot do, from their BDDL files."""
    return [(s, t, why) for s, t in pairs if (why := expert_support(get_suite(s).tasks[t]))]


def _select(suite_arg, tasks_arg) -> list[tuple[str, int]]:
    """`tasks_arg`: a --tasks string within `suite_arg`, or the (suite, task) pairs themselves."""
    if isinstance(tasks_arg, list):
        return [(suite_name(s), int(t)) for s, t in tasks_arg]
    return select_tasks(suite_names, get_suite, suite_arg, tasks_arg)


def generate(suite="libero_object", demos_per_task=2, out="data/libero_gen", seed=0, camera_size=128,
             tasks=None, workers=1, log=_log, give_up_after: int = 10, init_noise: float = INIT_NOISE,
             max_attempts: int | None = None) -> list[dict]:
    """Write demos for every selected task and `out/libero_sim_report.json` -> the per-task statistics.
    `workers` > 1: one process per task at a time (each builds its own simulator; rendering is CPU-bound,
    so more workers than cores only slows each down). `max_attempts`: per task (None: demos + max(5, demos // 2))."""
    pairs = _select(suite, tasks)
    with executor(workers) as ex:
        # the progress lines go to `log` in-process; worker processes print their own
        futures = [ex.submit(generate_task, s, t, demos_per_task, str(out), seed, camera_size, max_attempts,
                             log if workers <= 1 else _log, give_up_after, init_noise) for s, t in pairs]
        rows = [f.result() for f in futures]
    write_report(Path(out) / "libero_sim_report.json", {"suite": suite, "demos_per_task": demos_per_task,
                                                         "seed": seed, "camera_size": camera_size, "tasks": tasks,
                                                         "give_up_after": give_up_after,
                                                         "max_attempts": max_attempts,
                                                         "init_noise": init_noise}, rows)
    return rows


def _success_job(suite: str, task_id: int, inits: int, seed: int) -> dict:
    """The expert from init states 0..inits-1 of one task, physics only -> its task_row."""
    t0 = time.perf_counter()
    env = LiberoEnv(suite, task_id, camera_size=0)
    lengths, ok, grasps = [], 0, []
    for i in range(inits):
        demo, success = rollout_expert(env, ("eval", i), seed, keep_failed=True)
        ok += success
        lengths.append(len(demo["actions"]))
        grasps.append(env.grasp_offset())  # hand - object at the first firm close (m), the policy's reference
    env.close()
    xy, dz = (list(v) for v in zip(*[offset_cm(g) for g in grasps if g is not None])) if any(grasps) else ([], [])
    row = task_row(suite, env.task, ok, inits, lengths, success=ok, trials=inits, seconds=time.perf_counter() - t0,
                   grasp_xy_cm=xy, grasp_dz_cm=dz)
    grasp = f", hand at the first close {np.median(xy):.1f} cm (xy), {np.median(dz):+.1f} cm (z) from the object" if xy else ""
    _log(f"  {suite} task {task_id}: {ok}/{inits}  ({row['seconds']:.0f} s{grasp})")
    return row


def measure_success(suite="libero_object", inits=10, seed=0, tasks=None, workers=1) -> list[dict]:
    """The expert from the official init states 0..inits-1 of each selected task, without cameras."""
    pairs = _select(suite, tasks)
    with executor(workers) as ex:
        futures = [ex.submit(_success_job, s, t, inits, seed) for s, t in pairs]
        return [f.result() for f in futures]


def bench(suite="libero_object", task=0, steps=40, camera_size=128, log=_log) -> dict:
    """Seconds for env construction, reset, set_init_state, and a step with cameras, with them skipped
    (step(render=False)) and without them."""
    res = {}
    for size in (camera_size, 0):
        tag = f"cam{size}" if size else "nocam"
        t0 = time.perf_counter()
        env = LiberoEnv(suite, task, camera_size=size)
        res[f"construct_{tag}_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        env.reset()
        res[f"reset_{tag}_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        env.set_init_state(0)
        res[f"set_init_state_{tag}_s"] = time.perf_counter() - t0
        noop = np.r_[np.zeros(6), -1.0]
        env.step(noop)  # the first step compiles robosuite's numba kernels
        t0 = time.perf_counter()
        for _ in range(steps):
            env.step(noop)
        res[f"step_{tag}_s"] = (time.perf_counter() - t0) / steps
        if size:  # the same env with its cameras skipped (evaluate.py between re-plans)
            t0 = time.perf_counter()
            for _ in range(steps):
                env.step(noop, render=False)
            res[f"step_{tag}_render_off_s"] = (time.perf_counter() - t0) / steps
        env.close()
    for k, v in res.items():
        log(f"  {k:<24} {v:.4f}")
    return res


def bench_generation(suites=STANDARD_SUITES, task=0, demos=2, camera_size=128, log=_log) -> list[dict]:
    """Seconds per demonstration with cameras, per suite: `generate_task` for one task of each, timed
    (construction apart), into a temporary folder -> one row per suite."""
    import tempfile
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in suites:
            t0 = time.perf_counter()
            row = generate_task(s, task, demos, tmp, camera_size=camera_size, log=lambda *_: None)
            rows.append({"suite": s, "task": task, "demos": row["demos"], "attempts": row["attempts"],
                         "env_build_s": row["env_build_s"], "s_per_attempt": row["s_per_attempt"],
                         "mean_len": row["mean_len"], "wall_s": time.perf_counter() - t0})
            log(f"  {s:<15} task {task}: {row['demos']}/{row['attempts']} demos, {row['s_per_attempt']:.1f} s per "
                f"attempt ({row['mean_len']:.0f} steps), construction {row['env_build_s']:.1f} s")
    return rows


# ----------------------------------------------------------------------------------------------
# Command line

def _expert_task_args(p, suite_help):
    """--suite, --tasks and --skip-unsupported: the task selection of the commands that run the expert."""
    add_task_args(p, "libero_object", suite_help + ", comma-separated")
    p.add_argument("--skip-unsupported", action="store_true",
                   help="leave out (and name) the selected tasks no scripted expert covers instead of refusing")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not {"-h", "--help"} & set(argv):
        _installed()  # the install hint, whatever the command
    p = argparse.ArgumentParser(prog="python -m envs.libero", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    suite_help = "libero_spatial|libero_object|libero_goal|libero_10|libero_90 (short: spatial|object|goal|10|90)"
    sub.add_parser("setup", help="link LIBERO's assets and write its config.yaml (idempotent)")
    g = sub.add_parser("generate", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       help="scripted-expert demonstrations in LIBERO's HDF5 layout")
    _expert_task_args(g, suite_help)
    g.add_argument("--demos-per-task", type=at_least(1), default=2, help="successful demos to keep per task")
    g.add_argument("--out", required=True, help="output root; files go to OUT/<suite>/<task_name>_demo.hdf5")
    g.add_argument("--seed", type=int, default=0, help="seed of the training placements and expert noise")
    g.add_argument("--camera-size", type=at_least(8), default=128, help="image height = width in pixels")
    g.add_argument("--workers", type=at_least(1), default=1, help="tasks generated in parallel, one process each")
    g.add_argument("--give-up-after", type=at_least(1), default=10,
                   help="leave a task out when its first N attempts all fail (each failure costs a full episode)")
    g.add_argument("--max-attempts", type=at_least(1), default=None,
                   help="stop a task after N attempts even with fewer demos (default: demos + max(5, demos // 2)); "
                        "caps the cost of a task the expert rarely solves")
    g.add_argument("--init-noise", type=float, default=INIT_NOISE,
                   help="std (rad) of the noise on the arm's 7 joints at each placement, as in LIBERO's official "
                        "init states; 0: one fixed arm pose (the generations before 2026-12-04)")
    s = sub.add_parser("success", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       help="expert success from the official init states (no cameras)")
    _expert_task_args(s, suite_help)
    s.add_argument("--inits", type=at_least(1), default=10, help="init states 0..N-1 per task")
    s.add_argument("--seed", type=int, default=0, help="expert noise seed")
    s.add_argument("--workers", type=at_least(1), default=1, help="tasks measured in parallel, one process each")
    s.add_argument("--report", default=None, help="also write the per-task rows to this JSON file")
    b = sub.add_parser("bench", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       help="env construction / reset / step cost")
    b.add_argument("--suite", default="libero_object", help=suite_help)
    b.add_argument("--task", type=int, default=0, help="task id")
    b.add_argument("--steps", type=int, default=40, help="timed steps")
    b.add_argument("--camera-size", type=int, default=128, help="image height = width in pixels")
    b.add_argument("--generation", action="store_true",
                   help="also time demonstration generation with cameras on --task of every standard suite")
    b.add_argument("--demos", type=int, default=2, help="demos per suite for --generation")
    args = p.parse_args(argv)
    if args.cmd in ("generate", "success"):
        try:
            pairs = _select(args.suite, args.tasks)
        except ValueError as e:
            p.error(str(e))
        refused = unsupported(pairs)
        # before any env is built: one line per task the experts cannot do
        for s, t, why in refused:
            print(f"{'skipped' if args.skip_unsupported else 'error'}: {s} task {t} "
                  f"({get_suite(s).tasks[t].language}): {why}", file=sys.stderr)
        kept = [(s, t) for s, t in pairs if (s, t) not in {(s, t) for s, t, _ in refused}]
        if refused and not args.skip_unsupported:
            print("(the scripted experts cover " + (", ".join(f"{s} task {t}" for s, t in kept) or "none")
                  + " of the selection; --skip-unsupported runs those)", file=sys.stderr)
            return 2
        args.tasks = kept
    if args.cmd == "setup":
        for line in setup():
            print(line)
        note = torchvision_check()
        if note:
            print(note)
        print(f"LIBERO_CONFIG_PATH={os.environ['LIBERO_CONFIG_PATH']}; suites: "
              + ", ".join(f"{n} ({len(get_suite(n).tasks)} tasks)" for n in SUITE_MAX_STEPS))
    elif args.cmd == "generate":
        t0 = time.perf_counter()
        rows = generate(args.suite, args.demos_per_task, args.out, args.seed, args.camera_size, args.tasks,
                        args.workers, give_up_after=args.give_up_after, init_noise=args.init_noise,
                        max_attempts=args.max_attempts)
        return generation_summary(rows, args.out, args.demos_per_task, time.perf_counter() - t0)
    elif args.cmd == "success":
        t0 = time.perf_counter()
        rows = measure_success(args.suite, args.inits, args.seed, args.tasks, args.workers)
        print_table(rows)
        print(f"{time.perf_counter() - t0:.0f} s wall, {args.workers} worker(s)")
        if args.report:
            write_report(args.report, {"suite": args.suite, "inits": args.inits, "seed": args.seed,
                                       "skipped": [f"{s} task {t}: {why}" for s, t, why in refused]}, rows)
    elif args.cmd == "bench":
        bench(suite_name(args.suite), args.task, args.steps, args.camera_size)
        if args.generation:
            bench_generation(STANDARD_SUITES, args.task, args.demos, args.camera_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
