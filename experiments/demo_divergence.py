"""Where the closed loop leaves its demonstration: re-run an evaluation of the demos' own start states
(evaluate.py --init-states train; evaluate.py is deterministic, so the same policy and start state give the
same rollout) with a per-step trace of the hand and the gripper command, and set each episode against the
demo recorded from that start state (docs/results.md, "At 2000 steps, and where the rollouts leave their
demos").

    python experiments/demo_divergence.py runs/libero_cpu_goal_rerun/cft_s1_c2000/eval_train \\
        --demos data/libero_goal_gen20 --per-task 1 --out results/libero_cpu_goal_rerun/cft_s1_c2000_divergence

The demos start at the placement; the evaluation first waits SETTLED no-op steps, so evaluation step
SETTLED + j is set beside demo step j (both: the hand after j actions). Per episode:
  demo            the demo of the task's file whose start state (its init_state) is nearest the episode's,
                  and the largest difference over the state (mm, or mrad for a joint: 0 where the demo was
                  recorded from it; a start state with no demo, e.g. an attempt the expert failed, shows a
                  large one and is not compared); the hand after settling, from the demo's first hand (mm)
  leaves 2/5 cm   the first step (after settling) at which the hand is more than 2 / 5 cm from the demo's
                  hand at the same step (— when never, within the shorter of the two)
  path cm         the largest distance from the hand to the nearest point of the demo's path up to the
                  demo's first close, over the steps before the policy's own first firm close: 0 for a policy
                  that follows the path at another speed
  reach cm        over the same steps, the hand's nearest approach to where the demo first closed
  close           the policy's first firm close (>= envs.libero.env.FIRM_CLOSE) against the demo's first close
                  (gripper > 0): the step of each, and the hand's distance (cm) from where the demo closed
  follows task    the task whose demos' approaches (up to their first close) the policy's approach lies nearest
                  (mean distance to the nearest point, cm), beside its own task's: another task's means the
                  rollout went where that instruction leads (tasks that approach the same object tie)
Needs the real-LIBERO extra (requirements-libero.txt); about 1 min per episode on 2 cores.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from experiments.carry_trace import episode_job, read_evaluation, replay, write_outputs  # noqa: E402  (the same replay)


def divergence(t: np.ndarray, grip: np.ndarray, hand: np.ndarray, demo_hand: np.ndarray, demo_grip: np.ndarray,
               settled: int, firm: float) -> dict:
    """One rollout against one demo, in cm. t (T,): the evaluation's step after each action (settling
    included); grip (T,): that action's gripper command; hand (T, 3): the hand after it (m). demo_hand
    (J, 3): the demo's hand before action j (obs j), demo_grip (J,): its gripper commands."""
    j = t - settled                                                   # demo obs j = the hand after j actions
    same = (j >= 0) & (j < len(demo_hand))
    gap = np.full(len(t), np.nan)
    gap[same] = 100 * np.linalg.norm(hand[same] - demo_hand[j[same]], axis=1)

    def first_over(cm):
        over = np.flatnonzero(same & (gap > cm))
        return int(t[over[0]] - settled) if over.size else None
    path = demo_approach(demo_hand, demo_grip)                        # (jc+1, 3) the demo's approach
    jc = len(path) - 1                                                # its first close (obs jc: the hand then)
    mine = approach(t, grip, hand, settled, firm)                     # (n, 3) the rollout's
    firm = np.flatnonzero((grip >= firm) & (t > settled))
    path_cm = (100 * np.linalg.norm(mine[:, None] - path[None], axis=2).min(axis=1).max()) if len(mine) else None
    reach_cm = 100 * np.linalg.norm(mine - demo_hand[jc], axis=1).min() if len(mine) else None
    close = None
    if firm.size:
        i = firm[0]                                                   # the hand when that command was given:
        at = hand[i - 1] if i > 0 else hand[0]                        # after the previous action
        close = {"step": int(t[i] - settled - 1), "demo_step": jc,
                 "from_demo_cm": round(100 * float(np.linalg.norm(at - demo_hand[jc])), 1)}
    return {"leaves_2cm": first_over(2.0), "leaves_5cm": first_over(5.0),
            "path_cm": None if path_cm is None else round(float(path_cm), 1),
            "reach_cm": None if reach_cm is None else round(float(reach_cm), 1), "close": close}


