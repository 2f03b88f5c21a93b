"""LIBERO's suites and environments behind envs.common's interface: `get_suite` over LIBERO's benchmark
(task order 0), `LiberoEnv` over its OffScreenRenderEnv, and the seed streams of the start states."""
from __future__ import annotations

import contextlib
import gc
import io
import os
import zlib
from dataclasses import dataclass, field

import numpy as np

from envs import common
from envs.common import NUM_INIT_STATES, check_action
from envs.libero.install import _installed, _libero

SUITE_MAX_STEPS = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520,
                   "libero_90": 400}  # the literature's evaluation budgets (SPEC Sec. 3)
STANDARD_SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10")  # --suite all
SHORT_NAMES = {"spatial": "libero_spatial", "object": "libero_object", "goal": "libero_goal",
               "10": "libero_10", "long": "libero_10", "90": "libero_90"}
# Std (rad) of the Gaussian noise on the arm's 7 joints in a fresh placement (LiberoEnv.place): robosuite's
# "default" initialization noise, the default of LIBERO's task classes, which its official init states carry
# (measured over the 500 states of each standard suite: per-joint std 0.018-0.022 around init_qpos, mean
# within 0.003; experiments/init_pose.py). LIBERO's ControlEnv / OffScreenRenderEnv turn it off
# (initialization_noise=None), and so does LiberoEnv's robosuite env, so evaluation stays LIBERO's: robosuite
# would draw the noise from numpy's global generator (the fixtures' stream) and make it the controller's
# nullspace posture. place() draws it from its own generator and starts the arm there as set_init_state starts
# an official init state.
INIT_NOISE = 0.02

# ----------------------------------------------------------------------------------------------
# Suites: envs.common's interface over LIBERO's benchmark

@dataclass(kw_only=True)
class Task(common.Task):
    # name: LIBERO's task (file) name, e.g. pick_up_the_alphabet_soup_and_place_it_in_the_basket;
    # language: the instruction VLA codebases use (the name with spaces, scene prefix dropped)
    bddl_file: str  # absolute path
    init_states_file: str


@dataclass
class Suite(common.Suite):
    _init_cache: dict = field(default_factory=dict, repr=False)

    def get_task_init_states(self, task_id: int) -> np.ndarray:
        """(50, D) LIBERO's official init states of the task (flattened MuJoCo states: time, qpos, qvel)."""
        if task_id not in self._init_cache:
            with contextlib.redirect_stdout(io.StringIO()):
                bench = _libero()["benchmark"].get_benchmark_dict()[self.name]()
            self._init_cache[task_id] = np.asarray(bench.get_task_init_states(task_id))
        return self._init_cache[task_id]


_SUITES: dict[str, Suite] = {}


def suite_name(name) -> str:
    key = SHORT_NAMES.get(str(name), str(name))
    if key not in SUITE_MAX_STEPS:
        raise ValueError(f"unknown LIBERO suite {name!r}; expected one of {', '.join(SUITE_MAX_STEPS)} "
                         f"(or the short forms {'|'.join(SHORT_NAMES)})")
    return key


def get_suite(name) -> Suite:
    """LIBERO's suite `name` (task order 0, LIBERO's natural order, as every VLA codebase evaluates)."""
    if isinstance(name, Suite):
        return name
    key = suite_name(name)
    if key not in _SUITES:
        lib = _libero()
        with contextlib.redirect_stdout(io.StringIO()):
            bench = lib["benchmark"].get_benchmark_dict()[key](task_order_index=0)
        root = lib["get_libero_path"]("bddl_files")
        tasks = [Task(i, t.language, t.name, bddl_file=os.path.join(root, t.problem_folder, t.bddl_file),
                      init_states_file=t.init_states_file) for i, t in enumerate(bench.tasks)]
        _SUITES[key] = Suite(key, SUITE_MAX_STEPS[key], tasks)
    return _SUITES[key]


def suite_names(arg: str) -> list[str]:
    return list(STANDARD_SUITES) if arg == "all" else [suite_name(s) for s in arg.split(",")]


def train_seed(suite: str, task_id: int, attempt: int, seed: int = 0) -> int:
    """The placement seed of demo attempt `attempt`: a stream apart from the 50 evaluation states."""
    return zlib.crc32(f"train/{suite}/{task_id}/{attempt}/{seed}".encode())


