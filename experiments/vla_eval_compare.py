"""The vla-eval harness against evaluate.py on the same policy and start states (docs/ecosystem.md).

First, one observation both ways: after the 10 settling no-ops from init state 0, the harness's observation
(its own env, reset and settle; upright 256² images, its 8-D state) against evaluate.py's at 256², and the
policy's first chunk from each (the server's predict vs Policy.predict_action_chunk). Then one task's
official init states 0..E-1 scored three ways, one after the other:
  evaluate.py --env libero at the demos' camera size (128²), evaluate.py at the harness's size (256²), and
  vla-eval's own LIBERO benchmark driving integrations/vla_eval_server.py.
Prints per-episode success and policy steps (the 10 settling steps not counted) and the wall time of each
way, and writes OUT/compare.json. Needs the real-LIBERO extra and requirements-vla-eval.txt in one env.

    python experiments/vla_eval_compare.py --policy runs/libero_cpu_object/cft_s1 --suite libero_object \\
        --task 0 --episodes 3 --out runs/vla_eval_compare
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTLE = 10


def run(cmd, **kw):
    print("+", " ".join(map(str, cmd)), flush=True)
    return subprocess.run(list(map(str, cmd)), cwd=REPO, check=True, **kw)


def ours(args, size: int, out: Path) -> tuple[dict, float]:
    if not (out / "wall_s").exists():
        t0 = time.time()
        run([sys.executable, "evaluate.py", "--policy", args.policy, "--env", "libero", "--suite", args.suite,
             "--tasks", args.task, "--trials", args.episodes, "--init-states", "test", "--camera-size", size,
             "--out", out, "--workers", 1, "--videos", 0, "--resume", *budget(args, "--max-steps")])
        (out / "wall_s").write_text(f"{time.time() - t0:.1f}")
    rows = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines() if line.strip()]
    return {r["trial"]: (bool(r["success"]), r["steps"] - SETTLE) for r in rows}, float((out / "wall_s").read_text())


def budget(args, flag):
    return [] if args.max_steps is None else [flag, args.max_steps]


def harness(args, out: Path) -> tuple[dict, float]:
    sys.path.insert(0, str(REPO))
    from envs import libero
    name = libero.get_suite(args.suite).tasks[args.task].language
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.time()
    log = open(out.parent / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "integrations.vla_eval_server", "--policy", args.policy,
                               "--port", str(port)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit(f"error: the server exited; see {out.parent / 'server.log'}")
                time.sleep(0.5)
        run(["vla-eval", "run", "-c", REPO / "integrations" / "vla_eval_libero.yaml", "--no-docker",
             "--server-url", f"ws://127.0.0.1:{port}", "--param", f"suite={args.suite}",
             "--benchmark-field", f"subname={args.suite}", "--benchmark-field", f"episodes_per_task={args.episodes}",
             "--benchmark-field", f"tasks={json.dumps([name])}", "--output-dir", out,
             *(["--benchmark-field", f"max_steps={args.max_steps}"] if args.max_steps else [])])
    finally:
        server.terminate()
        server.wait(timeout=60)
    agg = json.loads(max(out.glob("*_aggregate.json"), key=os.path.getmtime).read_text())
    eps = [e for t in agg["tasks"] for e in t["episodes"]]
    return {e["episode_idx"]: (bool(e["metrics"]["success"]), e["steps"]) for e in eps}, time.time() - t0


def first_chunk(args) -> dict:
    """The same start both ways, in this process: image and state differences, and the first chunk."""
    import numpy as np
    sys.path.insert(0, str(REPO))
    from vla_eval.benchmarks.libero.benchmark import LIBEROBenchmark
    from vla_eval.model_servers.base import SessionContext
    from vla_eval.recording import NullEpisodeRecorder

    from envs import libero
    from envs.common import obs_proprio
    from integrations.vla_eval_server import CoWVLAModelServer
    server = CoWVLAModelServer(args.policy, threads=1)
    env = libero.LiberoEnv(args.suite, args.task, camera_size=256)          # evaluate.py's loop at 256²
    obs = env.set_init_state(0)
    for _ in range(SETTLE):
        obs, *_ = env.step(np.array([0, 0, 0, 0, 0, 0, -1.0]))
    server.policy.reset()
    ours = server.policy.predict_action_chunk(obs, env.language)
    env.close()
    bench = LIBEROBenchmark(suite=args.suite, send_wrist_image=True, send_state=True, quat_no_antipodal=True)
    bench._recorder = NullEpisodeRecorder()                                 # what start_episode sets
    task = {**bench.get_tasks()[args.task], "episode_idx": 0}
    hobs = bench.make_obs(bench.reset(task), task)
    theirs = server.predict(hobs, SessionContext("first", "chunk"))["actions"]
    bench.cleanup()
    diff = lambda a, b: float(np.abs(np.asarray(a, float) - np.asarray(b, float)).mean())
    out = {"task": task["name"], "same_instruction": task["name"] == env.language,
           "agentview_mean_abs_diff": diff(hobs["images"]["agentview"], obs["agentview_image"][::-1, ::-1]),
           "wrist_mean_abs_diff": diff(hobs["images"]["wrist"], obs["robot0_eye_in_hand_image"][::-1, ::-1]),
           "state_max_abs_diff": float(np.abs(np.asarray(hobs["states"]) - obs_proprio(obs)).max()),
           "first_chunk_equal": bool(np.array_equal(ours, theirs)), "first_chunk_max_abs_diff": diff(ours, theirs)}
    print("first observation, both ways:", json.dumps(out, indent=1), flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", required=True, help="co-fine-tuned run directory")
    p.add_argument("--suite", default="libero_object", help="LIBERO suite")
    p.add_argument("--task", type=int, default=0, help="task index in the suite")
    p.add_argument("--episodes", type=int, default=3, help="official init states 0..N-1")
    p.add_argument("--out", default="runs/vla_eval_compare", help="output directory (finished parts are kept)")
    p.add_argument("--max-steps", type=int, default=None, help="override the step budget (a quick check only)")
    p.add_argument("--first-chunk-only", action="store_true", help="only the one-observation check")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    first = first_chunk(args)
    if args.first_chunk_only:
        (out / "first_chunk.json").write_text(json.dumps(first, indent=2))
        return
    ways = {"evaluate.py, 128²": lambda: ours(args, 128, out / "evaluate_128"),
            "evaluate.py, 256²": lambda: ours(args, 256, out / "evaluate_256"),
            "vla-eval": lambda: harness(args, out / "vla_eval")}
    results = {k: f() for k, f in ways.items()}
    print(f"\n| init state | {' | '.join(results)} |\n|---|" + "---|" * len(results))
    for i in range(args.episodes):
        cells = [("success" if r[i][0] else "fail") + f", {r[i][1]} steps" for r, _ in results.values()]
        print(f"| {i} | {' | '.join(cells)} |")
    print("| success | " + " | ".join(f"{sum(s for s, _ in r.values())}/{len(r)}" for r, _ in results.values()) + " |")
    print("| wall time | " + " | ".join(f"{t / 60:.1f} min" for _, t in results.values()) + " |")
    (out / "compare.json").write_text(json.dumps({"first_chunk": first} | {k: {"episodes": {str(i): {"success": s, "steps": n}
                                                                   for i, (s, n) in r.items()}, "wall_s": t}
                                                  for k, (r, t) in results.items()}, indent=2))


if __name__ == "__main__":
    main()
