"""Where the arm starts: LIBERO's official init states against our fresh placements (demo attempts, validation
states), per arm joint, in radians from robosuite's init_qpos (docs/results.md, "Why validation overstated the
official init states: the arm's start pose").

    python experiments/init_pose.py                      # the four standard suites, ~1 min physics only
    python experiments/init_pose.py --suites libero_object --fresh 20

The official init states carry robosuite's default initialization noise (N(0, 0.02²) per joint); LIBERO's env
wrappers turn it off, so before 2026-12-04 every demo and validation state started from init_qpos exactly.
Rows "fresh" reset task 0 of each suite under the validation seeds with the given arm noise (envs.libero
INIT_NOISE, and 0: the earlier starts). Needs the real-LIBERO extra (requirements-libero.txt).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def arm_indexes(env) -> tuple[np.ndarray, np.ndarray]:
    """-> (qpos indexes of the arm's 7 joints, robosuite's init_qpos (7,))."""
    robot = env.env.env.robots[0]
    return np.asarray(robot._ref_joint_pos_indexes), np.asarray(robot.init_qpos, float)


def gripper_shift(env, idx, q0, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward kinematics of q0 + each offset (N, 7) -> (gripper displacement from q0's (N,) in cm, its
    rotation (N,) in degrees). Only the arm's joints are set; the env is left at q0."""
    sim = env.sim
    sim.data.qpos[idx] = q0
    sim.forward()
    p0, m0 = env.eef_pos().copy(), env.eef_mat().copy()
    cm, deg = [], []
    for d in offsets:
        sim.data.qpos[idx] = q0 + d
        sim.forward()
        cm.append(100 * np.linalg.norm(env.eef_pos() - p0))
        r = m0.T @ env.eef_mat()
        deg.append(np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1))))
    sim.data.qpos[idx] = q0
    sim.forward()
    return np.asarray(cm), np.asarray(deg)


def row(label: str, offsets: np.ndarray, cm: np.ndarray, deg: np.ndarray) -> str:
    """offsets (N, 7) -> a markdown row: N, per-joint std, the largest |per-joint mean|, mean |offset|, and the
    gripper's mean (max) displacement and rotation."""
    std = " ".join(f"{v:.4f}" for v in offsets.std(0))
    return (f"| {label} | {len(offsets)} | {std} | {np.abs(offsets.mean(0)).max():.4f} | "
            f"{np.abs(offsets).mean():.4f} | {cm.mean():.2f} ({cm.max():.2f}) | {deg.mean():.2f} ({deg.max():.2f}) |")


def table(suites, fresh: int = 10, noises=None) -> str:
    import envs.libero as libero_sim
    noises = [libero_sim.INIT_NOISE, 0.0] if noises is None else noises
    rows = ["| start states | N | std per joint 1-7 (rad) | max abs mean | mean abs offset | gripper moved, cm: "
            "mean (max) | gripper turned, deg: mean (max) |", "|---|---|---|---|---|---|---|"]
    for suite in suites:
        env = libero_sim.LiberoEnv(suite, 0, camera_size=0)
        idx, q0 = arm_indexes(env)
        s = env.suite
        # flattened MuJoCo states: (time, qpos, qvel); the arm's joints lead qpos in every LIBERO scene
        official = np.concatenate([s.get_task_init_states(t)[:, 1 + idx] for t in range(len(s.tasks))]) - q0
        rows.append(row(f"{s.name}: official init states, all tasks", official, *gripper_shift(env, idx, q0, official)))
        env.close()
        for noise in noises:
            env = libero_sim.LiberoEnv(suite, 0, camera_size=0, init_noise=noise)
            offs = []
            for i in range(fresh):
                env.set_val_state(i)
                offs.append(env.sim.data.qpos[idx] - q0)
            offs = np.stack(offs)
            rows.append(row(f"{s.name}: fresh placements (validation seeds, task 0), init_noise {noise}",
                            offs, *gripper_shift(env, idx, q0, offs)))
            env.close()
    return "\n".join(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suites", default="libero_spatial,libero_object,libero_goal,libero_10",
                   help="comma-separated LIBERO suites")
    p.add_argument("--fresh", type=int, default=10, help="fresh placements per suite and arm noise (validation "
                                                         "seeds 0..N-1 of task 0; each reset costs 2-4 s)")
    args = p.parse_args(argv)
    import envs.libero as libero_sim
    libero_sim._installed()  # the install hint, not an ImportError
    print(table(args.suites.split(","), args.fresh))


if __name__ == "__main__":
    main()