def approach(t: np.ndarray, grip: np.ndarray, hand: np.ndarray, settled: int, firm: float) -> np.ndarray:
    """The hand (n, 3) after each action from settling up to the first close command >= `firm` (the whole
    rollout when there is none): the approach."""
    closes = np.flatnonzero((grip >= firm) & (t > settled))
    before = slice(None, closes[0] if closes.size else len(t))
    return hand[before][t[before] > settled]


def demo_approach(demo_hand: np.ndarray, demo_grip: np.ndarray) -> np.ndarray:
    """A demo's hand (obs) up to its first close (gripper > 0), that step included: its approach."""
    closes = np.flatnonzero(demo_grip > 0)
    return demo_hand[:(int(closes[0]) if closes.size else len(demo_hand) - 1) + 1]


def nearest_task(mine: np.ndarray, approaches: dict) -> dict:
    """Which task's demos an approach follows: {task: [demo approaches (J, 3)]} -> per task the mean distance
    (cm) from the hand to the nearest point of that task's nearest demo approach, and the task nearest."""
    cm = {task: round(float(min(100 * np.linalg.norm(mine[:, None] - a[None], axis=2).min(axis=1).mean()
                                for a in paths)), 1) for task, paths in approaches.items() if paths and len(mine)}
    return {"follows": min(cm, key=cm.get) if cm else None, "mean_cm": cm}


def task_demos(root: Path, language: str) -> list:
    """The demos of the task with instruction `language` under root -> [(key, hand (J, 3), gripper (J,),
    the start state (1 + nq + nv,))]; [] when the task has no demo file."""
    import h5py
    for f in sorted(root.glob("**/*_demo.hdf5")):
        if f.name == language.replace(" ", "_") + "_demo.hdf5":
            with h5py.File(f, "r") as h:
                return [(k, h["data"][k]["obs"]["ee_pos"][:], h["data"][k]["actions"][:, -1],
                         h["data"][k].attrs["init_state"]) for k in h["data"]]
    return []


