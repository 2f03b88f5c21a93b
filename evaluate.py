"""Closed-loop evaluation of a CoWVLA policy with LIBERO's protocol (SPEC §3), and the ablation table.

Protocol (OpenVLA / OpenVLA-OFT / openpi): trial i of a task starts from the task's i-th initial
state; the first 10 steps send the no-op [0, 0, 0, 0, 0, 0, -1] while objects settle; then up to the
suite's max steps of policy actions; success = the env's `done` (its goal predicate) at any step.
Images reach the policy exactly as the simulator returns them (upside down); the policy rotates them.

    python evaluate.py --policy runs/cofinetune --env mini --suite all --trials 10
    python evaluate.py --policy runs/cofinetune --env mini --suite mini_goal --trials 50 --workers 2
    python evaluate.py ablations --data DATA --runs runs/ablations       # Tables 3-4 in miniature
    python evaluate.py offline --policy runs/cofinetune --data DATA       # open-loop action error vs the mean action

Outputs in --out: eval_info.json (per task / suite / overall success with trial counts), results.md
(the same as a markdown table), episodes.jsonl (one line per finished episode: `--resume` continues
an interrupted evaluation from it; on the embedded benchmark each also lists `other_tasks_done`, the
suite's other tasks whose goal the rollout reached, and `failure_mode`, why a failed episode's goal
does not hold (envs.mini.FAILURE_MODES; real LIBERO: envs.libero.FAILURE_MODES); the table counts both) and GIF videos of the first episodes (both
cameras; with --imagine, the policy's imagined next keyframe beside the real one).
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

NOOP = np.array([0, 0, 0, 0, 0, 0, -1.0])
SETTLE_STEPS = 10
# --init-states: each start-state stream's protocol line (eval_info.json) and its name in results.md
START_PROTOCOL = {"test": "trial i from init state i",
                  "val": "trial i from validation start state i (not the test init states)",
                  "train": "trial i from demo attempt i's start state (a diagnostic on training states, "
                           "not the test init states)"}
START_NAME = {"val": "validation", "train": "the demonstrations' own start states"}
# real LIBERO's diagnostics recorded per episode (LiberoEnv method -> its summary key in eval_info per task)
OFFSETS = {"grasp_offset": "grasp", "goal_offset": "goal"}


# ----------------------------------------------------------------------------------------------
# Environments: one interface, one backend per simulator

def env_backend(kind: str):
    """-> (suite names for 'all', suite(name) with .tasks/.max_steps/.name, make_env(suite, task, size)).
    An env may also offer tasks_done() (the suite's task ids whose goal holds now) and failure_mode()
    (why its own goal does not hold now, or None): run_episode then records other_tasks_done and
    failure_mode; the embedded benchmark has both, real LIBERO failure_mode (envs.libero.FAILURE_MODES)."""
    import envs  # the real simulator (optional extra) exits with the install command when missing
    if kind not in envs.BACKENDS:
        raise SystemExit(f"error: unknown --env {kind!r} (expected {' or '.join(envs.BACKENDS)})")
    return envs.backend(kind)


# ----------------------------------------------------------------------------------------------
# Rollouts (one process evaluates many episodes with one loaded policy)

_POLICY = None


class ZeroPolicy:
    """Baseline: always the zero action with the gripper open (`--policy zero`)."""
    queue, replan = (), 1

    def reset(self):
        pass

    def select_action(self, obs, instruction):
        return NOOP


def _init_worker(policy_dir, replan, threads, history=None, decoding="free", gripper_hold=False):
    global _POLICY
    if str(policy_dir) == "zero":
        _POLICY = ZeroPolicy()
        return
    import torch
    torch.set_num_threads(threads)
    from cofinetune import Policy
    _POLICY = Policy.load(policy_dir, device="cpu", replan=replan, history=history,
                          constrained=decoding == "constrained", gripper_hold=gripper_hold)


def _pool_worker_init(parent: int, *args):
    """A pool worker's initializer: `_init_worker`, and a watchdog that ends the worker once the evaluation that
    started it (pid `parent`) is gone (killed: a pool's workers otherwise run on as orphans, holding the cores)."""
    import threading

    def watch():
        while os.getppid() == parent:
            time.sleep(2)
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()
    _init_worker(*args)


def torch_threads(workers: int) -> int:
    """Torch threads per episode process: this evaluation's thread budget — OMP_NUM_THREADS when set, else
    the cores idle at the start (training.free_cores) — shared out among the workers (at least one each). Taking OMP_NUM_THREADS per worker
    instead oversubscribes: on the 2-core CPU a 230-step episode took ~38 s with two 2-thread processes
    and 5.8 s with one thread each (docs/benchmark.md, oversubscription)."""
    import training as TR
    env = os.environ.get("OMP_NUM_THREADS", "")
    budget = int(env) if env.isdigit() and int(env) > 0 else TR.free_cores()
    return max(1, budget // max(1, workers))


_ENV = {}  # this process's environment: one task's, reused across its trials


def close_envs():
    for env in _ENV.values():
        env.close()
    _ENV.clear()


atexit.register(close_envs)  # a worker's env is closed when its process ends


def episode_env(job: dict):
    """The process's env for the job's task, built once per (simulator, suite, task, camera size) and reused
    across trials, as LIBERO's own evaluation does (each trial's set_init_state resets the env first, its
    fixtures' draw seeded by the trial, so a trial plays the same whatever ran before it):
    real LIBERO pays its 7-8 s construction once per task and worker, not once per episode. Jobs arrive
    ordered by task, so a worker rebuilds only when its task changes."""
    key = (id(env_backend), job["env"], job["suite"], job["task"], job["camera_size"])
    if key not in _ENV:
        close_envs()
        _, get_suite, make_env = env_backend(job["env"])
        _ENV[key] = make_env(get_suite(job["suite"]).name, job["task"], job["camera_size"])
    return _ENV[key]


def run_episode(job: dict) -> dict:
    """One trial: settle with no-ops, then act until success or the suite's max steps."""
    _, get_suite, _ = env_backend(job["env"])
    suite = get_suite(job["suite"])
    env = episode_env(job)
    # test: trial i from the task's i-th official init state; val: validation start state i (a seed stream
    # apart from the test states and the demonstrations'), for choosing among variants; train: demo attempt
    # i's start state (a diagnostic: success where the policy was trained)
    start = {"test": "set_init_state", "val": "set_val_state", "train": "set_train_state"}[job.get("init_states", "test")]
    obs = getattr(env, start)(job["trial"])
    policy = _POLICY
    policy.reset()
    instruction = suite.tasks[job["task"]].language
    # --perturb: bursts of pushes added to the executed actions (envs.mini.Disturbance), one seeded stream per
    # (task, trial) so the evaluation stays deterministic; a robustness check, not LIBERO's protocol
    disturb = None
    if job.get("perturb"):
        from envs.mini import Disturbance
        disturb = Disturbance(np.random.default_rng([job["task"], job["trial"], 1]), job["perturb"])
    frames, success, steps, done_before = [], False, 0, None
    for t in range(SETTLE_STEPS + (job.get("max_steps") or suite.max_steps)):
        if t == SETTLE_STEPS and hasattr(env, "tasks_done"):
            done_before = set(env.tasks_done())  # goals that already held after settling
        if t < SETTLE_STEPS:
            action, imagined = NOOP, None
        elif job["imagine"] and not policy.queue:  # re-plan with imagination: keep the imagined keyframe
            chunk, imagined = policy.predict_action_chunk(obs, instruction, imagine=True)
            policy.queue.extend(chunk[: policy.replan])
            action = policy.select_action(obs, instruction)  # pops the chunk's first action
        else:
            action, imagined = policy.select_action(obs, instruction), None
        if job["video"]:
            frames.append(_frame(obs, imagined if imagined is not None else (frames[-1][1] if frames else None)))
        # the cameras draw only for an observation that will be read (a GIF's frame, the policy's next re-plan):
        # between re-plans the step runs physics only, and a drawn image is bit-identical to an always-on
        # camera's (envs.libero LiberoEnv.step); the same states, steps and success test
        render = bool(job["video"]) or _reads_next(policy, t)
        obs, reward, done, info = env.step(action if disturb is None else disturb(action), render=render)
        steps = t + 1
        if done:
            success = True
            break
    # Diagnostic (embedded benchmark only): other tasks of the suite whose goal this rollout reached.
    other = sorted(set(env.tasks_done()) - done_before - {job["task"]}) if done_before is not None else None
    failure = env.failure_mode() if not success and hasattr(env, "failure_mode") else None
    # real LIBERO: the hand minus the object at the first firm close; the object minus its target at the end
    offsets = {k: getattr(env, k)() for k in OFFSETS if hasattr(env, k)}
    if job["video"]:
        _save_gif(frames, Path(job["video"]))
    return {**{k: job[k] for k in ("suite", "task", "trial")}, "success": success, "steps": steps,
            "instruction": instruction, "other_tasks_done": other, "failure_mode": failure, **offsets}


def _reads_next(policy, t: int) -> bool:
    """Whether the policy reads the observation step t returns: from the first step after settling on, when
    its action queue is empty (it re-plans); a policy without a queue reads every observation."""
    if t + 1 < SETTLE_STEPS:
        return False
    queue = getattr(policy, "queue", None)
    return queue is None or not queue


def _frame(obs, imagined):
    upright = [obs["agentview_image"][::-1, ::-1], obs["robot0_eye_in_hand_image"][::-1, ::-1]]
    return (np.concatenate(upright, 1), imagined)


def _save_gif(frames, path):
    from PIL import Image
    H = frames[0][0].shape[0]
    any_imagined = any(imagined is not None for _, imagined in frames)
    imgs = []
    for row, imagined in frames[::2]:  # every other step: 10 fps for a 20 Hz rollout
        if any_imagined:  # one width for every frame (a GIF crops later frames to the first one's size)
            panel = np.full((H, H, 3), 96, np.uint8) if imagined is None else \
                np.asarray(Image.fromarray(imagined).resize((H, H)))
            row = np.concatenate([row, panel], 1)
        imgs.append(Image.fromarray(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=100, loop=0)


def task_plan(env: str, suite: str, tasks=None) -> list:
    """-> [(suite, task ids)] for --suite and --tasks (a list of ids, or a string such as "0,2" or "all";
    None: all), checked before any episode starts: an unknown suite or an id out of range is a ValueError."""
    from envs.common import task_ids
    names, get_suite, _ = env_backend(env)
    if tasks is not None and not isinstance(tasks, str):
        tasks = ",".join(map(str, tasks))
    suites = [get_suite(s) for s in (names if suite == "all" else suite.split(","))]
    return [(su, task_ids(su.name, len(su.tasks), tasks)) for su in suites]


def evaluate(policy_dir, env="mini", suite="all", trials=10, out="runs/eval", workers=2, camera_size=128,
             videos=2, imagine=False, replan=None, tasks=None, max_steps=None, resume=False, history=None,
             perturb=0.0, decoding="free", init_states="test", threads=None, video_trial=0,
             gripper_hold=False) -> dict:
    """Run every (suite, task, trial) episode and write eval_info.json + results.md in `out`.

    Each finished episode is appended to out/episodes.jsonl as it completes; with `resume`, episodes
    already there under the same settings (policy checkpoint, env, camera size, step budget, replan,
    history, imagine, perturb, decoding) are kept and only the missing ones run — an interrupted evaluation continues where it
    stopped. Without `resume` the journal is started afresh."""
    plan = task_plan(env, suite, tasks)
    out = Path(out)
    settings = {"policy": policy_fingerprint(policy_dir), "env": env, "camera_size": camera_size,
                "max_steps": max_steps, "replan": replan, "history": history,
                "imagine": imagine, **({"perturb": perturb} if perturb else {}),  # older journals still resume
                **({"decoding": decoding} if decoding != "free" else {}),
                **({"init_states": init_states} if init_states != "test" else {}),
                **({"gripper_hold": True} if gripper_hold else {})}
    # the zero-action baseline reads no image: without GIFs its episodes run physics only (same states,
    # steps and success test; rendering never changes the physics), ~8x cheaper on a CPU
    render = 0 if str(policy_dir) == "zero" and not videos else camera_size
    jobs = []
    for su, ids in plan:
        for n, k in enumerate(ids):
            for i in range(trials):   # a GIF of trial `video_trial` (0) of the first `videos` evaluated tasks
                video = out / "videos" / f"{su.name}_task{k}_trial{i}.gif" if i == video_trial and n < videos else None
                jobs.append({"env": env, "suite": su.name, "task": k, "trial": i, "camera_size": render,
                             "video": str(video) if video else None, "imagine": imagine, "max_steps": max_steps,
                             "perturb": perturb, "init_states": init_states})
    out.mkdir(parents=True, exist_ok=True)
    journal = out / "episodes.jsonl"
    done = _read_journal(journal, settings) if resume else {}
    if not resume:
        journal.write_text("")
    wanted = {_episode_key(j): j for j in jobs}
    results = [done[key] for key in wanted if key in done]
    todo = [j for key, j in wanted.items() if key not in done]
    if results:
        print(f"[evaluate] resuming: {len(results)} finished episodes from {journal}, {len(todo)} to run")
    from data import progress_bar
    t0 = time.time()
    threads = threads or torch_threads(workers)  # torch threads per episode process
    with journal.open("a") as log, progress_bar(total=len(todo), desc="episodes", unit="ep") as bar:
        def record(r):  # one line per episode, flushed, so a crash loses at most the running episodes
            log.write(json.dumps({**r, "settings": settings}) + "\n")
            log.flush()
            results.append(r)
            bar.update(1)
        if workers <= 1 or len(todo) <= 1:
            if todo:
                _init_worker(policy_dir, replan, threads, history, decoding, gripper_hold)
            for j in todo:
                record(run_episode(j))
            close_envs()
        else:
            import multiprocessing as mp
            from concurrent.futures import as_completed
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_pool_worker_init,
                                     initargs=(os.getpid(), policy_dir, replan, threads, history, decoding,
                                               gripper_hold)) as ex:
                for f in as_completed([ex.submit(run_episode, j) for j in todo]):
                    record(f.result())
    order = {key: n for n, key in enumerate(wanted)}
    results.sort(key=lambda r: order[_episode_key(r)])
    info = summarise(results)
    seconds, resumed = round(time.time() - t0, 1), len(jobs) - len(todo)
    before = out / "eval_info.json"
    if not todo and before.exists():  # nothing left to run: keep the finished evaluation's wall time, not ~0 s
        prior = json.loads(before.read_text())
        if prior.get("overall", {}).get("n") == len(jobs):
            seconds, resumed = prior.get("seconds", seconds), prior.get("resumed_episodes", resumed)
    info.update(policy=str(policy_dir), env=env, trials_per_task=trials, seconds=seconds,
                resumed_episodes=resumed, decoding=decoding, init_states=init_states,
                protocol=START_PROTOCOL[init_states]
                         + f"; {SETTLE_STEPS} no-op settling steps; success = done"
                         + (f"; executed actions perturbed (--perturb {perturb})" if perturb else ""))
    (out / "eval_info.json").write_text(json.dumps(info, indent=1))
    (out / "results.md").write_text(markdown_table(info))
    return info


def _episode_key(r: dict) -> tuple:
    return (r["suite"], r["task"], r["trial"])


def policy_fingerprint(policy_dir) -> str:
    """Identifies the checkpoint an episode was run with (directory, training step, weights' mtime)."""
    if str(policy_dir) == "zero":
        return "zero"
    from cofinetune import run_dirs
    dirs = run_dirs(policy_dir)
    if len(dirs) > 1:  # an ensemble: every member's fingerprint
        return "+".join(policy_fingerprint(d) for d in dirs)
    d = Path(dirs[0])
    cfg, weights = d / "config.json", d / "model.safetensors"
    step = json.loads(cfg.read_text()).get("step") if cfg.exists() else None
    mtime = weights.stat().st_mtime_ns if weights.exists() else None
    return f"{d.resolve()}@step{step}@{mtime}"


def _read_journal(path: Path, settings: dict) -> dict:
    """Finished episodes in `path` that were run under `settings` (others and torn lines are ignored)."""
    done = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:  # the last line of a killed run may be cut short
            continue
        if r.pop("settings", None) == settings:
            done[_episode_key(r)] = r
    return done


def summarise(results: list[dict]) -> dict:
    from envs.common import offset_cm
    per_task, per_suite = {}, {}
    for r in results:
        t = per_task.setdefault(f"{r['suite']}/{r['task']}", {"suite": r["suite"], "task": r["task"],
                                                                "instruction": r["instruction"], "n": 0, "success": 0})
        t["n"] += 1
        t["success"] += int(r["success"])
        if r.get("other_tasks_done") is not None:  # failures that completed another task of the suite instead
            did_other = not r["success"] and bool(r["other_tasks_done"])
            t["failed_did_other"] = t.get("failed_did_other", 0) + int(did_other)
        if r.get("failure_mode"):  # why the goal did not hold at the time limit
            modes = t.setdefault("failure_modes", {})
            modes[r["failure_mode"]] = modes.get(r["failure_mode"], 0) + 1
        for key, name in OFFSETS.items():  # real LIBERO's offsets (cm), by outcome: t["grasp"], t["goal"]
            if key in r:
                outcome = "success" if r["success"] else (r.get("failure_mode") or "failure")
                g = t.setdefault(name, {}).setdefault(outcome, {"n": 0, "never_closed": 0, "xy_cm": [], "dz_cm": []})
                g["n"] += 1
                if r[key] is None:  # grasp: never closed; goal: nothing to place
                    g["never_closed"] += 1
                else:
                    xy, dz = offset_cm(r[key])
                    g["xy_cm"].append(xy)
                    g["dz_cm"].append(dz)
    for t in per_task.values():
        t["pc_success"] = 100.0 * t["success"] / t["n"]
        s = per_suite.setdefault(t["suite"], {"n": 0, "success": 0})
        s["n"] += t["n"]
        s["success"] += t["success"]
    for s in per_suite.values():
        s["pc_success"] = 100.0 * s["success"] / s["n"]
    n, k = sum(s["n"] for s in per_suite.values()), sum(s["success"] for s in per_suite.values())
    return {"per_task": list(per_task.values()), "per_suite": per_suite,
            "overall": {"n": n, "success": k, "pc_success": 100.0 * k / max(1, n),
                        "avg_suite_success": float(np.mean([s["pc_success"] for s in per_suite.values()]))}}


def markdown_table(info: dict) -> str:
    other = any("failed_did_other" in t for t in info["per_task"])  # embedded benchmark: which task instead
    lines = ["| suite | task | instruction | success | trials | rate |"
             + (" failures that did another task |" if other else ""), "|---|---|---|---|---|---|" + ("---|" if other else "")]
    for t in info["per_task"]:
        lines.append(f"| {t['suite']} | {t['task']} | {t['instruction']} | {t['success']} | {t['n']} | "
                     f"{t['pc_success']:.0f}% |" + (f" {t.get('failed_did_other', '—')} |" if other else ""))
    lines += ["", "| suite | success | trials | rate |", "|---|---|---|---|"]
    for name, s in info["per_suite"].items():
        lines.append(f"| {name} | {s['success']} | {s['n']} | {s['pc_success']:.1f}% |")
    o = info["overall"]
    lines.append(f"| **all** | {o['success']} | {o['n']} | {o['pc_success']:.1f}% (suite average "
                 f"{o['avg_suite_success']:.1f}%) |")
    if info.get("init_states") in ("val", "train"):
        lines += ["", f"Start states: {START_NAME[info['init_states']]} (`--init-states {info['init_states']}`), "
                  "not the test init states."]
    modes = sorted({m for t in info["per_task"] for m in t.get("failure_modes", {})})
    if modes:  # failure anatomy (embedded benchmark): episodes per failure mode, envs.mini.FAILURE_MODES
        lines += ["", "| suite | task | failures | " + " | ".join(modes) + " |", "|---|---|---|" + "---|" * len(modes)]
        for t in info["per_task"]:
            fm = t.get("failure_modes", {})
            lines.append(f"| {t['suite']} | {t['task']} | {t['n'] - t['success']} | "
                         + " | ".join(str(fm.get(m, 0)) for m in modes) + " |")
    for name in OFFSETS.values():
        table = offset_table(info, name)
        lines += [""] + table if table else []
    return "\n".join(lines) + "\n"


def offset_table(info: dict, name: str) -> list[str]:
    """Markdown lines: per outcome over all tasks, real LIBERO's offsets in cm: name "grasp", where the hand
    was at the first firm close command (grasp_offset: median horizontal distance to the object, height above its
    body origin); "goal", where the object to place ended (goal_offset: distance from its target's centre)."""
    by = {}
    for t in info["per_task"]:
        for outcome, g in t.get(name, {}).items():
            b = by.setdefault(outcome, {"n": 0, "never_closed": 0, "xy_cm": [], "dz_cm": []})
            for k in ("n", "never_closed"):
                b[k] += g[k]
            b["xy_cm"] += g["xy_cm"]
            b["dz_cm"] += g["dz_cm"]
    if not by:
        return []
    med = lambda v: f"{np.median(v):.1f}" if v else "—"  # noqa: E731
    pct = lambda v, q: f"{np.percentile(v, q):.1f}" if v else "—"  # noqa: E731
    title, none = {"grasp": ("At the first firm close command, >= 0.5 (hand minus the object to place; cm):", "never closed"),
                   "goal": ("At the episode's end (the object to place minus its target's centre; cm):",
                            "nothing to place")}[name]
    lines = [title, "", f"| outcome | episodes | {none} | median xy distance (25th–75th) | median dz |",
             "|---|---|---|---|---|"]
    for outcome in sorted(by, key=lambda o: (o != "success", o)):
        b = by[outcome]
        lines.append(f"| {outcome} | {b['n']} | {b['never_closed']} | {med(b['xy_cm'])} "
                     f"({pct(b['xy_cm'], 25)}–{pct(b['xy_cm'], 75)}) | {med(b['dz_cm'])} |")
    return lines


def main(argv=None):
    import training as TR  # torch: only the entry point and the workers need it
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("ablations", "offline"):
        TR.fail(f"`evaluate.py {argv[0]}` moved to `python experiments/{argv[0]}.py`")
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", default="runs/cofinetune",
                   help="co-fine-tuned run directory (Policy.load), several comma-separated (a seed ensemble: "
                        "greedy decoding on the runs' mean token probabilities; not in the paper), or 'zero' for "
                        "the zero-action baseline")
    p.add_argument("--env", default="mini",
                   help="simulator: mini (embedded benchmark) or libero (the real one; optional extra, "
                        "requirements-libero.txt)")
    p.add_argument("--suite", default="all",
                   help="suite (mini_spatial, mini_object, mini_goal, mini_long / libero_spatial, libero_object, "
                        "libero_goal, libero_10, libero_90), comma-separated names, or all (the four standard suites)")
    p.add_argument("--tasks", nargs="*", default=None,
                   help="task indices to evaluate in each suite, space- or comma-separated (default all)")
    p.add_argument("--trials", type=TR.at_least(1), default=None,
                   help="trials per task (default: 50 on --env libero, LIBERO's protocol; 10 on mini)")
    p.add_argument("--out", default="runs/eval", help="output directory")
    p.add_argument("--workers", type=TR.at_least(1), default=2, help="episodes in parallel processes (torch threads each: OMP_NUM_THREADS if set, else the core count, divided by the workers)")
    p.add_argument("--camera-size", type=TR.at_least(8), default=128, help="rendered image size (LIBERO: 128)")
    p.add_argument("--videos", type=TR.at_least(0), default=2, help="GIFs: trial --video-trial (0) of the first N tasks of each suite")
    p.add_argument("--video-trial", type=TR.at_least(0), default=0,
                   help="the trial the GIFs show (with --trials above it): e.g. a task's first success")
    p.add_argument("--imagine", action="store_true", help="also generate the next keyframe and show it in the GIFs")
    p.add_argument("--replan", type=int, default=None,
                   help="actions executed per predicted chunk (default l_a). Below l_a the policy also drops its "
                        "history (previous keyframe and chunk): training windows hold only whole chunks")
    p.add_argument("--history", type=int, default=None,
                   help="previous keyframes (with their chunks) kept in the policy's context (default N-1, the "
                        "training windows' layout; 0 = the current keyframe only)")
    p.add_argument("--max-steps", type=TR.at_least(1), default=None, help="override the suite's step budget (quick checks only)")
    p.add_argument("--perturb", type=TR.in_range(0, 1), default=0.0,
                   help="robustness check, not LIBERO's protocol: add bursts of pushes of up to this many action "
                        "units per position axis to the executed actions (envs.mini.Disturbance, as `python -m envs.mini generate "
                        "--perturb`; seeded per task and trial); 0 = off")
    p.add_argument("--decoding", choices=("free", "constrained"), default="free",
                   help="action decoding: free (any action ids until end-of-action; default, as every recorded "
                        "result) or constrained to FAST's grammar (exactly l_a*D DCT coefficients per chunk; "
                        "measured: no gain, docs/results.md)")
    p.add_argument("--gripper-hold", action="store_true",
                   help="execute a weak decoded gripper command (|g| < 0.5) as the last firm one (each episode starts "
                        "open): a near-zero value opens or closes robosuite's gripper by its sign (a deviation, README)")
    p.add_argument("--init-states", choices=tuple(START_PROTOCOL), default="test",
                   help="start states: test = the official init states (trial i from state i; LIBERO's protocol, "
                        "report these once per chosen recipe); val = validation start states from a seeded stream "
                        "apart from the test states and the demonstrations' (choose flags, seeds, steps on these); "
                        "train = demo attempt i's start state (generation's seed 0; where every attempt succeeded, "
                        "demo i's first state): a diagnostic of success on the training states, not a result")
    p.add_argument("--resume", action="store_true",
                   help="keep the episodes OUT/episodes.jsonl already holds for the same policy and settings and "
                        "run only the missing ones (an interrupted evaluation continues)")
    p.add_argument("--force", action="store_true",
                   help="replace the results of an earlier evaluation in OUT (without it, and without --resume, "
                        "an OUT that holds eval_info.json is refused)")
    args = p.parse_args(argv)
    args.trials = args.trials or (50 if args.env == "libero" else 10)
    args.tasks = ",".join(args.tasks) if args.tasks else None
    if args.video_trial >= args.trials:
        p.error(f"--video-trial {args.video_trial} needs --trials above it (got --trials {args.trials})")
    if args.history is not None and (args.history < 0 or (args.history and args.replan is not None)):
        p.error("--history must be >= 0, and > 0 only with whole chunks (leave --replan unset)")
    try:
        task_plan(args.env, args.suite, args.tasks)
    except ValueError as e:
        p.error(str(e))
    threads = torch_threads(args.workers)  # sampled once: the count printed is the count used
    print(TR.threads_line(threads, f" in each of {args.workers} worker(s)"), flush=True)
    if args.policy != "zero":   # every file the policy needs, read once here: a bad one is named before any worker
        from cofinetune import Policy
        Policy.load(args.policy, device="cpu")
    done = Path(args.out) / "eval_info.json"
    if done.exists() and not (args.resume or args.force):
        TR.fail(f"{done} holds an earlier evaluation; pass --resume to continue it (same policy and settings) "
                f"or --force to replace it, or choose another --out")
    if args.force and not args.resume:
        for name in ("eval_info.json", "results.md", "episodes.jsonl"):
            (Path(args.out) / name).unlink(missing_ok=True)
    info = evaluate(args.policy, args.env, args.suite, args.trials, args.out, args.workers, args.camera_size,
                    args.videos, args.imagine, args.replan, args.tasks, args.max_steps, args.resume,
                    args.history, args.perturb, args.decoding, args.init_states, threads, args.video_trial,
                    args.gripper_hold)
    print(markdown_table(info))
    print(f"{info['overall']['success']}/{info['overall']['n']} episodes succeeded in {info['seconds']:.0f} s; "
          f"wrote {args.out}/eval_info.json, results.md")


if __name__ == "__main__":
    import training as TR
    sys.exit(TR.run_cli(main))
