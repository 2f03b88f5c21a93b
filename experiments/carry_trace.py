"""Why a lifted object left the hand: re-run an evaluation's failed episodes on real LIBERO (evaluate.py is
deterministic: the same policy, settings and start state give the same rollout) with a per-step trace of the
gripper command and MuJoCo's finger contacts, and say for each what happened to the object to place
(docs/results.md, "Seed ensemble on all 50 official init states").

    python experiments/carry_trace.py runs/libero_cpu_object_1session/ens_s1s2/eval_test_replan5 \\
        --modes let_go_elsewhere --limit 40 --out results/libero_cpu_object_1session/ens_s1s2_carry

Verdicts, from the steps after the scene has settled (envs.libero SETTLED):
  opened          held by both fingers and lifted >= 3 cm (LIFTED), then let go with an open command
                  (gripper < 0) among the 5 steps before the fingers lost it: the policy opened the hand
  slipped         the same, with every command of those 5 steps closed: the object slipped out of a closed hand
  held to the end still held at the time limit
  never held      both fingers never touched it together (a push or a knock moved it)
  held, not lifted held, but let go before it rose 3 cm
Each episode is checked against its journal line (success, steps, failure mode); a mismatch is reported, not
hidden, and left out of the counts: an episode re-run alone can differ from the same episode inside the
evaluation (8 of the 30 below did, the same 8 with 1 and 2 torch threads: the env a worker reuses carries
something of its earlier episodes; not yet found). Needs the real-LIBERO extra (requirements-libero.txt); ~8 s per episode per policy on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WINDOW = 5  # steps before the fingers lost the object in which an open command counts as "opened"


def verdict(trace: list[tuple[float, bool, float]], lifted: float) -> tuple[str, int | None]:
    """trace: per step after settling, (gripper command, held by both fingers, rise above the resting height
    in m). -> (verdict, the step the fingers lost the object or None)."""
    held = [h for _, h, _ in trace]
    if not any(held):
        return "never held", None
    if held[-1]:
        return "held to the end", None
    lost = max(t for t, h in enumerate(held) if h) + 1          # the first step of the final release
    if max(r for _, _, r in trace[:lost]) < lifted:
        return "held, not lifted", lost
    before = [g for g, _, _ in trace[max(0, lost - WINDOW):lost + 1]]
    return ("opened" if min(before) < 0 else "slipped"), lost


def replay(job: dict, record, need_object: bool = True) -> dict:
    """Run one evaluation job as evaluate.py does, calling record(env, action, name of the object to place)
    after every step -> the episode's result. A goal that places no object (a drawer, a knob) ends the
    command, or with need_object=False gives record None for the name."""
    import evaluate
    env = evaluate.episode_env(job)
    step = env.step

    def traced(action, render=True):
        out = step(action, render=render)
        if env._placement is None and need_object:
            raise SystemExit(f"{job['suite']} task {job['task']}: its goal places no object; nothing to trace")
        record(env, action, env._placement[0] if env._placement else None)
        return out
    env.step = traced
    try:
        return evaluate.run_episode(job)
    finally:
        env.step = step


def trace_episode(job: dict) -> tuple[dict, list]:
    """Replay one evaluation job, recording every step after settling: (gripper command, held, rise)."""
    import numpy as np
    from envs.libero.env import SETTLED
    rows = []

    def record(env, action, name):
        if env._t > SETTLED:
            rows.append((float(np.asarray(action, float)[-1]), env.held(name), float(env._max_rise[name])))
    return replay(job, record), rows


def read_evaluation(p: argparse.ArgumentParser, eval_dir: Path) -> tuple[Path, dict, list[dict]]:
    """An evaluate.py output directory on real LIBERO -> (its journal, eval_info, the journal's episodes);
    a missing file or another env ends the command with a one-line error."""
    journal, info_path = eval_dir / "episodes.jsonl", eval_dir / "eval_info.json"
    for f in (journal, info_path):
        if not f.exists():
            p.error(f"{f}: not found (give an evaluate.py --out directory)")
    info = json.loads(info_path.read_text())
    if info.get("env") != "libero":
        p.error(f"{info_path}: env is {info.get('env')!r}; the trace reads real LIBERO's state (env 'libero')")
    return journal, info, [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]


def episode_job(e: dict, s: dict, imagine: bool | None = None) -> dict:
    """The evaluate.run_episode job that replays journal line `e` under the evaluation's settings `s`."""
    return {"env": "libero", "suite": e["suite"], "task": e["task"], "trial": e["trial"],
            "camera_size": s["camera_size"], "video": None,
            "imagine": s.get("imagine", False) if imagine is None else imagine,
            "max_steps": s.get("max_steps"), "perturb": s.get("perturb", 0.0),
            "init_states": s.get("init_states", "test")}


def write_outputs(out_dir: Path | None, name: str, out: list, lines: list[str]) -> None:
    """Print the report; with out_dir, keep it as out_dir/<name>.md beside the episodes as <name>.json."""
    print("\n".join(lines))
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{name}.json").write_text(json.dumps(out, indent=1))
        (out_dir / f"{name}.md").write_text("\n".join(lines) + "\n")


def report(out: list[dict], title: str) -> list[str]:
    """Markdown lines: the verdicts counted over the episodes that reproduced their journal line (a rollout
    that did not is another rollout, listed but not counted), then one row per episode."""
    counts = Counter(o["verdict"] for o in out if o["reproduced"])
    lines = [f"{title}; {sum(o['reproduced'] for o in out)} reproduced their journal line (counted below), "
             f"{sum(not o['reproduced'] for o in out)} did not (listed, not counted).", "",
             "| verdict | episodes |", "|---|---|"] + [f"| {k} | {n} |" for k, n in counts.most_common()]
    lines += ["", "| task | trial | verdict | fingers lost it at step (after settling) | gripper commands before it |",
              "|---|---|---|---|---|"]
    lines += [f"| {o['task']} | {o['trial']} | {o['verdict']}{'' if o['reproduced'] else ' (NOT reproduced)'} "
              f"| {o['lost_at'] if o['lost_at'] is not None else '—'} | {o['commands_before'] or '—'} |" for o in out]
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("eval_dir", type=Path, help="an evaluate.py output directory (episodes.jsonl, eval_info.json)")
    p.add_argument("--modes", default="let_go_elsewhere",
                   help="comma-separated failure modes whose episodes are re-run (default: let_go_elsewhere)")
    p.add_argument("--limit", type=int, default=None, help="at most this many episodes, in journal order")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads: the evaluation's per episode process (default 1, what evaluate.py gives "
                        "each of its 2 workers on 2 cores)")
    p.add_argument("--out", type=Path, default=None, help="directory for carry_trace.json and carry_trace.md")
    args = p.parse_args(argv)
    journal, info, episodes = read_evaluation(p, args.eval_dir)
    wanted = [e for e in episodes if e.get("failure_mode") in set(args.modes.split(","))][:args.limit]
    if not wanted:
        p.error(f"{journal}: no episode with failure mode in {args.modes!r}")
    s = wanted[0]["settings"]
    import evaluate
    from envs.libero.env import LIFTED
    evaluate._init_worker(info["policy"], s.get("replan"), args.threads, s.get("history"),
                          s.get("decoding", "free"))
    from data import progress_bar
    out = []
    with progress_bar(total=len(wanted), desc="episodes", unit="ep") as bar:
        for e in wanted:
            r, rows = trace_episode(episode_job(e, s))
            v, lost = verdict(rows, LIFTED)
            same = all(r[k] == e[k] for k in ("success", "steps", "failure_mode"))
            out.append({"task": e["task"], "trial": e["trial"], "failure_mode": r["failure_mode"],
                        "reproduced": same, "verdict": v, "lost_at": lost,
                        "held_steps": sum(h for _, h, _ in rows),
                        "commands_before": [round(g, 2) for g, _, _ in rows[max(0, (lost or 0) - WINDOW):(lost or 0) + 1]]
                        if lost else []})
            bar.update(1)
    evaluate.close_envs()
    lines = report(out, f"Carry trace of {len(out)} episodes ({args.modes}) of {args.eval_dir}")
    write_outputs(args.out, "carry_trace", out, lines)


if __name__ == "__main__":
    main()
