"""The embedded benchmark's scripted expert: a generator of actions per skill, closed-loop on privileged
state, with noise on every action, on the grasp point, on the carry height and on the speed (demo
diversity); `Disturbance` executes it with bursts of pushes and records its corrections (DART).
"""
from __future__ import annotations

import math
import zlib

import numpy as np

from envs.common import MAX_DELTA_POS, MAX_DELTA_ROT, record_demo
from envs.mini.env import MiniEnv
from envs.mini.scene import CAB_FRONT, CABINET, FRONT_X, HANDLE_GAP, HANDLE_OUT, HANDLE_Z

# Std of the Gaussian noise on the expert's position actions (action units, i.i.d. per step). The
# recorded action is the executed one. It was 0.04 (16% of the normalised range per step): FAST then
# spent most of its tokens on noise in the high-frequency DCT coefficients (15 tokens per chunk instead of
# 11 at 0.01; action-token accuracy after 800 co-fine-tuning steps 0.17 instead of 0.27, docs/results.md).
EXPERT_NOISE = 0.01


class ScriptedExpert:
    """Plan skills in order; each skill is a generator of 7-D actions (a P-controller on the eef toward
    waypoints computed from the objects' true poses, capped per axis at `speed`, plus Gaussian noise)."""

    def __init__(self, env: MiniEnv, rng: np.random.Generator, noise: float = EXPERT_NOISE):
        self.env, self.rng = env, rng
        self.speed = rng.uniform(0.15, 0.22)   # max |dpos| in action units (x 0.05 m per step)
        self.carry_z = rng.uniform(0.19, 0.23)
        self.noise = noise
        self.skills = list(env.task.plan)
        self.gen = None

    def __call__(self, obs=None) -> np.ndarray:
        while True:
            if self.gen is None:
                if not self.skills:  # plan done: hold still with the gripper open
                    return np.array([0, 0, 0, 0, 0, 0, -1.0])
                skill = self.skills.pop(0)
                self.gen = getattr(self, "_" + skill[0])(*skill[1:])
            try:
                return next(self.gen)
            except StopIteration:
                self.gen = None

    def _action(self, err, grip, yaw_err=0.0, speed=None):
        vmax = speed or self.speed  # per-axis cap: a far x target never starves the z correction
        v = np.clip(np.asarray(err, float) / MAX_DELTA_POS, -vmax, vmax) + self.rng.normal(0, self.noise, 3)
        rot = np.clip(yaw_err / MAX_DELTA_ROT, -0.3, 0.3)
        return np.clip(np.array([*v, 0.0, 0.0, rot, grip]), -1, 1)

    def _move(self, target, grip, tol=0.008, yaw=None, steps=60, speed=None, until=None):
        """Yield actions toward `target` (xyz or a callable); stop when within `tol` (and yaw aligned)."""
        for _ in range(steps):
            t = np.asarray(target() if callable(target) else target, float)
            err = t - self.env.eef_pos()
            yaw_err = 0.0 if yaw is None else (yaw - self.env.hand_yaw() + math.pi) % (2 * math.pi) - math.pi
            done = until() if until else (np.linalg.norm(err) < tol and abs(yaw_err) < 0.05)
            if done:
                return True
            yield self._action(err, grip, yaw_err, speed)
        return False

    def _hold(self, grip, steps):
        for _ in range(steps):
            yield np.array([0, 0, 0, 0, 0, 0, grip], float)

    def _grasp_yaw(self, name) -> float | None:
        o = self.env.objects[name]
        if o.kind != "block":
            return None
        period = math.pi / 2 if abs(o.size[0] - o.size[1]) < 1e-6 else math.pi
        yaw = self.env.body_yaw(name) % period  # fingers close along the block's local y axis
        return yaw - period if yaw > period / 2 else yaw

    def _pick_place(self, name, container, offset=(0.0, 0.0)):
        env, o = self.env, self.env.objects[name]
        jitter = self.rng.uniform(-0.004, 0.004, 2)
        for attempt in range(3):
            yaw = self._grasp_yaw(name)
            above = lambda: [*(env.body_pos(name)[:2] + jitter), self.carry_z]
            yield from self._move(above, -1, tol=0.012, yaw=yaw, steps=80)
            yield from self._move(above, -1, tol=0.006, yaw=yaw, steps=20)
            grasp = lambda: [*(env.body_pos(name)[:2] + jitter), env.body_pos(name)[2] + o.grasp_h]
            yield from self._move(grasp, -1, tol=0.005, steps=50)
            yield from self._hold(1.0, 7)
            yield from self._move(lambda: [*env.eef_pos()[:2], self.carry_z], 1.0, tol=0.015, steps=50)
            if env.body_pos(name)[2] > 0.06 and env.touching_fingers(name):
                break
            yield from self._move(lambda: [*env.eef_pos()[:2], self.carry_z], -1, tol=0.02, steps=10)
        else:
            return  # three failed grasps: give up (the episode fails)
        c = env.objects[container]
        # carry so that the object (not the hand) ends above the container's centre (+ offset), then lower
        # it (still centring) until its bottom is 12 mm above the support surface
        dest = lambda z: [*(env.body_pos(container)[:2] + offset - (env.body_pos(name)[:2] - env.eef_pos()[:2])), z]
        yield from self._move(lambda: dest(self.carry_z), 1.0, tol=0.012, steps=100)
        yield from self._move(lambda: dest(self.carry_z), 1.0, tol=0.005, steps=30, speed=0.12)
        gap = lambda: env.body_pos(container)[2] + c.surface + 0.012 - env.body_pos(name)[2]
        yield from self._move(lambda: dest(env.eef_pos()[2] + gap()), 1.0, tol=0.004, steps=60)
        yield from self._hold(-1.0, 6)
        yield from self._move(lambda: [*env.eef_pos()[:2], self.carry_z], -1, tol=0.02, steps=40)

    def _push(self, name):
        env, r = self.env, self.env.objects[name].radius
        behind = lambda: env.body_pos(name)[:2] - [r + 0.045, 0]
        yield from self._move(lambda: [*behind(), 0.12], -1, tol=0.012, yaw=0.0, steps=80)
        yield from self._move(lambda: [*behind(), 0.016], -1, tol=0.005, steps=50)
        push = lambda: [env.body_pos(name)[0] + 0.04, env.body_pos(name)[1], 0.016]
        yield from self._move(push, -1, steps=150, speed=0.12, until=lambda: env.body_pos(name)[0] > FRONT_X + 0.025)
        yield from self._move(env.eef_pos() + [0, 0, 0.1], -1, tol=0.02, steps=30)

    def _open(self):
        env, y = self.env, CABINET["y"]
        hook = lambda: CAB_FRONT + env.drawer_q() + HANDLE_GAP / 2
        yield from self._move(lambda: [hook(), y, HANDLE_Z + 0.1], 1.0, tol=0.01, yaw=0.0, steps=80)
        yield from self._move(lambda: [hook(), y, HANDLE_Z + 0.1], 1.0, tol=0.004, steps=20, speed=0.15)
        yield from self._move(lambda: [hook(), y, HANDLE_Z - 0.004], 1.0, tol=0.005, steps=50)
        yield from self._move([CAB_FRONT + 0.125 + HANDLE_GAP / 2, y, HANDLE_Z - 0.004], 1.0, steps=80,
                              speed=0.1, until=lambda: env.drawer_q() > 0.11)
        yield from self._move(lambda: [env.eef_pos()[0], y, HANDLE_Z + 0.13], 1.0, tol=0.02, steps=30)

    def _close(self):
        env, y = self.env, CABINET["y"]
        outside = lambda: CAB_FRONT + env.drawer_q() + HANDLE_OUT + 0.035
        yield from self._move(lambda: [outside(), y, HANDLE_Z + 0.1], 1.0, tol=0.01, yaw=0.0, steps=80)
        yield from self._move(lambda: [outside(), y, HANDLE_Z], 1.0, tol=0.006, steps=50)
        yield from self._move([CAB_FRONT + HANDLE_OUT + 0.01 - 0.006, y, HANDLE_Z], 1.0, steps=80,
                              speed=0.1, until=lambda: env.drawer_q() < 0.004)
        yield from self._move(env.eef_pos() + [0.04, 0, 0.1], 1.0, tol=0.02, steps=30)


