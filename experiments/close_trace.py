"""Where and when a policy closes the hand: re-run an evaluation's episodes on real LIBERO (evaluate.py is
deterministic: the same policy, settings and start state give the same rollout) with a per-step trace of the
gripper command, the hand and the object to place, and set the closes against the demonstrations' own
(docs/results.md, "libero_spatial at 20 demos per task").

    python experiments/close_trace.py runs/libero_cpu_spatial_gen20/cft_s1/eval_test \\
        --tasks 0,2,3,6,7,9 --per-task 2 --demos data/libero_spatial_gen20 \\
        --out results/libero_cpu_spatial_gen20/cft_s1_test_close

Per episode: the first close command of any strength (what grasp_offset recorded before 2026-12-07) and the
first firm one (>= envs.libero.env.FIRM_CLOSE), each with its step (counted from the start state, settling
included) and the hand minus the object (horizontal distance and height, cm); the first chunk's gripper
values; the hand's lowest point relative to the object; and the object nearest the hand at the firm close.
Per task of --demos: the step of the demos' first close (actions' gripper > 0; demos record no settling).
Needs the real-LIBERO extra (requirements-libero.txt); ~1-2 min per episode on one core beside other work.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from experiments.carry_trace import episode_job, read_evaluation, replay, write_outputs  # noqa: E402  (the same replay as carry_trace)


def closes(trace: np.ndarray, firm: float, settle: int) -> dict:
    """trace (T, 8): per step (step, gripper command, hand xyz, object xyz) -> the first close (> 0) and the
    first firm close (>= firm), each as step and the hand minus the object (xy distance, dz; cm), None when
    there is none; the first chunk's gripper commands (the steps after `settle`, up to 10) and the hand's
    lowest height above the object (cm)."""
    def at(i):
        if i is None:
            return None
        d = trace[i, 2:5] - trace[i, 5:8]
        return {"step": int(trace[i, 0]), "xy_cm": round(100 * float(np.hypot(d[0], d[1])), 1),
                "dz_cm": round(100 * float(d[2]), 1)}
    first = next((i for i, g in enumerate(trace[:, 1]) if g > 0), None)
    hard = next((i for i, g in enumerate(trace[:, 1]) if g >= firm), None)
    return {"first_close": at(first), "firm_close": at(hard),
            "first_chunk_gripper": [round(float(g), 2) for g in trace[settle:settle + 10, 1]],
            "lowest_dz_cm": round(100 * float((trace[:, 4] - trace[:, 7]).min()), 1)}


def trace_episode(job: dict) -> tuple[dict, np.ndarray, list]:
    """Replay one evaluation job -> (its result, the (T, 8) trace, per step the hand minus every other object
    {name: (3,)})."""
    rows, others = [], []

    def record(env, action, name):
        hand = env.eef_pos()
        rows.append((env._t, float(np.asarray(action, float)[-1]), *hand, *env.body_pos(name)))
        others.append({o: hand - env.body_pos(o) for o in env.env.env.obj_body_id if o != name})
    result = replay(job, record)
    return result, np.array(rows), others


def demo_close_steps(root: Path) -> dict:
    """{task file stem: the demos' first-close steps} for every *_demo.hdf5 under root."""
    import h5py
    out = {}
    for f in sorted(root.glob("**/*_demo.hdf5")):
        with h5py.File(f, "r") as h:
            steps = [int(np.argmax(h["data"][k]["actions"][:, -1] > 0)) for k in h["data"]
                     if (h["data"][k]["actions"][:, -1] > 0).any()]
        out[f.name[:-len("_demo.hdf5")]] = steps
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("eval_dir", type=Path, help="an evaluate.py output directory (episodes.jsonl, eval_info.json)")
    p.add_argument("--modes", default="never_lifted",
                   help="comma-separated failure modes whose episodes are re-run; 'success' for successes "
                        "(default: never_lifted)")
    p.add_argument("--tasks", default=None, help="comma-separated task ids (default: every task)")
    p.add_argument("--per-task", type=int, default=2, help="at most this many episodes per task, in journal order (default 2)")
    p.add_argument("--demos", type=Path, default=None, help="the generation the policy trained on, for the demos' close steps")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", type=Path, default=None, help="directory for close_trace.json and close_trace.md")
    args = p.parse_args(argv)
    journal, info, episodes = read_evaluation(p, args.eval_dir)
    modes = set(args.modes.split(","))
    tasks = None if args.tasks is None else [int(t) for t in args.tasks.split(",")]
    label = lambda e: "success" if e["success"] else e.get("failure_mode")
    wanted = []
    for t in tasks if tasks is not None else sorted({e["task"] for e in episodes}):
        wanted += [e for e in episodes if e["task"] == t and label(e) in modes][:args.per_task]
    if not wanted:
        p.error(f"{journal}: no episode of tasks {args.tasks or 'all'} with outcome in {args.modes!r}")
    s = wanted[0]["settings"]
    import evaluate
    from envs.libero.env import FIRM_CLOSE, SETTLED
    from data import progress_bar
    evaluate._init_worker(info["policy"], s.get("replan"), args.threads, s.get("history"), s.get("decoding", "free"))
    out = []
    with progress_bar(total=len(wanted), desc="episodes", unit="ep") as bar:
        for e in wanted:
            r, trace, others = trace_episode(episode_job(e, s, imagine=False))
            c = closes(trace, FIRM_CLOSE, SETTLED)
            if c["firm_close"] is not None:
                i = int(np.argmax(trace[:, 1] >= FIRM_CLOSE))
                c["nearest_at_firm_close"] = min((round(100 * float(np.hypot(*v[:2])), 1), o) for o, v in others[i].items())
            same = all(r[k] == e[k] for k in ("success", "steps", "failure_mode"))
            out.append({"task": e["task"], "trial": e["trial"], "outcome": label(r), "reproduced": same, **c})
            bar.update(1)
    evaluate.close_envs()
    fmt = lambda c: "—" if c is None else f"{c['step']} | {c['xy_cm']} | {c['dz_cm']}"
    lines = [f"Close trace of {len(out)} episodes ({args.modes}) of {args.eval_dir}; steps count from the start "
             f"state ({SETTLED} settling steps); firm: a command >= {FIRM_CLOSE}", "",
             "| task | trial | outcome | first close: step | xy cm | dz cm | first firm close: step | xy cm | dz cm "
             "| lowest dz cm | nearest object at the firm close (xy cm) | first chunk's gripper |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for o in out:
        near = o.get("nearest_at_firm_close")
        lines.append(f"| {o['task']} | {o['trial']} | {o['outcome']}{'' if o['reproduced'] else ' (NOT reproduced)'} "
                     f"| {fmt(o['first_close'])} | {fmt(o['firm_close'])} | {o['lowest_dz_cm']} "
                     f"| {'—' if near is None else f'{near[1]} ({near[0]})'} | {' '.join(map(str, o['first_chunk_gripper'][:3]))} … |")
    firm = [o["firm_close"] for o in out if o["firm_close"] is not None]
    if firm:
        med = lambda k: float(np.median([f[k] for f in firm]))
        lines += ["", f"First firm close, median over {len(firm)} episodes: step {med('step'):.0f} "
                      f"({med('step') - SETTLED:.0f} after settling, as the demos count), "
                      f"{med('xy_cm'):.1f} cm beside and {med('dz_cm'):.1f} cm above the object; "
                      f"{sum(o['first_close'] is not None and o['first_close']['step'] == SETTLED + 1 for o in out)} "
                      f"of {len(out)} first close at step {SETTLED + 1} (the first chunk)."]
    if args.demos:
        lines += ["", "| demos' task | demos | first close step (no settling): median (min–max) |", "|---|---|---|"]
        for name, steps in demo_close_steps(args.demos).items():
            if steps:
                lines.append(f"| {name} | {len(steps)} | {np.median(steps):.0f} ({min(steps)}–{max(steps)}) |")
    write_outputs(args.out, "close_trace", out, lines)


if __name__ == "__main__":
    main()
