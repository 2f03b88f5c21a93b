"""The embedded benchmark's environment: LIBERO's OffScreenRenderEnv interface over one task of a suite.

  control  LIBERO's 7-D action in [-1, 1] at 20 Hz: delta eef position (x 0.05 m, relative to the
           current pose like LIBERO's OSC), delta rotation (axis-angle, x 0.5 rad), gripper
           (-1 open, +1 close; values in between give a partly open gripper).
  obs      agentview_image, robot0_eye_in_hand_image (H, W, 3) uint8 UPSIDE DOWN like LIBERO's env
           (evaluation code rotates them with img[::-1, ::-1]); robot0_eef_pos (3,), robot0_eef_quat
           (4,) xyzw, robot0_gripper_qpos (2,) (open ~ (0.055, -0.055)), robot0_joint_pos (4,).
Also: `motion_masks` (what moved, from MuJoCo's segmentation; the extractor's factorisation check) and
`failure_mode()` (why an episode failed, FAILURE_MODES).
"""
from __future__ import annotations

import math
import os

import mujoco
import numpy as np

from envs.common import MAX_DELTA_POS, MAX_DELTA_ROT, NUM_INIT_STATES, check_action
from envs.mini.scene import FINGER_OPEN, FRONT_X, SUBSTEPS, get_suite, scene_xml

def _quat_xyzw(mat9) -> np.ndarray:
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.asarray(mat9, float).ravel())
    return np.array([q[1], q[2], q[3], q[0]])  # wxyz -> xyzw (robosuite)


def motion_masks(model_xml: str, states: np.ndarray, size: int, camera: str = "agentview",
                 min_move: float = 0.002) -> np.ndarray:
    """What the simulator knows moved, for the extractor's factorisation check (Sec. 3.2).

    states (n, nq + nv): a clip's recorded [qpos, qvel] (a demo's `states`); model_xml: its `model_file`.
    -> (n, size, size) bool, upright like data.py's images: in frame t, the pixels that show a body
    whose position changes by more than `min_move` metres during the clip (the gripper, a carried
    object, a drawer), from MuJoCo's segmentation rendering. Only this module's scenes are accepted:
    robosuite's XML (real LIBERO) renders differently outside robosuite (cameras, robot meshes), so
    its masks would not line up with the recorded images — ValueError."""
    if 'model="mini_libero"' not in model_xml[:200]:
        raise ValueError("motion_masks needs a scene written by envs.mini (model 'mini_libero'); got another model_file")
    model = mujoco.MjModel.from_xml_string(model_xml)
    data = mujoco.MjData(model)
    renderer = mujoco.Renderer(model, size, size)
    renderer.enable_segmentation_rendering()
    pos, segs = [], []
    for state in np.asarray(states, float):
        data.qpos[:], data.qvel[:] = state[: model.nq], state[model.nq: model.nq + model.nv]
        mujoco.mj_forward(model, data)
        pos.append(data.xpos.copy())                                        # (n_body, 3)
        renderer.update_scene(data, camera=camera)
        segs.append(renderer.render()[..., :2].copy())                      # (H, W, [object id, type])
    renderer.close()
    pos = np.stack(pos)
    moved = np.linalg.norm(pos - pos[:1], axis=-1).max(0) > min_move        # (n_body,)
    geom_moves = np.append(moved[model.geom_bodyid], False)                 # index -1 (background) -> False
    seg = np.stack(segs)
    is_geom = seg[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM)
    return is_geom & geom_moves[np.where(is_geom, seg[..., 0], -1)]