class Disturbance:
    """Perturbed execution with the expert's labels (DART, Laskey et al. 2017): demonstrations of a
    scripted expert follow its nominal path, so a policy that drifts 1 cm off it is in states no demo
    shows (LIBERO's human demonstrations are full of such corrections). `Disturbance(action)` returns the
    action to *execute*: the expert's, plus, during a burst, a constant push on x/y/z; the recorded label
    stays the expert's action, and as the expert is closed-loop on the true state its next actions are
    the correction. A burst starts with probability `rate` per step, lasts 2-6 steps and pushes each
    position axis by U(-scale, scale) action units (x 0.05 m per step). Holds (zero position action: the
    gripper closing or opening) are never disturbed, so bursts do not tear a grasp apart."""

    def __init__(self, rng: np.random.Generator, scale: float, rate: float = 0.04):
        self.rng, self.scale, self.rate = rng, float(scale), float(rate)
        self.left, self.push = 0, np.zeros(3)

    def __call__(self, action: np.ndarray) -> np.ndarray:
        if not np.any(action[:3]):          # a hold: end any burst
            self.left = 0
            return action
        if self.left == 0 and self.rng.random() < self.rate:
            self.left = int(self.rng.integers(2, 7))
            self.push = self.rng.uniform(-self.scale, self.scale, 3)
        if self.left == 0:
            return action
        self.left -= 1
        out = np.array(action, float)
        out[:3] = np.clip(out[:3] + self.push, -1, 1)
        return out


