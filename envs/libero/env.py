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


def val_seed(suite: str, task_id: int, i: int) -> int:
    """The placement seed of validation start state i: apart from train_seed's stream and the init files."""
    return zlib.crc32(f"val/{suite}/{task_id}/{i}".encode())


# ----------------------------------------------------------------------------------------------
# Environment: LIBERO's OffScreenRenderEnv behind envs.common's protocol

class LiberoEnv:
    """One task of a LIBERO suite. `step(action) -> (obs, reward, done, info)` with done = success."""

    def __init__(self, suite, task_id: int, camera_size: int = 128, seed: int = 0):
        self.suite = get_suite(suite)
        self.task = self.suite.task(task_id)  # ValueError naming the suite's task range
        self.task_id, self.camera_size, self.language = task_id, camera_size, self.task.language
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
        """A fresh random placement from LIBERO's samplers (robosuite's hard reset: 2-4 s)."""
        obs = self.env.reset()
        self._fresh = True
        return obs

    def reset_from_xml(self, model_xml: str) -> dict:
        """Rebuild the scene from a recorded MJCF (a demo's `model_file`): the fixtures' placements are
        part of the model, not of the flattened state, so a faithful replay loads both."""
        self.env.reset_from_xml_string(model_xml)
        self._hide_sites()
        self._fresh = True
        return self.env.env._get_observations(force_update=True)

    def set_init_state(self, state) -> dict:
        """`state`: an index into the task's 50 official init states, or a flattened MuJoCo state.
        Resets first when the env has stepped since its last reset (as LIBERO's evaluation does), so
        the robot's controller and gripper command start from scratch in every episode."""
        if np.isscalar(state) and float(state) == int(state):
            i = int(state)
            if not 0 <= i < NUM_INIT_STATES:
                raise IndexError(f"{self.suite.name}: init state ids are 0..{NUM_INIT_STATES - 1}, got {i}")
            state = self.suite.get_task_init_states(self.task_id)[i]
        state = np.asarray(state, float).ravel()
        if state.shape != self.get_state().shape:
            raise ValueError(f"{self.suite.name} task {self.task_id}: init state must have "
                             f"{self.get_state().size} values, got shape {state.shape}")
        if not self._fresh:
            self.reset()
        self._fresh = False
        return self.env.set_init_state(state)

    def set_val_state(self, i: int) -> dict:
        """Validation start state i (evaluate.py --init-states val): LIBERO's own placement samplers
        under the seed val_seed(suite, task, i), a stream apart from the demonstrations' (train_seed)
        and from the 50 official init states, which stay the test states."""
        self.seed(val_seed(self.suite.name, self.task_id, i))
        obs = self.reset()
        self._fresh = False
        return obs

    def step(self, action):
        a = check_action(action)
        self._fresh = False
        obs, reward, done, info = self.env.step(a)
        return obs, float(reward), bool(done), info

    def get_state(self) -> np.ndarray:
        return self.env.get_sim_state()

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
        root = self.sim.model.body_name2id(body)
        bodies = {root}
        for b in range(m.nbody):  # the object's subtree
            p = b
            while p and p != root:
                p = m.body_parentid[p]
            if p == root:
                bodies.add(b)
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


def make_env(suite, task_id: int, camera_size: int = 128, seed: int = 0) -> LiberoEnv:
    return LiberoEnv(suite, task_id, camera_size=camera_size, seed=seed)


def backend():
    """-> (suite names for 'all', get_suite, make_env(suite, task, camera_size)): evaluate.env_backend."""
    _installed()  # the install hint early, before any worker starts
    return list(STANDARD_SUITES), get_suite, lambda suite, task, size: LiberoEnv(suite, task, camera_size=size)