def report(out: list[dict], title: str, settled: int) -> list[str]:
    """Markdown lines: one row per episode, then medians over the compared successes and failures."""
    lines = [f"{title}; steps count after the {settled} settling steps, as the demos do", "",
             "| task | trial | outcome | demo (start state; hand after settling, mm) | leaves 2 cm at step | leaves 5 cm at step | path cm "
             "| reach cm | firm close: step (demo's) | cm from the demo's close | follows task (cm; own task's cm) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    dash = lambda v: "—" if v is None else v

    def follows(o):
        cm = {int(k): v for k, v in (o.get("mean_cm") or {}).items()}
        return "—" if o.get("follows") is None else f"{o['follows']} ({cm[int(o['follows'])]}; {cm.get(o['task'], '—')})"
    for o in out:
        c = o.get("close")
        close = ("—", "—") if c is None else (f"{c['step']} ({c['demo_step']})", c["from_demo_cm"])
        lines.append(f"| {o['task']} | {o['trial']} | {o['outcome']}{'' if o['reproduced'] else ' (NOT reproduced)'} "
                     f"| {o.get('demo', 'no demo')} ({o.get('match', '—')}; {o.get('hand_start_mm', '—')}) | {dash(o.get('leaves_2cm'))} "
                     f"| {dash(o.get('leaves_5cm'))} | {dash(o.get('path_cm'))} | {dash(o.get('reach_cm'))} | {close[0]} "
                     f"| {close[1]} | {follows(o)} |")
    compared = [o for o in out if "path_cm" in o and o["reproduced"]]
    for name, group in (("successes", [o for o in compared if o["outcome"] == "success"]),
                        ("failures", [o for o in compared if o["outcome"] != "success"])):
        med = lambda k: "—" if not [o[k] for o in group if o[k] is not None] else \
            f"{np.median([o[k] for o in group if o[k] is not None]):.1f}"
        closed = [o["close"] for o in group if o["close"] is not None]
        if group:
            lines += ["", f"{name} ({len(group)} compared, reproduced): leave the demo's hand by 2 cm at a median step "
                          f"{med('leaves_2cm')} ({sum(o['leaves_2cm'] is None for o in group)} never), by 5 cm at "
                          f"{med('leaves_5cm')} ({sum(o['leaves_5cm'] is None for o in group)} never); path {med('path_cm')} "
                          f"cm; nearest approach to the demo's close {med('reach_cm')} cm; "
                          f"{len(group) - len(closed)} never close firmly, "
                          f"{sum(c['step'] < c['demo_step'] for c in closed)} close before their demo's close step; "
                          f"{sum(o.get('follows') not in (None, o['task']) for o in group)} approach nearer another "
                          f"task's demos than their own"]
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("eval_dir", type=Path, help="an evaluate.py --init-states train output directory")
    p.add_argument("--demos", type=Path, required=True, help="the generation the policy trained on")
    p.add_argument("--tasks", default=None, help="comma-separated task ids (default: every task)")
    p.add_argument("--per-task", type=int, default=1, help="at most this many episodes per task, in journal order (default 1)")
    p.add_argument("--match", type=float, default=5.0,
                   help="an episode is compared with its nearest demo only if their start states differ by at most "
                        "this much anywhere (mm, or mrad for a joint; default 5: 0 where the demo was recorded from it)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--out", type=Path, default=None, help="directory for demo_divergence.json and .md")
    args = p.parse_args(argv)
    journal, info, episodes = read_evaluation(p, args.eval_dir)
    if not args.demos.is_dir():
        p.error(f"{args.demos}: not a directory (give the generation the policy trained on)")
    tasks = None if args.tasks is None else {int(x) for x in args.tasks.split(",")}
    wanted = []
    for task in sorted({e["task"] for e in episodes}):
        if tasks is None or task in tasks:
            wanted += [e for e in episodes if e["task"] == task][:args.per_task]
    if not wanted:
        p.error(f"{journal}: no episode of tasks {args.tasks or 'all'}")
    s = wanted[0]["settings"]
    if s.get("init_states") != "train":
        p.error(f"{journal}: its episodes start from {s.get('init_states')!r} states; this compares episodes "
                "on the demos' own start states (evaluate.py --init-states train)")
    import evaluate
    from data import progress_bar
    from envs.libero.env import FIRM_CLOSE, SETTLED
    evaluate._init_worker(info["policy"], s.get("replan"), args.threads, s.get("history"), s.get("decoding", "free"))
    language = {t["task"]: t["instruction"] for t in info["per_task"]}
    demos_of = {task: task_demos(args.demos, text) for task, text in language.items()}   # read once
    # every task's demo approaches: which one does a rollout follow (another task's: the instruction not read)
    approaches = {task: [demo_approach(d[1], d[2]) for d in demos] for task, demos in demos_of.items()}
    out = []
    with progress_bar(total=len(wanted), desc="episodes", unit="ep") as bar:
        for e in wanted:
            rows, job = [], episode_job(e, s, imagine=False)
            env = evaluate.episode_env(job)
            env.set_train_state(e["trial"])                            # the start state, as the episode sets it
            start = env.get_state()                                    # (1 + nq + nv,) time, qpos, qvel
            r = replay(job, lambda env, action, _: rows.append((env._t, float(np.asarray(action, float)[-1]),
                                                                 *env.eef_pos())), need_object=False)
            trace = np.array(rows)                                     # (T, 5) step, gripper, hand xyz
            demos = demos_of[e["task"]]
            row = {"task": e["task"], "trial": e["trial"], "outcome": "success" if r["success"] else r.get("failure_mode"),
                   "reproduced": all(r[k] == e[k] for k in ("success", "steps", "failure_mode"))}
            if demos:
                # the start state against each demo's: the largest difference over the state (the arm's joints
                # in rad, the objects' positions in m; x1000): 0 where the demo was recorded from it
                dist = [1000 * float(np.abs(start[1:] - d[3][1:]).max()) if len(d[3]) == len(start) else np.inf
                        for d in demos]
                k = int(np.argmin(dist))
                row.update(demo=demos[k][0], match=round(dist[k], 1),
                           hand_start_mm=round(1000 * float(np.linalg.norm(trace[trace[:, 0] == SETTLED, 2:5][0]
                                                                            - demos[k][1][0])), 1))
                if dist[k] <= args.match:
                    row.update(divergence(trace[:, 0].astype(int), trace[:, 1], trace[:, 2:5], demos[k][1],
                                          demos[k][2], SETTLED, FIRM_CLOSE))
            mine = approach(trace[:, 0].astype(int), trace[:, 1], trace[:, 2:5], SETTLED, FIRM_CLOSE)
            row.update(nearest_task(mine, approaches))
            out.append(row)
            bar.update(1)
    evaluate.close_envs()
    title = f"Divergence from the demos of {len(out)} episodes of {args.eval_dir} (demos: {args.demos})"
    write_outputs(args.out, "demo_divergence", out, report(out, title, SETTLED))


if __name__ == "__main__":
    main()