def init_seed(suite: str, task_id: int, i: int) -> int:
    """The seed of the fixtures' draw when official init state i starts (set_init_state(i)): robosuite places the
    fixtures (cabinet, stove, rack: up to ~2 cm apart between draws) at every reset from numpy's global
    generator, which the flattened init state does not pin."""
    return zlib.crc32(f"test/{suite}/{task_id}/{i}".encode())


def val_seed(suite: str, task_id: int, i: int) -> int:
    """The placement seed of validation start state i: apart from train_seed's stream and the init files."""
    return zlib.crc32(f"val/{suite}/{task_id}/{i}".encode())


# ----------------------------------------------------------------------------------------------
# Environment: LIBERO's OffScreenRenderEnv behind envs.common's protocol

class LiberoEnv:
    """One task of a LIBERO suite. `step(action) -> (obs, reward, done, info)` with done = success."""

    def __init__(self, suite, task_id: int, camera_size: int = 128, seed: int = 0, init_noise: float = INIT_NOISE):
        self.suite = get_suite(suite)
        self.task = self.suite.task(task_id)  # ValueError naming the suite's task range
        self.task_id, self.camera_size, self.language = task_id, camera_size, self.task.language
        self.init_noise = float(init_noise)  # place()'s arm noise; robosuite's own stays off, as in LIBERO
        lib = _libero()
        # robosuite places the fixtures (cabinets, stoves, ...) at construction and at every reset
        # by drawing from numpy's global generator; they are not part of the flattened state
        np.random.seed(seed)
        with contextlib.redirect_stdout(io.StringIO()):
            if camera_size:  # what LIBERO's evaluation scripts build
                self.env = lib["OffScreenRenderEnv"](bddl_file_name=self.task.bddl_file,
                                                     camera_heights=camera_size, camera_widths=camera_size)
            else:  # physics only: no renderer, no image observations
                self.env = lib["ControlEnv"](bddl_file_name=self.task.bddl_file, use_camera_obs=False,
                                             has_offscreen_renderer=False)
        self._hide_sites()
        self._fresh = True  # robosuite's internal state (step counter, gripper command) is as reset left it
        self.seed(seed)

    def _hide_sites(self):
        """robosuite's reset() hides the sites it draws (the green gripper-site marker, object sites); the
        constructor leaves them on, so an env that starts from set_init_state without a reset would show the
        policy a marker no demonstration (nor LIBERO's evaluation) shows: hide them here, as reset does."""
        inner = self.env.env
        inner.visualize(vis_settings={vis: False for vis in inner._visualizations})

    # --- LIBERO's protocol --------------------------------------------------------------------
    def seed(self, seed: int):
        """Seeds LIBERO's placement samplers (they draw from numpy's global generator)."""
        self.env.seed(int(seed))

    def reset(self) -> dict:
        """A fresh random placement from LIBERO's samplers (robosuite's hard reset: 2-4 s), the arm at
        init_qpos exactly (LIBERO's env wrappers turn robosuite's noise off); place() adds the arm noise."""
        obs = self.env.reset()
        self._fresh = True
        self._track_start()
        return obs

    def reset_from_xml(self, model_xml: str) -> dict:
        """Rebuild the scene from a recorded MJCF (a demo's `model_file`): the fixtures' placements are
        part of the model, not of the flattened state, so a faithful replay loads both."""
        self.env.reset_from_xml_string(model_xml)
        self._hide_sites()
        self._fresh = True
        self._track_start()
        return self.env.env._get_observations(force_update=True)

    def set_init_state(self, state) -> dict:
        """`state`: an index into the task's 50 official init states, or a flattened MuJoCo state.
        Resets first when the env has stepped since its last reset (as LIBERO's evaluation does), so
        the robot's controller and gripper command start from scratch in every episode; an index always
        resets, with the fixtures' draw seeded by the episode (init_seed): an episode's start depends on
        nothing run before it in the same env."""
        index = np.ndim(state) == 0 and float(state) == int(state)
        if index:
            i = int(state)
            if not 0 <= i < NUM_INIT_STATES:
                raise IndexError(f"{self.suite.name}: init state ids are 0..{NUM_INIT_STATES - 1}, got {i}")
            state = self.suite.get_task_init_states(self.task_id)[i]
        state = np.asarray(state, float).ravel()
        if state.shape != self.get_state().shape:
            raise ValueError(f"{self.suite.name} task {self.task_id}: init state must have "
                             f"{self.get_state().size} values, got shape {state.shape}")
        if index:
            # Deviation [libero-fixture-seed]: LIBERO's evaluation draws each episode's fixture placement from
            # the global generator as the episodes before it left it; here the draw is seeded by the episode
            # (init_seed), so an episode plays the same alone, resumed, or after any others (same distribution)
            self.seed(init_seed(self.suite.name, self.task_id, i))
            self.reset()
        elif not self._fresh:
            self.reset()
        self._fresh = False
        # MuJoCo's solver starts each step from the last one's accelerations (qacc_warmstart), which the
        # flattened state does not hold: cleared, so the episode does not inherit the previous one's
        self.sim.data.qacc_warmstart[:] = 0
        obs = self.env.set_init_state(state)
        self._track_start()
        return obs

    def place(self, seed: int) -> dict:
        """A fresh start state under `seed`: LIBERO's placement samplers (reset), then the arm's joints moved
        to init_qpos + N(0, init_noise²) by a generator of their own, and the episode started from that state
        the way set_init_state starts an official init state (same controller reference, same settling).
        The official init states carry this noise (INIT_NOISE); without it every start has one arm pose."""
        self.seed(seed)
        self.reset()
        state = self.get_state()                                           # (1 + nq + nv,) time, qpos, qvel
        robot = self.env.env.robots[0]
        arm = 1 + np.asarray(robot._ref_joint_pos_indexes)                 # the arm's 7 joints in the state
        noise = np.random.default_rng([int(seed), 7]).normal(0.0, self.init_noise, arm.size)
        state[arm] = np.asarray(robot.init_qpos, float) + noise
        return self.set_init_state(state)

    def set_val_state(self, i: int) -> dict:
        """Validation start state i (evaluate.py --init-states val): place(val_seed(suite, task, i)), a stream
        apart from the demonstrations' (train_seed) and from the 50 official init states, which stay the test
        states. The arm starts with the official states' joint noise (validation states before 2026-12-04
        had none)."""
        return self.place(val_seed(self.suite.name, self.task_id, i))

    def set_train_state(self, i: int) -> dict:
        """Demo attempt i's start state (evaluate.py --init-states train): place(train_seed(suite, task, i)), the
        placement `python -m envs.libero generate` (seed 0) recorded attempt i from. Where every attempt of a
        task succeeded, state i is demo i's first state: a diagnostic of closed-loop success on the states the
        policy was trained from, never a result to report beside the test states."""
        return self.place(train_seed(self.suite.name, self.task_id, i))

    def step(self, action, render: bool = True):
        """LIBERO's step. `render=False`: the cameras are skipped for this step and the observation holds no
        images (for a caller that will not read them: a policy between re-plans). robosuite samples each camera
        inside the step on its own timer; the gate below keeps that timer and only skips the drawing, so the
        images of a rendered step are bit-identical to those of an env that renders every step."""
        a = check_action(action)
        self._fresh = False
        if getattr(self, "_grasp", 0) is None and a[-1] >= FIRM_CLOSE and self._max_rise:  # the first firm close
            self._grasp = self.eef_pos() - self.body_pos(next(iter(self._max_rise)))  # (3,) m, world frame
        self._gate_cameras(render)
        try:
            obs, reward, done, info = self.env.step(a)
        finally:
            self._render = True  # every other path (reset, set_init_state) draws
        if not render:
            obs = {k: v for k, v in obs.items() if k not in self._last_image}
        self._t = getattr(self, "_t", 0) + 1
        for name in getattr(self, "_max_rise", {}) if self._t > SETTLED else ():  # rise above the lowest
            z = self.body_pos(name)[2]                                            # height once at rest
            self._z_low[name] = min(self._z_low.get(name, z), z)
            self._max_rise[name] = max(self._max_rise[name], z - self._z_low[name])
        return obs, float(reward), bool(done), info

    def _gate_cameras(self, render: bool):
        """Wrap each camera observable's sensor (robosuite rebuilds them at every hard reset) so that it draws
        only while `self._render`; skipped, it returns its last image, which step() drops from the observation."""
        self._render = render
        self._last_image = getattr(self, "_last_image", {})  # camera observable name -> its last drawn image
        for name, o in self.env.env._observables.items():
            if o.modality == "image" and not getattr(o._sensor, "gated", False):
                def gated(obs_cache, draw=o._sensor, name=name):
                    if self._render or name not in self._last_image:
                        self._last_image[name] = draw(obs_cache)
                    return self._last_image[name]
                gated.gated, gated.__modality__ = True, o._sensor.__modality__
                o._sensor = gated  # robosuite's set_sensor would draw once to check it: assigned directly

    def get_state(self) -> np.ndarray:
        return self.env.get_sim_state()

    # --- diagnostics: why a rollout failed (evaluate.py's failure_mode column) ---------------
    def _track_start(self):
        """A new episode for failure_mode's "never lifted": the objects the goal places, how far each has
        risen above its lowest height once the scene is at rest (step SETTLED on), not since the state as
        set: LIBERO's init states place objects a few cm off their resting height, and in the first steps
        the tall ones (libero_object's bottles) bounce 4-7 cm above where they come to rest, which counted
        as a lift until 2026-12-07 (their never-lifted episodes were labelled "let go elsewhere")."""
        placed = [(p[1], p[2]) for p in self.goal() if p[0] in ("on", "in")]   # (object, where it goes)
        self._z_low, self._max_rise, self._t = {}, {name: 0.0 for name, _ in placed}, 0
        self._placement = placed[0] if placed else None  # goal_offset(): the first placement
        self._grasp = None  # grasp_offset(): the hand relative to the first object to place, at the first close

    def _subtree(self, body: str) -> set:
        m = self.sim.model._model
        root = self.sim.model.body_name2id(body)
        out = {root}
        for b in range(m.nbody):
            p = b
            while p and p != root:
                p = m.body_parentid[p]
            if p == root:
                out.add(b)
        return out

    def held(self, name: str) -> bool:
        """Both fingers touch object `name` (a grasp), from MuJoCo's contacts."""
        m, d = self.sim.model._model, self.sim.data._data
        obj = self._subtree(self.env.env.get_object(name).root_body)
        sides = set()
        for c in d.contact[:d.ncon]:
            for a, b in ((c.geom1, c.geom2), (c.geom2, c.geom1)):
                if m.geom_bodyid[b] in obj:
                    other = self.sim.model.body_id2name(int(m.geom_bodyid[a])) or ""
                    if other.startswith("gripper0_") and "finger" in other:
                        sides.add("left" if ("left" in other or "joint1" in other) else "right")
        return sides == {"left", "right"}

    def over_goal(self, name: str, target: str, margin: float = 0.01) -> bool:
        """The centre of `name` lies over the footprint of `target` (an object, or the object whose region
        it is: basket_1_contain_region -> basket_1), within `margin`; a bare site: within 5 cm of it."""
        e = self.env.env
        owner = max((o for o in e.obj_body_id if target == o or target.startswith(o + "_")), key=len, default=None)
        xy = self.body_pos(name)[:2]
        if owner is None or owner == name:
            return bool(np.linalg.norm(xy - self.body_pos(target)[:2]) < 0.05)
        corners = self.object_corners(owner)[:, :2]
        return bool(np.all(corners.min(0) - margin <= xy) and np.all(xy <= corners.max(0) + margin))

    def failure_mode(self) -> str | None:
        """Why the goal does not hold now (None when it does), one of FAILURE_MODES: the first unmet predicate
        in the order a plan reaches them (opening/switching on, placements, closing); for a placement, what
        happened to the object since the episode's start. A diagnostic, not part of LIBERO's API."""
        rank = {"open": 0, "turnon": 0, "in": 1, "on": 1, "close": 2, "turnoff": 2}
        unmet = sorted((p for p in self.goal() if not self.holds(p)), key=lambda p: rank.get(p[0], 1))
        if not unmet:
            return None
        kind, *args = unmet[0]
        if kind not in ("on", "in"):
            return {"open": "not_opened", "close": "not_closed", "turnon": "not_turned_on",
                    "turnoff": "not_turned_off"}.get(kind, f"not_{kind}")
        name, target = args[:2]
        if self._max_rise.get(name, 0.0) < LIFTED:
            return "never_lifted"
        over = self.over_goal(name, target)
        if self.held(name):
            return "held_over_goal" if over else "held_elsewhere"
        return "let_go_over_goal" if over else "let_go_elsewhere"

    def grasp_offset(self) -> list[float] | None:
        """Where the hand was when the episode first commanded the gripper firmly closed (>= FIRM_CLOSE):
        the grip site minus the body position of the first object the goal places, (dx, dy, dz) in m (world
        frame); None when the gripper was never firmly closed or the goal places nothing. For a "never
        lifted" failure it tells a grasp that missed by a centimetre from one that closed far from the
        object. A diagnostic, not LIBERO's."""
        g = getattr(self, "_grasp", None)
        return None if g is None else [round(float(v), 4) for v in g]

    def goal_offset(self) -> list[float] | None:
        """Where the first object the goal places is now, relative to where it goes: its body position minus
        the target's (a region site's centre, e.g. basket_1_contain_region, or the target object's body),
        (dx, dy, dz) in m (world frame); None when the goal places nothing. Read at an episode's end, it
        tells a "let go elsewhere" that dropped the object beside the basket from one that dropped it on the
        way. A diagnostic, not LIBERO's."""
        where = getattr(self, "_placement", None)
        if where is None:
            return None
        return [round(float(v), 4) for v in self.body_pos(where[0]) - self.body_pos(where[1])]

    def check_success(self) -> bool:
        return bool(self.env.check_success())

    def close(self):
        if getattr(self, "env", None) is not None:
            self.env.close()
            self.env = None
            gc.collect()  # free the EGL context now, not during interpreter shutdown (noisy errors)

    # --- privileged state (for the scripted expert) ------------------------------------------
    @property
    def sim(self):
        return self.env.sim

    def goal(self) -> list:
        """The task's goal predicates from its BDDL file, e.g. [['in', 'milk_1', 'basket_1_contain_region']]."""
        return self.env.env.parsed_problem["goal_state"]

    def body_pos(self, name) -> np.ndarray:
        """World position of an object's body (or of a site such as basket_1_contain_region)."""
        e = self.env.env
        if name in e.obj_body_id:
            return self.sim.data.body_xpos[e.obj_body_id[name]].copy()
        return self.sim.data.get_site_xpos(name).copy()

    def holds(self, predicate) -> bool:
        """Whether one goal predicate (['open', 'wooden_cabinet_1_top_region'], ...) holds, as LIBERO
        evaluates it for check_success."""
        return bool(self.env.env._eval_predicate(list(predicate)))

    def joint_of(self, name) -> str:
        """The joint LIBERO's open/close/turnon predicates read for `name`: a region's own joint (a drawer's
        slide), else the object's first (a stove's knob, a microwave's door)."""
        e = self.env.env
        site = e.object_sites_dict.get(name)
        joints = site.joints if site is not None and site.joints else e.get_object(name).joints
        if not joints:
            raise ValueError(f"{self.suite.name} task {self.task_id}: {name} has no joint")
        return joints[0]

    def joint_qpos(self, joint: str) -> float:
        return float(self.sim.data.qpos[self.sim.model.get_joint_qpos_addr(joint)])

    def joint_frame(self, joint: str) -> tuple[np.ndarray, np.ndarray, str]:
        """-> (world anchor (3,), world axis (3,), the body the joint moves)."""
        m, d = self.sim.model._model, self.sim.data._data
        j = self.sim.model.joint_name2id(joint)
        return d.xanchor[j].copy(), d.xaxis[j].copy(), self.sim.model.body_id2name(int(m.jnt_bodyid[j]))

    def object_corners(self, name) -> np.ndarray:
        """(8 k, 3) world corners of the collision geoms' bounding boxes of object `name`."""
        return self.body_corners(self.env.env.get_object(name).root_body)

    def body_corners(self, body: str) -> np.ndarray:
        """(8 k, 3) world corners of the collision geoms' bounding boxes of `body` and its subtree."""
        m, d = self.sim.model._model, self.sim.data._data
        bodies = self._subtree(body)
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
        pts = []
        for g in range(m.ngeom):
            if m.geom_bodyid[g] in bodies and (m.geom_contype[g] or m.geom_conaffinity[g]):
                R = d.geom_xmat[g].reshape(3, 3)
                local = m.geom_aabb[g, :3] + signs * m.geom_aabb[g, 3:]  # (8, 3) in the geom frame
                pts.append(d.geom_xpos[g] + local @ R.T)
        return np.concatenate(pts)

    def top_at(self, name: str, xy, margin: float = 0.01) -> float | None:
        """The highest top of object `name`'s collision geoms whose footprint covers the point `xy` (within
        `margin`), e.g. a stove's burner plate under its cook region rather than its knob; None if none."""
        corners = self.object_corners(name).reshape(-1, 8, 3)   # one box per geom
        lo, hi = corners[:, :, :2].min(1) - margin, corners[:, :, :2].max(1) + margin
        over = np.all((lo <= np.asarray(xy)) & (np.asarray(xy) <= hi), axis=1)
        return float(corners[over, :, 2].max()) if over.any() else None

    def eef_pos(self) -> np.ndarray:
        return self.sim.data.get_site_xpos("gripper0_grip_site").copy()

    def eef_mat(self) -> np.ndarray:
        return self.sim.data.get_site_xmat("gripper0_grip_site").reshape(3, 3).copy()

    def finger_axis(self) -> np.ndarray:
        """Unit vector from the left to the right finger (the direction the gripper closes along)."""
        left = self.sim.data.get_body_xpos("gripper0_leftfinger")
        right = self.sim.data.get_body_xpos("gripper0_rightfinger")
        v = right - left
        return v / (np.linalg.norm(v) + 1e-9)

    def finger_bottom(self) -> float:
        """Height of the lowest point of the finger collision geoms below the grip site (m, > 0)."""
        m, d = self.sim.model._model, self.sim.data._data
        z = []
        for name in ("gripper0_finger1_collision", "gripper0_finger2_collision",
                     "gripper0_finger1_pad_collision", "gripper0_finger2_pad_collision"):
            g = self.sim.model.geom_name2id(name)
            R = d.geom_xmat[g].reshape(3, 3)
            ext = np.abs(R) @ m.geom_aabb[g, 3:]
            z.append(d.geom_xpos[g][2] + (R @ m.geom_aabb[g, :3])[2] - ext[2])
        return float(self.eef_pos()[2] - min(z))


