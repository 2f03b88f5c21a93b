"""The closed-loop controller every real-LIBERO primitive shares: a P-controller on the grip site's position
and orientation (fingers pointing down, closing along a chosen direction, optionally tilted), moves and
holds, and the rotation helpers they use. The primitives themselves: envs/libero/expert.py."""
from __future__ import annotations

import math

import numpy as np

from envs.common import MAX_DELTA_ROT
from envs.libero.env import LiberoEnv


def _wrap(a: float, period: float = 2 * math.pi) -> float:
    return (a + period / 2) % period - period / 2


def _axis_angle(R: np.ndarray) -> np.ndarray:
    """Rotation matrix -> axis * angle (world frame), robust near 0 and pi."""
    cos = np.clip((np.trace(R) - 1) / 2, -1.0, 1.0)
    angle = math.acos(cos)
    if angle < 1e-6:
        return np.zeros(3)
    v = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    if math.pi - angle < 1e-3:  # near pi the antisymmetric part vanishes: use the diagonal
        axis = np.sqrt(np.clip((np.diag(R) + 1) / 2, 0, None))
        axis *= np.sign(v + (v == 0))
        return axis / np.linalg.norm(axis) * angle
    return v / (2 * math.sin(angle)) * angle


def _rotation(axis, angle: float) -> np.ndarray:
    """Rodrigues: the rotation by `angle` about `axis` (3,)."""
    k = np.asarray(axis, float) / (np.linalg.norm(axis) + 1e-12)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * K @ K


def _planar(angle: float) -> np.ndarray:
    return np.array([math.cos(angle), math.sin(angle), 0.0])


class Primitive:
    """One goal predicate as a closed-loop controller, `expert(obs) -> action (7,)`, from the state it starts in.

    A P-controller on the grip site position (action = gain * error, clipped; one unit of action moves
    the hand ~1.1 cm per step in LIBERO's OSC) and on the orientation (fingers pointing down, closing
    along a chosen direction, optionally tilted). A subclass writes `_plan()`, a generator of actions
    that re-reads the simulator state at every step. `rng` adds small noise (demonstration diversity).
    """

    GAIN, ROT_GAIN, MIN_ACTION = 10.0, 1.0, 0.25  # position gain per metre, rotation gain, speed floor
    # hand and finger footprints in the grasp frame (u: closing direction, v: across), from the
    # collision geoms of robosuite's Panda gripper (open), and their heights above the grip site
    HAND_U, HAND_V, HAND_Z = 0.105, 0.034, 0.025
    FINGER_U, FINGER_V = 0.052, 0.012
    CLOSED_U = 0.030  # half the span of the closed finger pair along the closing direction

    def __init__(self, env: LiberoEnv, rng: np.random.Generator | None = None, step=None):
        self.env, self.step = env, None if step is None else tuple(step)
        self.rng = rng or np.random.default_rng(0)
        self.speed = float(self.rng.uniform(0.8, 1.0))
        self.plan = self._plan()

    def _plan(self):
        raise NotImplementedError

    def __call__(self, obs=None) -> np.ndarray:
        try:
            return next(self.plan)
        except StopIteration:
            return np.r_[np.zeros(6), -1.0]

    # --- orientation and motion ----------------------------------------------------------------

    def _turn(self, closing_angle) -> float:
        """The turn of the hand about world z (rad) that makes the fingers close along `closing_angle`.
        Closing directions repeat every pi, so there are two or three candidates: the smallest that
        keeps the last joint (q7 -= turn for a pointing-down hand; limits +-2.9 rad) nearer its centre
        (the other joints add to q7 on the way: the margin is kept wide)."""
        axis = self.env.finger_axis()
        now = math.atan2(axis[1], axis[0])
        q7 = float(self.env.sim.data.qpos[self.env.sim.model.get_joint_qpos_addr("robot0_joint7")])
        w = _wrap(closing_angle - now, math.pi)
        options = [t for t in (w, w - math.pi, w + math.pi) if abs(t) <= math.radians(135)]
        return min(options, key=lambda t: abs(t) + 0.3 * max(0.0, abs(q7 - t) - 1.2))

    def _target_rot(self, closing_angle, tilt=None) -> np.ndarray:
        """Fingers pointing down, closing along `closing_angle` (turned as `_turn` says); `tilt`:
        (horizontal direction (3,), angle rad) swings the fingertips that far toward the direction."""
        cur = self.env.finger_axis()
        ang = math.atan2(cur[1], cur[0]) + self._turn(closing_angle)
        x = np.array([math.cos(ang), math.sin(ang), 0.0])
        z = np.array([0.0, 0.0, -1.0])
        R_site = self.env.eef_mat()
        # the site frame's axis along the fingers' closing direction, and the one from the hand to the
        # fingertips (fixed in the gripper, whatever its pose)
        closing_local = R_site.T @ self.env.finger_axis()
        pointing_local = R_site.T @ (self.env.eef_pos() - self.env.sim.data.get_body_xpos("gripper0_right_gripper"))
        ix, iz = int(np.argmax(np.abs(closing_local))), int(np.argmax(np.abs(pointing_local)))
        sx, sz = np.sign(closing_local[ix]), np.sign(pointing_local[iz])
        R = np.zeros((3, 3))
        R[:, ix], R[:, iz] = sx * x, sz * z
        iy = 3 - ix - iz
        R[:, iy] = np.cross(R[:, (iy + 1) % 3], R[:, (iy + 2) % 3])
        if tilt is not None:
            direction, angle = tilt
            R = _rotation(np.cross(z, direction), angle) @ R
        return R

    # --- actions -------------------------------------------------------------------------------
    def _action(self, target, grip, R_target, max_speed=1.0, floor=None):
        """`floor`: the least commanded speed while away from the target (default MIN_ACTION; a push
        against a damped joint needs more: OSC's force grows with the commanded displacement)."""
        err = target - self.env.eef_pos()
        a = np.zeros(7)
        a[:3] = np.clip(self.GAIN * err, -1, 1) * max_speed * self.speed
        # OSC barely moves the arm for |action| < ~0.15 (joint friction and damping): keep a floor on
        # the commanded speed while the error is more than a few millimetres
        n, floor = np.abs(a[:3]).max(), self.MIN_ACTION if floor is None else floor
        if n > 1e-9 and n < floor and np.linalg.norm(err) > 0.003:
            a[:3] *= floor / n
        a[3:6] = np.clip(self.ROT_GAIN * _axis_angle(R_target @ self.env.eef_mat().T) / MAX_DELTA_ROT, -1, 1)
        a[6] = grip
        return a

    def _move(self, target_fn, grip, R, tol=0.006, steps=80, max_speed=1.0):
        for _ in range(steps):
            target = target_fn()
            if np.linalg.norm(target - self.env.eef_pos()) < tol:
                return
            yield self._action(target, grip, R, max_speed)

    def _hold(self, target_fn, grip, R, steps):
        for _ in range(steps):
            yield self._action(target_fn(), grip, R)