class MiniEnv:
    """One task of a suite. `step(action) -> (obs, reward, done, info)` with done = success, like LIBERO."""

    def __init__(self, suite, task_id: int, camera_size: int = 128, seed: int = 0):
        self.suite = get_suite(suite)
        self.task = self.suite.task(task_id)  # ValueError naming the suite's task range
        self.task_id, self.camera_size = task_id, camera_size
        self.language = self.task.language
        self.model_xml = scene_xml(self.suite.objects, self.suite.cabinet, camera_size)
        self.model = mujoco.MjModel.from_xml_string(self.model_xml)
        self.data = mujoco.MjData(self.model)
        self.objects = {o.name: o for o in self.suite.objects}
        self._body = {n: self.model.body(n).id for n in self.objects}
        self._qadr = {n: self.model.jnt_qposadr[self.model.joint(n).id] for n in self.objects}
        self._fingers = {self.model.body("finger_left").id, self.model.body("finger_right").id}
        self._drawer_adr = self.model.jnt_qposadr[self.model.joint("drawer").id] if self.suite.cabinet else None
        self._eef = self.model.site("eef").id
        mujoco.mj_forward(self.model, self.data)
        self._start_tracking()
        self.renderer = None
        if camera_size:
            try:
                self.renderer = mujoco.Renderer(self.model, camera_size, camera_size)
            except Exception as e:  # EGL missing or broken: the choice of backend is fixed at import
                raise RuntimeError(f"MuJoCo offscreen rendering failed with MUJOCO_GL="
                                   f"{os.environ.get('MUJOCO_GL')!r}: {e}. Run with MUJOCO_GL=osmesa "
                                   f"(needs libosmesa6) or pass camera_size=0 to disable cameras.") from e
        self.seed(seed)

    def seed(self, seed: int):
        self.rng = np.random.default_rng(seed)

    @property
    def init_states(self) -> np.ndarray:  # (50, D), LIBERO's task_suite.get_task_init_states(task_id)
        return self.suite.get_task_init_states(self.task_id)

    # --- state -----------------------------------------------------------------------------
    def get_state(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, self.data.qvel])

    def reset(self) -> dict:
        """A random one of the task's 50 initial states (LIBERO then calls set_init_state)."""
        return self.set_init_state(int(self.rng.integers(NUM_INIT_STATES)))

    def set_val_state(self, i: int) -> dict:
        """Validation start state i (evaluate.py --init-states val): Suite.get_init_state(..., "val")."""
        return self.set_init_state(self.suite.get_init_state(self.task_id, i, "val"))

    def set_train_state(self, i: int) -> dict:
        """Demo attempt i's start state (evaluate.py --init-states train): Suite.get_init_state(..., "train"),
        where `python -m envs.mini generate` starts attempt i; a diagnostic, not a result."""
        return self.set_init_state(self.suite.get_init_state(self.task_id, i, "train"))

    def set_init_state(self, state) -> dict:
        """`state`: an index into the 50 init states, or a flattened [qpos, qvel] vector like LIBERO's."""
        if np.isscalar(state) and float(state) == int(state):
            state = self.suite.get_init_state(self.task_id, int(state))
        state = np.asarray(state, float).ravel()
        nq, nv = self.model.nq, self.model.nv
        if state.shape != (nq + nv,):
            raise ValueError(f"{self.suite.name}: init state must have {nq + nv} values (qpos {nq} + qvel {nv}), "
                             f"got shape {state.shape}")
        mujoco.mj_resetData(self.model, self.data)  # also clears the solver warm start -> deterministic
        self.data.qpos[:], self.data.qvel[:] = state[:nq], state[nq:]
        self.data.ctrl[:4] = self.data.qpos[:4]
        self.data.ctrl[4:6] = (FINGER_OPEN, -FINGER_OPEN)
        mujoco.mj_forward(self.model, self.data)
        self._start_tracking()
        return self._obs()

    def _start_tracking(self):
        """Objects' heights now, from which failure_mode() measures how far each was lifted."""
        self._rest_z = {n: self.body_pos(n)[2] for n in self.objects}
        self._max_rise = dict.fromkeys(self.objects, 0.0)

    # --- stepping ----------------------------------------------------------------------------
    def step(self, action, render: bool = True):
        """One control step. `render=False`: no camera images in the observation (physics only)."""
        a = check_action(action)
        a = np.clip(a, -1.0, 1.0)
        q = self.data.qpos
        lo, hi = self.model.jnt_range[:4, 0], self.model.jnt_range[:4, 1]
        target = q[:4] + np.concatenate([MAX_DELTA_POS * a[:3], [MAX_DELTA_ROT * a[5]]])  # yaw only
        self.data.ctrl[:4] = np.clip(target, lo, hi)
        width = FINGER_OPEN * (1.0 - a[6]) / 2.0  # -1 -> open, +1 -> closed
        self.data.ctrl[4:6] = (width, -width)
        mujoco.mj_step(self.model, self.data, nstep=SUBSTEPS)
        pos = {n: self.body_pos(n) for n in self.objects}
        for n, p in pos.items():  # highest rise of each object since the init state (failure_mode)
            self._max_rise[n] = max(self._max_rise[n], p[2] - self._rest_z[n])
        success = self.check_success()
        info = {"success": success, "object_pos": pos}
        if self._drawer_adr is not None:
            info["drawer_q"] = self.drawer_q()
        return self._obs(render), float(success), success, info

    def render(self, camera: str) -> np.ndarray:
        self.renderer.update_scene(self.data, camera=camera)
        return self.renderer.render()[::-1, ::-1]  # (H, W, 3) upside down, as LIBERO's env returns it

    def _obs(self, render: bool = True) -> dict:
        pos = self.eef_pos()
        obs = {"robot0_eef_pos": pos, "robot0_eef_quat": _quat_xyzw(self.data.site_xmat[self._eef]),
               "robot0_gripper_qpos": self.data.qpos[4:6].copy(),
               "robot0_joint_pos": self.data.qpos[:4].copy()}
        if self.renderer is not None and render:
            obs["agentview_image"] = self.render("agentview")
            obs["robot0_eye_in_hand_image"] = self.render("robot0_eye_in_hand")
        return obs

    def close(self):
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None

    # --- privileged state and the goal predicate --------------------------------------------
    def eef_pos(self) -> np.ndarray:
        return self.data.site_xpos[self._eef].copy()

    def hand_yaw(self) -> float:
        return float(self.data.qpos[3])

    def body_pos(self, name) -> np.ndarray:
        return self.data.xpos[self._body[name]].copy()

    def body_yaw(self, name) -> float:
        w, x, y, z = self.data.qpos[self._qadr[name] + 3:self._qadr[name] + 7]
        return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))

    def drawer_q(self) -> float:
        return float(self.data.qpos[self._drawer_adr])

    def touching_fingers(self, name) -> bool:
        b = self._body[name]
        for c in self.data.contact[:self.data.ncon]:
            b1, b2 = self.model.geom_bodyid[c.geom1], self.model.geom_bodyid[c.geom2]
            if (b1 == b and b2 in self._fingers) or (b2 == b and b1 in self._fingers):
                return True
        return False

    def _in_container(self, name, container) -> tuple[bool, float]:
        """(centre of `name` inside `container`'s footprint, its height above the support surface)."""
        c = self.objects[container]
        rel = self.body_pos(name) - self.body_pos(container)
        mat = self.data.xmat[self._body[container]].reshape(3, 3)
        rel = mat.T @ rel  # (3,) in the container's frame
        inside = (max(abs(rel[0]), abs(rel[1])) if c.kind == "basket" else math.hypot(rel[0], rel[1])) < c.inner
        return bool(inside), float(rel[2] - c.surface)

    def placed(self, name, container) -> bool:
        """`name` rests in/on `container`: inside its footprint, on its support surface, not held."""
        inside, height = self._in_container(name, container)
        return bool(inside and -0.01 < height < 0.02 and not self.touching_fingers(name))

    def goal_met(self, skill) -> bool:
        kind = skill[0]
        if kind == "pick_place":
            return self.placed(skill[1], skill[2])
        if kind == "push":
            return bool(self.body_pos(skill[1])[0] > FRONT_X)
        if kind == "open":
            return self.drawer_q() > 0.09
        if kind == "close":
            return self.drawer_q() < 0.01
        raise ValueError(f"unknown skill {kind!r}")

    def plan_met(self, plan) -> bool:
        return all(self.goal_met(s) for s in plan)

    def check_success(self) -> bool:
        return self.plan_met(self.task.plan)

    def tasks_done(self) -> list[int]:
        """Ids of this suite's tasks whose goal holds now (a diagnostic: which task a failed rollout
        did instead, e.g. the red block placed when the bowl was asked for). Not part of LIBERO's API."""
        return [t.index for t in self.suite.tasks if self.plan_met(t.plan)]

    def failure_mode(self) -> str | None:
        """Why this task's goal does not hold now (None when it does) — a diagnostic for a rollout that
        ran out of time, not part of LIBERO's API. The first unmet step of the task's plan names it; for
        pick-and-place, what happened to the object since the init state (one of FAILURE_MODES)."""
        unmet = [s for s in self.task.plan if not self.goal_met(s)]
        if not unmet:
            return None
        kind, *args = unmet[0]
        if kind != "pick_place":
            return {"open": "drawer_not_opened", "close": "drawer_not_closed", "push": "not_pushed"}[kind]
        name, container = args[:2]
        if self._max_rise[name] < LIFTED:
            return "never_lifted"
        over = self._in_container(name, container)[0]
        if self.touching_fingers(name):
            return "held_over_goal" if over else "held_elsewhere"
        return "let_go_over_goal" if over else "let_go_elsewhere"


# MiniEnv.failure_mode(): an object counts as lifted once it rose this far (m) above its initial height.
LIFTED = 0.03
FAILURE_MODES = {  # failure_mode() -> what it means (docs/results.md, "Where the 66% policy fails")
    "never_lifted": "the object to place never rose 3 cm",
    "held_over_goal": "still held at the time limit, over the goal",
    "held_elsewhere": "still held at the time limit, not over the goal",
    "let_go_over_goal": "released over the goal but not resting on it",
    "let_go_elsewhere": "released away from the goal",
    "drawer_not_opened": "the drawer is not open", "drawer_not_closed": "the drawer is not closed",
    "not_pushed": "the object is not at the front"}


def make_env(suite, task_id: int, camera_size: int = 128, seed: int = 0) -> MiniEnv:
    return MiniEnv(suite, task_id, camera_size=camera_size, seed=seed)