# LiberoEnv.failure_mode(): an object counts as lifted once it rose this far (m) above its resting height,
# measured from step SETTLED of an episode on (LIBERO's evaluation waits 10 no-op steps for the objects to
# settle, evaluate.SETTLE_STEPS; they rest by step 7 in libero_object's init states).
LIFTED = 0.03
SETTLED = 10
# grasp_offset() reads the hand at the first close command of at least this value. robosuite's Panda gripper
# follows only the command's sign, but the demos close with +1, and a decoded chunk's uncertain gripper values
# lie between: the spatial 20-demo policy's first chunk commands +0.1..+0.3 at step 11 (before 2026-12-07 that
# weak close, 28 cm above the bowl, was what every episode's grasp_offset recorded; docs/results.md)
FIRM_CLOSE = 0.5
FAILURE_MODES = {  # failure_mode() -> what it means (the embedded benchmark's names where they apply)
    "never_lifted": "the object to place never rose 3 cm",
    "held_over_goal": "still held at the time limit, over the goal",
    "held_elsewhere": "still held at the time limit, not over the goal",
    "let_go_over_goal": "released over the goal but the goal predicate does not hold",
    "let_go_elsewhere": "released away from the goal",
    "not_opened": "the drawer or door is not open", "not_closed": "the drawer or door is not closed",
    "not_turned_on": "the stove is not on", "not_turned_off": "the stove is not off"}


def make_env(suite, task_id: int, camera_size: int = 128, seed: int = 0, init_noise: float = INIT_NOISE) -> LiberoEnv:
    return LiberoEnv(suite, task_id, camera_size=camera_size, seed=seed, init_noise=init_noise)


def backend():
    """-> (suite names for 'all', get_suite, make_env(suite, task, camera_size)): evaluate.env_backend."""
    _installed()  # the install hint early, before any worker starts
    return list(STANDARD_SUITES), get_suite, lambda suite, task, size: LiberoEnv(suite, task, camera_size=size)