def scripted_expert(env: MiniEnv, rng: np.random.Generator, noise: float = EXPERT_NOISE) -> ScriptedExpert:
    """A callable `expert(obs) -> action (7,)` for the env's current task, from its current state."""
    return ScriptedExpert(env, rng, noise)


def rollout_expert(suite, task_id: int, init_id: int, seed: int = 0, camera_size: int = 128,
                   env: MiniEnv | None = None, max_steps: int | None = None, keep_failed: bool = False,
                   split: str = "eval", noise: float = EXPERT_NOISE, perturb: float = 0.0):
    """Run the expert from init state `init_id` of `split` (Suite.get_init_state) -> (demo dict in
    data.write_task_file's format | None, success).
    Observation t is recorded before action t (LIBERO); images are stored upright. A failed rollout
    returns None unless `keep_failed`. Pass `env` to reuse one environment across rollouts.
    perturb > 0 executes the expert's actions with bursts of that size (`Disturbance`) and records the
    expert's own actions; its random stream is separate, so perturb=0 gives the same demo as before."""
    own = env is None
    env = env or MiniEnv(suite, task_id, camera_size=camera_size)
    key = [seed, task_id, init_id, zlib.crc32(env.suite.name.encode())]
    obs = env.set_init_state(init_id if split == "eval" else env.suite.get_init_state(task_id, init_id, split))
    expert = scripted_expert(env, np.random.default_rng(key), noise)
    disturb = Disturbance(np.random.default_rng(key + [1]), perturb) if perturb > 0 else None
    demo, success = record_demo(env, expert, obs, max_steps or env.suite.max_steps, env.model_xml,
                                cameras=env.renderer is not None, disturb=disturb)
    if own:
        env.close()
    return (demo, success) if success or keep_failed else (None, False)
