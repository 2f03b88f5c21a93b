"""What skipping the cameras between re-plans saves in an evaluation, and that it changes nothing.

evaluate.py asks the env to draw its cameras only for an observation that will be read (the policy's next
re-plan, a GIF's frame); every other step runs physics only. This benchmark runs the same episodes of a
trained policy twice in one process, one after the other: as evaluate.py runs them, and with the cameras
drawn at every step (the behaviour before), and prints a table of wall time per episode, the ratio, and
whether the two rollouts are the same (success, steps, every executed action).

    python experiments/bench_eval_render.py --policy runs/libero_cpu_object/cft_s1 --env libero \\
        --suite libero_object --tasks 0,1 --trials 1
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import evaluate as E  # noqa: E402


class Recorder:
    """Wraps the episode's env: records the executed actions; `always` draws the cameras at every step."""

    def __init__(self, env, always: bool):
        self.env, self.always, self.actions = env, always, []

    def __getattr__(self, name):
        return getattr(self.env, name)

    def set_init_state(self, i):
        self.actions = []
        return self.env.set_init_state(i)

    def set_val_state(self, i):
        self.actions = []
        return self.env.set_val_state(i)

    def step(self, a, render=True):
        self.actions.append(np.asarray(a, float))
        return self.env.step(a, render or self.always)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--policy", required=True, help="a co-fine-tuned run directory")
    p.add_argument("--env", default="libero", help="mini | libero")
    p.add_argument("--suite", default="libero_object", help="one suite")
    p.add_argument("--tasks", default="0,1", help="task ids")
    p.add_argument("--trials", type=int, default=1, help="official init states 0..N-1 per task")
    p.add_argument("--camera-size", type=int, default=128, help="image height = width")
    args = p.parse_args(argv)
    E._init_worker(args.policy, None, E.torch_threads(1))
    backend = E.env_backend
    names, get_suite, make_env = backend(args.env)
    mode = {"always": False}
    E.env_backend = lambda kind: (names, get_suite,
                                  lambda s, t, size: Recorder(make_env(s, t, size), mode["always"]))
    rows = []
    for task in [int(t) for t in args.tasks.split(",")]:
        for trial in range(args.trials):
            job = {"env": args.env, "suite": args.suite, "task": task, "trial": trial,
                   "camera_size": args.camera_size, "video": None, "imagine": False}
            out = {}
            for always in (False, True):
                mode["always"] = always
                E.close_envs()  # a fresh env each time: robosuite draws the fixtures at construction
                env = E.episode_env(job)
                t0 = time.perf_counter()
                r = E.run_episode(job)
                out[always] = (r, time.perf_counter() - t0, np.stack(env.actions))
            (r, t_gated, a), (r_all, t_all, a_all) = out[False], out[True]
            same = r["success"] == r_all["success"] and r["steps"] == r_all["steps"] and np.array_equal(a, a_all)
            rows.append((task, trial, r["success"], r["steps"], t_gated, t_all, same))
    E.close_envs()
    print(f"\n{'task':>4} {'trial':>5} {'success':>7} {'steps':>5} {'drawn at re-plans s':>20} "
          f"{'drawn every step s':>19} {'ratio':>6} {'same rollout':>12}")
    for task, trial, ok, steps, tg, ta, same in rows:
        print(f"{task:4d} {trial:5d} {str(ok):>7} {steps:5d} {tg:20.1f} {ta:19.1f} {ta / tg:5.1f}x {str(same):>12}")
    tg, ta = sum(r[4] for r in rows), sum(r[5] for r in rows)
    print(f"all: {tg:.1f} s vs {ta:.1f} s, {ta / tg:.1f}x faster; rollouts identical: {all(r[6] for r in rows)}")
    return 0 if all(r[6] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
