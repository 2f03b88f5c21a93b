"""A small MuJoCo tabletop benchmark in LIBERO's image: four suites, LIBERO's control and observations.

The real LIBERO simulator costs ~0.125 s per rendered step on a CPU and needs a heavy install; this
module is the embedded stand-in that every stage and `evaluate.py` run on, through the same code paths
as real LIBERO (SPEC.md Sec. 3):

  * scene    a table, a floating parallel gripper (x/y/z slides + a yaw hinge driven by position
             servos, two finger slides), blocks, a can, bowls, a plate, a basket, a cabinet with a drawer.
  * control  LIBERO's 7-D action in [-1, 1] at 20 Hz: delta eef position (x 0.05 m, relative to the
             current pose like LIBERO's OSC), delta rotation (axis-angle, x 0.5 rad), gripper
             (-1 open, +1 close; values in between give a partly open gripper).
  * obs      agentview_image, robot0_eye_in_hand_image (H, W, 3) uint8 UPSIDE DOWN like LIBERO's env
             (evaluation code rotates them with img[::-1, ::-1]); robot0_eef_pos (3,), robot0_eef_quat
             (4,) xyzw, robot0_gripper_qpos (2,) (open ~ (0.055, -0.055)), robot0_joint_pos (4,).
  * suites   mini_spatial, mini_object, mini_goal, mini_long (LIBERO's four designs), 5 tasks each,
             a goal predicate per task and 50 seeded initial states (LIBERO's init files).
  * experts  scripted on privileged state with noise; demos go to the official HDF5 layout through
             data.write_task_file (images stored upside down, "opengl"). `--perturb` executes them
             with bursts of pushes and records their corrections (DART; `Disturbance`).

Deviations from LIBERO (a Panda arm in robosuite), each listed in the README:
  # Deviation [sim-gripper]: a floating gripper instead of a 7-DoF arm, so joint_states /
  #   robot0_joint_pos hold the 4 hand joints (x, y, z, yaw), not 7 arm joints.
  # Deviation [sim-yaw]: only the yaw component (action[5]) of the rotation is applied; roll and pitch
  #   are accepted and ignored (the gripper always points down).
  # Deviation [sim-state]: the state vector for set_init_state is [qpos, qvel] of this scene (LIBERO's
  #   also starts with the sim time).

Measured on the 2-core CPU box (see the report in the project notes): ~120-140 env steps/s per
process with both 128x128 cameras (~15-17x real LIBERO's 8 steps/s); expert success 50/50 init
states on every task; `generate --suite all --demos-per-task 2` in ~35 s with 2 workers.

Commands:
    python sim.py generate --suite all --demos-per-task 2 --out /tmp/d      # tiny dataset (~40 s)
    python sim.py generate --suite all --demos-per-task 50 --out data/mini  # LIBERO-sized (~15 min)
    python sim.py generate --suite goal --demos-per-task 100 --perturb 0.2 --out data/goal100p  # with corrections
    python sim.py success --suite all --inits 50                           # expert success table
    python sim.py show --suite goal --task 0 --out /tmp/open_drawer.gif     # GIF of an expert rollout
    python sim.py bench                                                    # steps/s, generation time
    python -m pytest tests/test_sim.py                                     # tests (~1 min)
MuJoCo renders offscreen with MUJOCO_GL=egl by default on Linux; MUJOCO_GL=osmesa is the fallback
where EGL is missing (set it before Python starts: the backend cannot change in a running process).
"""
from __future__ import annotations

import os
import sys

if sys.platform.startswith("linux"):
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must precede `import mujoco`

import argparse
import json
import math
import tempfile
import time
import zlib
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
import multiprocessing as mp

try:
    import mujoco
except (ImportError, AttributeError, RuntimeError) as e:  # a broken OpenGL backend fails at import time
    raise ImportError(f"importing mujoco failed with MUJOCO_GL={os.environ.get('MUJOCO_GL')!r} ({e!r}). "
                      f"Offscreen rendering needs EGL (libegl1) or OSMesa (libosmesa6, MUJOCO_GL=osmesa); "
                      f"MUJOCO_GL=disable gives physics only (camera_size=0)") from e
import numpy as np
from tqdm import tqdm

# Progress bars refresh every 30 s, not ten times a second, when written to a log file (data.progress_bar)
BAR_INTERVAL = ({} if "TQDM_MININTERVAL" in os.environ or sys.stderr.isatty()
                else {"mininterval": 30.0, "maxinterval": 30.0})

CONTROL_HZ = 20
TIMESTEP = 0.002
SUBSTEPS = round(1.0 / CONTROL_HZ / TIMESTEP)  # 25 physics steps per action
MAX_DELTA_POS = 0.05  # m per step at |action| = 1 (LIBERO's OSC scaling)
MAX_DELTA_ROT = 0.5   # rad per step at |action| = 1
EEF_OFFSET = 0.06     # eef site (between the fingertips) sits this far below the hand joint origin
FINGER_OPEN = 0.055   # finger slide travel (each side)
HOME = (-0.02, 0.0, 0.34)  # eef home position
FRONT_X = 0.10        # "front of the table": x beyond this line
NUM_INIT_STATES = 50


# ----------------------------------------------------------------------------------------------
# Scene: objects (origin at the bottom centre of each object) and the MJCF builder.
# Axes: +x toward the agentview camera ("front"), +y to the camera's right, +z up.

@dataclass
class Obj:
    name: str            # body name
    kind: str            # block | can | bowl | plate | basket
    rgba: str
    size: tuple          # block: half extents; can: (r, half h); bowl: (R, H); plate: (R, half h); basket: (half inner, H)
    radius: float        # footprint radius for layout sampling
    grasp_h: float = 0.0 # eef height above the object's bottom when grasping
    surface: float = 0.0 # top of the support surface above the object's bottom (containers)
    inner: float = 0.0   # containment radius (bowl, plate) or half side (basket)


def _block(name, rgba, hx, hy, hz):
    return Obj(name, "block", rgba, (hx, hy, hz), math.hypot(hx, hy), grasp_h=min(2 * hz - 0.008, hz + 0.012))


def _can(name, rgba, r, hh):
    return Obj(name, "can", rgba, (r, hh), r, grasp_h=min(2 * hh - 0.008, hh + 0.012))


BOWL = dict(size=(0.045, 0.032), radius=0.045, grasp_h=0.016, surface=0.006, inner=0.036)
PLATE = dict(size=(0.07, 0.008), radius=0.07, surface=0.016, inner=0.052)
BASKET = dict(size=(0.085, 0.065), radius=0.13, surface=0.006, inner=0.07)


def obj_xml(o: Obj) -> str:
    g = f'rgba="{o.rgba}"'
    if o.kind == "block":
        hx, hy, hz = o.size
        geoms = [f'<geom type="box" size="{hx} {hy} {hz}" pos="0 0 {hz}" mass="0.05" {g}/>']
    elif o.kind == "can":
        r, hh = o.size
        geoms = [f'<geom type="cylinder" size="{r} {hh}" pos="0 0 {hh}" mass="0.06" {g}/>']
    elif o.kind == "plate":
        r, hh = o.size
        geoms = [f'<geom type="cylinder" size="{r} {hh}" pos="0 0 {hh}" mass="0.1" {g}/>']
    elif o.kind == "bowl":
        R, H = o.size
        n, t = 12, 0.004
        geoms = [f'<geom type="cylinder" size="{R - t} 0.003" pos="0 0 0.003" mass="0.04" {g}/>']
        for k in range(n):  # a ring of wall boxes
            a = 2 * math.pi * k / n
            geoms.append(f'<geom type="box" size="{t / 2} {R * math.sin(math.pi / n) * 1.1:.4f} {H / 2}" '
                         f'pos="{(R - t / 2) * math.cos(a):.4f} {(R - t / 2) * math.sin(a):.4f} {H / 2}" '
                         f'euler="0 0 {a:.4f}" mass="0.004" {g}/>')
    elif o.kind == "basket":
        a, H = o.size
        t = 0.004
        geoms = [f'<geom type="box" size="{a + t} {a + t} 0.003" pos="0 0 0.003" mass="0.6" {g}/>']
        for sx, sy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            size = f"{t} {a + 2 * t} {H / 2}" if sx else f"{a + 2 * t} {t} {H / 2}"
            geoms.append(f'<geom type="box" size="{size}" pos="{sx * (a + t)} {sy * (a + t)} {H / 2}" '
                         f'mass="0.1" {g}/>')
    else:
        raise ValueError(f"unknown object kind {o.kind!r}")
    return (f'<body name="{o.name}" pos="0 0 0"><freejoint name="{o.name}"/>'
            + "".join(geoms) + "</body>")


CABINET = dict(x=-0.30, y=0.25, depth=0.16, width=0.18, height=0.14, travel=0.13)
CAB_FRONT = CABINET["x"] + CABINET["depth"] / 2   # x of the closed drawer's front face
HANDLE_Z = CABINET["height"] / 2
HANDLE_GAP = 0.039   # free space between the drawer face and the handle bar
HANDLE_OUT = 0.051   # outer face of the handle bar, measured from the drawer face


def cabinet_xml() -> str:
    c = CABINET
    D, W, H, t = c["depth"], c["width"], c["height"], 0.008
    wood, dark = 'rgba=".55 .35 .2 1"', 'rgba=".3 .3 .32 1"'
    shell = [f'<geom type="box" size="{D / 2} {W / 2} {t / 2}" pos="0 0 {H - t / 2}" {wood}/>',
             f'<geom type="box" size="{D / 2} {W / 2} {t / 2}" pos="0 0 {t / 2}" {wood}/>',
             f'<geom type="box" size="{t / 2} {W / 2} {H / 2}" pos="{-D / 2 + t / 2} 0 {H / 2}" {wood}/>']
    shell += [f'<geom type="box" size="{D / 2} {t / 2} {H / 2}" pos="0 {s * (W / 2 - t / 2)} {H / 2}" {wood}/>'
              for s in (1, -1)]
    fw, fh = W / 2 - t - 0.002, H / 2 - t - 0.002
    drawer = [f'<geom type="box" size="{t / 2} {fw} {fh}" pos="{D / 2 - t / 2} 0 {H / 2}" rgba=".65 .45 .25 1"/>',
              f'<geom type="box" size="{D / 2 - t} {fw} 0.003" pos="0 0 {t + 0.005}" {wood}/>',
              f'<geom type="box" size="{t / 2} {fw} 0.025" pos="{-D / 2 + 1.5 * t} 0 {t + 0.03}" {wood}/>',
              f'<geom type="box" size="0.006 0.05 0.006" pos="{D / 2 + HANDLE_GAP + 0.006} 0 {HANDLE_Z}" {dark}/>']
    drawer += [f'<geom type="box" size="{HANDLE_GAP / 2 + 0.001} 0.006 0.006" '
               f'pos="{D / 2 + HANDLE_GAP / 2} {s * 0.045} {HANDLE_Z}" {dark}/>' for s in (1, -1)]
    return (f'<body name="cabinet" pos="{c["x"]} {c["y"]} 0">{"".join(shell)}'
            f'<body name="drawer"><joint name="drawer" type="slide" axis="1 0 0" range="0 {c["travel"]}" '
            f'damping="3" frictionloss="0.2" armature="0.05"/>{"".join(drawer)}</body></body>')


HAND_XML = f"""
<body name="hand_base" gravcomp="1">
  <joint name="hand_x" type="slide" axis="1 0 0" range="-0.42 0.38" armature="0.05"/>
  <joint name="hand_y" type="slide" axis="0 1 0" range="-0.5 0.5" armature="0.05"/>
  <joint name="hand_z" type="slide" axis="0 0 1" range="{EEF_OFFSET} {EEF_OFFSET + 0.5}" armature="0.05"/>
  <joint name="hand_yaw" type="hinge" axis="0 0 1" range="-3.2 3.2" armature="0.01"/>
  <inertial pos="0 0 0" mass="0.4" diaginertia="0.002 0.002 0.002"/>
  <body name="hand" quat="0 1 0 0" gravcomp="1">
    <geom name="palm" type="box" size="0.015 0.068 0.012" mass="0.2" rgba=".25 .25 .28 1"/>
    <geom type="cylinder" size="0.022 0.04" pos="0 0 -0.052" contype="0" conaffinity="0" mass="0.05" rgba=".85 .85 .88 1"/>
    <site name="eef" pos="0 0 {EEF_OFFSET}" size="0.004" rgba="1 0 0 0"/>
    <camera name="robot0_eye_in_hand" pos="-0.04 0 0.016" xyaxes="0 1 0 0.926 0 -0.379" fovy="80"/>
    <body name="finger_left" pos="0 0 0.042" gravcomp="1">
      <joint name="finger_left" type="slide" axis="0 1 0" range="0 {FINGER_OPEN}" armature="0.01" damping="2"/>
      <geom name="finger_left" type="box" size="0.01 0.006 0.03" pos="0 0.007 0" mass="0.03" friction="2 0.05 0.001" rgba=".8 .8 .82 1"/>
    </body>
    <body name="finger_right" pos="0 0 0.042" gravcomp="1">
      <joint name="finger_right" type="slide" axis="0 1 0" range="-{FINGER_OPEN} 0" armature="0.01" damping="2"/>
      <geom name="finger_right" type="box" size="0.01 0.006 0.03" pos="0 -0.007 0" mass="0.03" friction="2 0.05 0.001" rgba=".8 .8 .82 1"/>
    </body>
  </body>
</body>"""

ACTUATOR_XML = """<actuator>
  <position name="hand_x" joint="hand_x" kp="4000" kv="100"/>
  <position name="hand_y" joint="hand_y" kp="4000" kv="100"/>
  <position name="hand_z" joint="hand_z" kp="4000" kv="100"/>
  <position name="hand_yaw" joint="hand_yaw" kp="40" kv="1.2"/>
  <position name="finger_left" joint="finger_left" kp="400" kv="4" forcerange="-25 25"/>
  <position name="finger_right" joint="finger_right" kp="400" kv="4" forcerange="-25 25"/>
</actuator>"""


def _look_at(pos, target):
    f = np.subtract(target, pos) / np.linalg.norm(np.subtract(target, pos))
    right = np.cross(f, (0, 0, 1))
    right /= np.linalg.norm(right)
    up = np.cross(right, f)
    return " ".join(f"{v:.4f}" for v in (*right, *up))


def scene_xml(objects: list[Obj], cabinet: bool, camera_size: int = 128) -> str:
    """The MJCF model of one suite's scene (also saved as each demo's `model_file`)."""
    cam_pos, cam_target = (0.45, 0.0, 0.65), (-0.1, 0.0, 0.0)
    off = max(camera_size, 64)
    return f"""<mujoco model="mini_libero">
<compiler angle="radian" autolimits="true"/>
<option timestep="{TIMESTEP}" integrator="implicitfast" cone="elliptic" impratio="10"/>
<visual><quality shadowsize="0" offsamples="0"/><global offwidth="{off}" offheight="{off}"/>
  <headlight ambient=".45 .45 .45" diffuse=".55 .55 .55" specular="0 0 0"/></visual>
<default><geom friction="1 0.02 0.001" condim="4" solref="0.004 1"/></default>
<asset>
  <texture name="grid" type="2d" builtin="checker" rgb1=".42 .44 .46" rgb2=".36 .38 .4" width="64" height="64"/>
  <material name="grid" texture="grid" texrepeat="6 6"/>
</asset>
<worldbody>
  <light pos="0.3 0 1.5" dir="-0.2 0 -1" diffuse=".4 .4 .4" castshadow="false"/>
  <geom name="floor" type="plane" size="2 2 0.1" pos="0 0 -0.7" material="grid"/>
  <geom name="table" type="box" size="0.42 0.52 0.02" pos="-0.02 0 -0.02" rgba=".78 .7 .58 1"/>
  {''.join(f'<geom type="box" size="0.02 0.02 0.34" pos="{x} {y} -0.36" rgba=".5 .4 .3 1" contype="0" conaffinity="0"/>'
           for x in (-0.4, 0.36) for y in (-0.48, 0.48))}
  <camera name="agentview" pos="{' '.join(map(str, cam_pos))}" xyaxes="{_look_at(cam_pos, cam_target)}" fovy="60"/>
  {HAND_XML}
  {cabinet_xml() if cabinet else ''}
  {''.join(obj_xml(o) for o in objects)}
</worldbody>
{'<contact><exclude body1="cabinet" body2="drawer"/></contact>' if cabinet else ''}
{ACTUATOR_XML}
</mujoco>"""


# ----------------------------------------------------------------------------------------------
# Tasks and suites. A plan is a list of skills; the goal predicate is the conjunction of their goals:
#   ("pick_place", obj, container[, (dx, dy)])  ->  obj rests in/on container, not held
#   ("push", obj)                               ->  obj centre beyond the FRONT_X line
#   ("open",) / ("close",)                      ->  drawer opened past 0.09 m / closed below 0.01 m

@dataclass
class Task:
    index: int
    language: str
    plan: list
    layout: object  # rng -> (dict name -> (x, y, yaw), drawer opening)

    @property
    def name(self) -> str:  # LIBERO's file-name form; data.py maps it back to `language`
        return self.language.replace(" ", "_")


SPLIT_STREAM = {"eval": [], "train": [1], "val": [2]}  # seed-stream suffix of each split's start states


@dataclass
class Suite:
    name: str
    objects: list
    cabinet: bool
    max_steps: int
    tasks: list = field(default_factory=list)
    _init_cache: dict = field(default_factory=dict, repr=False)

    @property
    def xml(self) -> str:
        return scene_xml(self.objects, self.cabinet)

    def get_task_init_states(self, task_id: int) -> np.ndarray:
        """(50, D) flattened [qpos, qvel] initial states: seeded, settled, fixed (LIBERO's init files)."""
        return np.stack([self.get_init_state(task_id, i) for i in range(NUM_INIT_STATES)])

    def get_init_state(self, task_id: int, i: int, split: str = "eval") -> np.ndarray:
        """Init state i alone (each has its own seed, so it is computed, and cached, on demand).
        split="eval": the 50 fixed evaluation (test) states (LIBERO's init files). split="train": another
        seed stream, unbounded, from which demonstrations start, so no demonstration starts from a state
        the evaluation uses (as in LIBERO, whose demos were not collected from its init files).
        split="val": a third stream, unbounded, for choosing among variants (evaluate.py --init-states
        val), so that the test states are run once per chosen recipe."""
        if split == "eval" and not 0 <= i < NUM_INIT_STATES:
            raise IndexError(f"{self.name}: init state ids are 0..{NUM_INIT_STATES - 1}, got {i}")
        if split not in SPLIT_STREAM:
            raise ValueError(f"split must be one of {sorted(SPLIT_STREAM)}, got {split!r}")
        key = (task_id, i, split)
        if key not in self._init_cache:
            if "physics" not in self._init_cache:
                model = mujoco.MjModel.from_xml_string(self.xml)
                self._init_cache["physics"] = (model, mujoco.MjData(model))
            stream = [zlib.crc32(f"{self.name}/{task_id}".encode()), i] + SPLIT_STREAM[split]
            self._init_cache[key] = _settled_state(*self._init_cache["physics"],
                                                   *self.tasks[task_id].layout(np.random.default_rng(stream)))
        return self._init_cache[key].copy()


def _settled_state(model, data, placement: dict, drawer_q: float) -> np.ndarray:
    mujoco.mj_resetData(model, data)
    data.qpos[:4] = (HOME[0], HOME[1], HOME[2] + EEF_OFFSET, 0.0)
    data.qpos[4:6] = (FINGER_OPEN, -FINGER_OPEN)
    if drawer_q:
        data.qpos[model.jnt_qposadr[model.joint("drawer").id]] = drawer_q
    for name, (x, y, yaw) in placement.items():
        adr = model.jnt_qposadr[model.joint(name).id]
        data.qpos[adr:adr + 7] = (x, y, 0.001, math.cos(yaw / 2), 0, 0, math.sin(yaw / 2))
    data.ctrl[:] = data.qpos[:6]
    mujoco.mj_step(model, data, nstep=150)  # 0.3 s: objects settle on the table
    return np.concatenate([data.qpos, data.qvel])


def sample_layout(rng, objects: dict, region, fixed=None, keep_out=(), min_gap=0.035, tries=2000):
    """Rejection-sample object positions: `objects` name -> footprint radius; returns name -> (x, y, yaw).
    `fixed` name -> (x, y, yaw) is placed first; `keep_out` are (x0, x1, y0, y1) rectangles."""
    (x0, x1), (y0, y1) = region
    out = dict(fixed or {})
    radius = dict(objects)
    for name, r in objects.items():
        if name in out:
            continue
        for _ in range(tries):
            x, y = rng.uniform(x0 + r, x1 - r), rng.uniform(y0 + r, y1 - r)
            if any(a - r < x < b + r and c - r < y < d + r for a, b, c, d in keep_out):
                continue
            if all(math.hypot(x - px, y - py) > r + radius[n] + min_gap for n, (px, py, _) in out.items()):
                out[name] = (x, y, rng.uniform(-0.3, 0.3))
                break
        else:
            raise RuntimeError(f"could not place {name!r} after {tries} tries (region {region})")
    return out


def _jitter(rng, nominal: dict, s=0.025):
    return {n: (x + rng.uniform(-s, s), y + rng.uniform(-s, s), rng.uniform(-0.3, 0.3)) for n, (x, y) in nominal.items()}


# mini_spatial: two identical black bowls, a plate, a red cube; the target bowl is named by relation.
RELATIONS = {"left of": (0, -1), "right of": (0, 1), "in front of": (1, 0), "behind": (-1, 0)}


def _spatial_layout(relation):
    def layout(rng):
        px, py = rng.uniform(-0.06, 0.03), rng.uniform(-0.1, 0.1)
        d = lambda: rng.uniform(0.165, 0.185)
        if relation == "next to the red cube":  # cube and target bowl away from the plate
            side = rng.choice([-1, 1])
            cube = (px + rng.uniform(-0.08, 0.08), py + side * rng.uniform(0.27, 0.3))
            ang = rng.uniform(-0.6, 0.6) + (0 if rng.random() < 0.5 else math.pi)
            bowl_a = (cube[0] + 0.1 * math.cos(ang), cube[1] - side * 0.1 * abs(math.sin(ang)))
            ox, oy = RELATIONS["left of" if side > 0 else "right of"]
            fixed = {"bowl_a": (*bowl_a, 0.0), "cube": (*cube, rng.uniform(-0.3, 0.3)),
                     "bowl_b": (px + ox * d(), py + oy * d(), 0.0)}
        else:
            tx, ty = RELATIONS[relation]
            other = [r for r in RELATIONS if r != relation][rng.integers(3)]
            ox, oy = RELATIONS[other]
            fixed = {"bowl_a": (px + tx * d(), py + ty * d(), 0.0), "bowl_b": (px + ox * d(), py + oy * d(), 0.0)}
        fixed["plate"] = (px, py, 0.0)
        objs = {"plate": 0.07, "bowl_a": 0.045, "bowl_b": 0.045, "cube": 0.03}
        return sample_layout(rng, objs, ((-0.34, 0.3), (-0.42, 0.42)), fixed), 0.0
    return layout


def _object_layout(rng):
    side = rng.choice([-1, 1])
    basket = (rng.uniform(-0.2, 0.0), side * rng.uniform(0.17, 0.26), 0.0)
    objs = {"basket": BASKET["radius"], "bowl": 0.045, "carton": 0.036, "can": 0.022, "cube": 0.028, "block": 0.036}
    return sample_layout(rng, objs, ((-0.3, 0.22), (-0.36, 0.36)), {"basket": basket}), 0.0


GOAL_NOMINAL = {"plate": (-0.12, -0.2), "bowl": (0.08, 0.02), "red_block": (-0.1, 0.0)}
DRAWER_KEEP_OUT = (-0.42, 0.0, 0.07, 0.52)  # the cabinet, the opened drawer's sweep, room for open fingers


def _long_layout(drawer_q):
    def layout(rng):
        objs = {"basket": BASKET["radius"], "plate": 0.07, "bowl": 0.045, "red_block": 0.028, "blue_block": 0.028}
        return sample_layout(rng, objs, ((-0.3, 0.24), (-0.37, 0.37)), keep_out=[DRAWER_KEEP_OUT]), drawer_q
    return layout


def _build_suites() -> dict[str, Suite]:
    bowl = lambda name, rgba: Obj(name, "bowl", rgba, **BOWL)
    plate = Obj("plate", "plate", ".92 .92 .9 1", **PLATE)
    basket = Obj("basket", "basket", ".7 .55 .3 1", **BASKET)
    red = _block("red_block", ".85 .15 .12 1", 0.02, 0.02, 0.02)
    blue = _block("blue_block", ".15 .3 .85 1", 0.02, 0.02, 0.02)

    spatial = Suite("mini_spatial", [bowl("bowl_a", ".12 .12 .12 1"), bowl("bowl_b", ".12 .12 .12 1"), plate,
                                     _block("cube", ".85 .15 .12 1", 0.02, 0.02, 0.02)], False, max_steps=220)
    for i, rel in enumerate([*RELATIONS, "next to the red cube"]):
        spatial.tasks.append(Task(i, f"pick up the black bowl {rel} the plate and place it on the plate"
                                  if rel in RELATIONS else f"pick up the black bowl {rel} and place it on the plate",
                                  [("pick_place", "bowl_a", "plate")], _spatial_layout(rel)))

    items = {"red cube": _block("cube", ".85 .15 .12 1", 0.02, 0.02, 0.02),
             "green can": _can("can", ".2 .65 .25 1", 0.022, 0.04),
             "yellow carton": _block("carton", ".95 .8 .15 1", 0.03, 0.02, 0.04),
             "blue bowl": bowl("bowl", ".2 .35 .8 1"),
             "pink block": _block("block", ".95 .5 .7 1", 0.03, 0.02, 0.015)}
    obj_suite = Suite("mini_object", [basket, *items.values()], False, max_steps=260)
    for i, (label, o) in enumerate(items.items()):
        obj_suite.tasks.append(Task(i, f"pick up the {label} and place it in the basket",
                                    [("pick_place", o.name, "basket")], _object_layout))

    goal_layout = lambda rng: (_jitter(rng, GOAL_NOMINAL), 0.0)
    goal = Suite("mini_goal", [plate, bowl("bowl", ".9 .9 .95 1"), red], True, max_steps=220)
    for i, (lang, plan) in enumerate([("open the drawer", [("open",)]),
                                      ("put the bowl on the plate", [("pick_place", "bowl", "plate")]),
                                      ("put the red block in the bowl", [("pick_place", "red_block", "bowl")]),
                                      ("push the plate to the front", [("push", "plate")]),
                                      ("put the red block on the plate", [("pick_place", "red_block", "plate")])]):
        goal.tasks.append(Task(i, lang, plan, goal_layout))

    long = Suite("mini_long", [basket, plate, bowl("bowl", ".9 .9 .95 1"), red, blue], True, max_steps=520)
    for i, (lang, plan, dq) in enumerate([
            ("put the red block in the bowl and close the drawer",
             [("pick_place", "red_block", "bowl"), ("close",)], 0.12),
            ("open the drawer and put the bowl on the plate", [("open",), ("pick_place", "bowl", "plate")], 0.0),
            ("put the red block in the bowl and put the blue block on the plate",
             [("pick_place", "red_block", "bowl"), ("pick_place", "blue_block", "plate")], 0.0),
            ("put the red block and the blue block in the basket",
             [("pick_place", "red_block", "basket", (0.0, -0.035)),
              ("pick_place", "blue_block", "basket", (0.0, 0.035))], 0.0),
            ("put the bowl on the plate and put the red block in the bowl",
             [("pick_place", "bowl", "plate"), ("pick_place", "red_block", "bowl")], 0.0)]):
        long.tasks.append(Task(i, lang, plan, _long_layout(dq)))
    return {s.name: s for s in (spatial, obj_suite, goal, long)}


SUITES: dict[str, Suite] = _build_suites()


def get_suite(name) -> Suite:
    if isinstance(name, Suite):
        return name
    key = name if name in SUITES else f"mini_{name}"
    if key not in SUITES:
        raise ValueError(f"unknown suite {name!r}; expected one of {', '.join(SUITES)} "
                         f"(or the short forms spatial|object|goal|long)")
    return SUITES[key]


def suite_names(arg: str) -> list[str]:
    return list(SUITES) if arg == "all" else [get_suite(s).name for s in arg.split(",")]


# ----------------------------------------------------------------------------------------------
# Environment: LIBERO's OffScreenRenderEnv interface.

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
        raise ValueError("motion_masks needs a scene written by sim.py (model 'mini_libero'); got another model_file")
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


def quat2axisangle(q_xyzw) -> np.ndarray:
    """robosuite's quat2axisangle: (x, y, z, w) -> axis * angle."""
    w = float(np.clip(q_xyzw[3], -1.0, 1.0))
    den = math.sqrt(max(1.0 - w * w, 0.0))
    return np.zeros(3) if den < 1e-8 else np.asarray(q_xyzw[:3]) * 2.0 * math.acos(w) / den


def obs_proprio(obs) -> np.ndarray:
    """A LIBERO-format observation -> the 8-D proprio its demos record (data.PROPRIO_KEYS:
    ee_pos (3), ee_ori = axis-angle of robot0_eef_quat (3), gripper_states (2)); shared by record_demo
    and the policy (--proprio), for this simulator and the real LIBERO one alike."""
    return np.concatenate([np.asarray(obs["robot0_eef_pos"], np.float64), quat2axisangle(obs["robot0_eef_quat"]),
                           np.asarray(obs["robot0_gripper_qpos"], np.float64)])            # (8,)


class MiniEnv:
    """One task of a suite. `step(action) -> (obs, reward, done, info)` with done = success, like LIBERO."""

    def __init__(self, suite, task_id: int, camera_size: int = 128, seed: int = 0):
        self.suite = get_suite(suite)
        if not 0 <= task_id < len(self.suite.tasks):
            raise ValueError(f"{self.suite.name} has tasks 0..{len(self.suite.tasks) - 1}, got {task_id}")
        self.task = self.suite.tasks[task_id]
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
    def step(self, action):
        a = np.asarray(action, float).ravel()
        if a.shape != (7,):
            raise ValueError(f"action must have 7 values (dpos 3, drot 3, gripper 1), got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"action has NaN/inf values: {a}")
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
        return self._obs(), float(success), success, info

    def render(self, camera: str) -> np.ndarray:
        self.renderer.update_scene(self.data, camera=camera)
        return self.renderer.render()[::-1, ::-1]  # (H, W, 3) upside down, as LIBERO's env returns it

    def _obs(self) -> dict:
        pos = self.eef_pos()
        obs = {"robot0_eef_pos": pos, "robot0_eef_quat": _quat_xyzw(self.data.site_xmat[self._eef]),
               "robot0_gripper_qpos": self.data.qpos[4:6].copy(),
               "robot0_joint_pos": self.data.qpos[:4].copy()}
        if self.renderer is not None:
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
FAILURE_MODES = {  # failure_mode() -> what it means (README, "Where the 66% policy fails")
    "never_lifted": "the object to place never rose 3 cm",
    "held_over_goal": "still held at the time limit, over the goal",
    "held_elsewhere": "still held at the time limit, not over the goal",
    "let_go_over_goal": "released over the goal but not resting on it",
    "let_go_elsewhere": "released away from the goal",
    "drawer_not_opened": "the drawer is not open", "drawer_not_closed": "the drawer is not closed",
    "not_pushed": "the object is not at the front"}


def make_env(suite, task_id: int, camera_size: int = 128, seed: int = 0) -> MiniEnv:
    return MiniEnv(suite, task_id, camera_size=camera_size, seed=seed)


# ----------------------------------------------------------------------------------------------
# Scripted expert: a generator of actions per skill, closed-loop on privileged state, with noise
# on every action, on the grasp point, on the carry height and on the speed (demo diversity).

# Std of the Gaussian noise on the expert's position actions (action units, i.i.d. per step). The
# recorded action is the executed one. It was 0.04 (16% of the normalised range per step): FAST then
# spent most of its tokens on noise in the high-frequency DCT coefficients (15 tokens per chunk instead of
# 11 at 0.01; action-token accuracy after 800 co-fine-tuning steps 0.17 instead of 0.27, README).
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


def record_demo(env, expert, obs: dict, max_steps: int, model_file: str, cameras: bool, disturb=None):
    """Drive `env` with `expert(obs) -> action` from `obs` until `done` or `max_steps` and record the
    episode in data.write_task_file's format (LIBERO's demo keys) -> (demo dict, success).
    `disturb(action) -> executed action` (optional) perturbs execution; the expert's action is recorded.
    Observation t is recorded before action t (LIBERO); images are stored upright. Shared by this
    module's experts and the real-LIBERO ones (libero_sim.py): both envs give LIBERO's observations."""
    rec = {k: [] for k in ("actions", "agentview_rgb", "eye_in_hand_rgb", "ee_pos", "ee_ori", "gripper_states",
                           "joint_states", "states", "robot_states")}
    success = False
    for _ in range(max_steps):
        action = expert(obs)
        quat, proprio = obs["robot0_eef_quat"], obs_proprio(obs)
        rec["ee_pos"].append(proprio[:3])
        rec["ee_ori"].append(proprio[3:6])
        rec["gripper_states"].append(proprio[6:])
        rec["joint_states"].append(obs["robot0_joint_pos"])
        rec["states"].append(env.get_state())
        rec["robot_states"].append(np.concatenate([obs["robot0_gripper_qpos"], obs["robot0_eef_pos"], quat]))
        if cameras:
            rec["agentview_rgb"].append(obs["agentview_image"][::-1, ::-1])  # upright
            rec["eye_in_hand_rgb"].append(obs["robot0_eye_in_hand_image"][::-1, ::-1])
        rec["actions"].append(action)
        obs, reward, done, info = env.step(action if disturb is None else disturb(action))
        if done:
            success = True
            break
    T = len(rec["actions"])
    demo = {"actions": np.asarray(rec["actions"]), "states": np.asarray(rec["states"]),
            "robot_states": np.asarray(rec["robot_states"]), "model_file": model_file,
            "init_state": rec["states"][0], "obs": {}}
    for k in ("ee_pos", "ee_ori", "gripper_states", "joint_states"):
        demo["obs"][k] = np.asarray(rec[k])
    if rec["agentview_rgb"]:
        demo["obs"]["agentview_rgb"] = np.asarray(rec["agentview_rgb"], np.uint8)  # (T, H, W, 3)
        demo["obs"]["eye_in_hand_rgb"] = np.asarray(rec["eye_in_hand_rgb"], np.uint8)
    demo["rewards"] = demo["dones"] = (np.arange(T) == T - 1).astype(np.uint8) * int(success)
    return demo, success


# ----------------------------------------------------------------------------------------------
# Parallel rollouts: each worker process builds (and caches) its own environment.

_WORKER_ENV = {}


def _worker_env(suite_name, task_id, camera_size) -> MiniEnv:
    key = (suite_name, task_id, camera_size)
    if key not in _WORKER_ENV:
        for env in _WORKER_ENV.values():
            env.close()
        _WORKER_ENV.clear()
        _WORKER_ENV[key] = MiniEnv(suite_name, task_id, camera_size=camera_size)
    return _WORKER_ENV[key]


def _demo_job(suite_name, task_id, attempt, seed, camera_size, noise=EXPERT_NOISE, perturb=0.0):
    """Attempt k of a task starts from training init state k (never one of the 50 evaluation states)."""
    env = _worker_env(suite_name, task_id, camera_size)
    demo, ok = rollout_expert(suite_name, task_id, attempt, seed, env=env, split="train", noise=noise,
                              perturb=perturb)
    return suite_name, task_id, attempt, demo, ok


def _success_job(suite_name, task_id, inits, seed, perturb=0.0):
    env = _worker_env(suite_name, task_id, 0)
    out = []
    for i in inits:
        demo, ok = rollout_expert(suite_name, task_id, i, seed, env=env, keep_failed=True, perturb=perturb)
        out.append((ok, len(demo["actions"])))
    return suite_name, task_id, out


class _Inline:
    """The executor interface run in-process (--workers 1)."""
    def submit(self, fn, *args):
        f = Future()
        f.set_result(fn(*args))
        return f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _executor(workers: int):
    return _Inline() if workers <= 1 else ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))


def task_ids(suite: str, n: int, tasks_arg) -> list[int]:
    """The ids `--tasks` selects in a suite of n tasks (None or "all": every task), checked up front so a
    typo fails with one line naming the flag instead of a traceback from inside a rollout worker."""
    if tasks_arg is None or str(tasks_arg).strip() == "all":
        return list(range(n))
    try:
        ids = [int(t) for t in str(tasks_arg).split(",")]
    except ValueError:
        raise ValueError(f"--tasks {tasks_arg!r}: expected comma-separated integers or 'all'") from None
    bad = [t for t in ids if not 0 <= t < n]
    if bad:
        raise ValueError(f"--tasks {tasks_arg!r}: {suite} has tasks 0..{n - 1}, got {bad}")
    return ids


def _select_tasks(suite_arg, tasks_arg):
    return [(name, t) for name in suite_names(suite_arg)
            for t in task_ids(name, len(SUITES[name].tasks), tasks_arg)]


def _bddl_text(suite: Suite, task: Task) -> str:
    """A BDDL-like description stored in the file (LIBERO stores the task's BDDL source)."""
    goals = " ".join(f"({' '.join(str(x) for x in skill)})" for skill in task.plan)
    return (f"(define (problem {suite.name}_{task.index})\n  (:domain mini_libero)\n"
            f"  (:language {task.language})\n  (:objects {' '.join(o.name for o in suite.objects)})\n"
            f"  (:goal (And {goals})))\n")


def generate(suite="all", demos_per_task=2, out="data/mini", workers=2, seed=0, camera_size=128, tasks=None,
             noise=EXPERT_NOISE, perturb=0.0):
    """Write `out/<suite>/<task_name>_demo.hdf5` for every selected task (successful demos only),
    a contact sheet and a JSON report. Returns the per-task statistics."""
    from data import write_task_file  # imported here: worker processes never need torch
    out = Path(out)
    pairs = _select_tasks(suite, tasks)
    max_attempts = demos_per_task + max(10, demos_per_task)
    state = {p: {"demos": {}, "attempts": 0, "fails": 0, "next": demos_per_task} for p in pairs}
    queue = deque((s, t, k) for s, t in pairs for k in range(demos_per_task))  # (suite, task, attempt)
    stats, first_frames, pending = {}, {}, set()
    bar = tqdm(total=len(pairs) * demos_per_task, desc="demos", unit="demo", **BAR_INTERVAL)
    with _executor(workers) as ex:
        while queue or pending:
            # a few jobs in flight at a time, in task order: memory holds about one task's demos
            while queue and len(pending) < 2 * max(1, workers):
                pending.add(ex.submit(_demo_job, *queue.popleft(), seed, camera_size, noise, perturb))
            done = next(as_completed(pending))
            pending.discard(done)
            s, t, attempt, demo, ok = done.result()
            st = state[(s, t)]
            st["attempts"] += 1
            if ok:
                st["demos"][attempt] = demo
                bar.update(1)
            else:
                st["fails"] += 1
                bar.set_postfix(failed=sum(v["fails"] for v in state.values()))
                if st["next"] < max_attempts:  # replace the failure with the next init state
                    queue.appendleft((s, t, st["next"]))
                    st["next"] += 1
            if st["attempts"] < st["next"]:
                continue
            # every attempt of this task has returned: write its file
            task = SUITES[s].tasks[t]
            demos = [st["demos"].pop(k) for k in sorted(st["demos"])]
            lengths = [len(d["actions"]) for d in demos]
            if demos:
                write_task_file(out / s / f"{task.name}_demo.hdf5", demos, language_instruction=task.language,
                                problem_name=f"{s}_{t}", domain_name="mini_libero", env_name="MiniEnv",
                                env_args={"suite": s, "task_id": t, "camera_size": camera_size,
                                          "control_freq": CONTROL_HZ, "sim": "sim.py"},
                                bddl_file_name=f"{s}/{task.name}.bddl", bddl_file_content=_bddl_text(SUITES[s], task))
                first_frames[(s, t)] = demos[0]["obs"]["agentview_rgb"][0]
            stats[(s, t)] = {"suite": s, "task": t, "language": task.language, "demos": len(demos),
                             "attempts": st["attempts"], "success_rate": len(demos) / st["attempts"],
                             "mean_len": float(np.mean(lengths)) if lengths else 0.0, "max_len": max(lengths, default=0)}
    bar.close()
    rows = [stats[p] for p in pairs]
    contact_sheet([(f"{s} {t}: {SUITES[s].tasks[t].language}", first_frames[(s, t)])
                   for s, t in pairs if (s, t) in first_frames], out / "contact_sheet.png")
    with open(out / "sim_report.json", "w") as f:
        json.dump({"config": {"suite": suite, "demos_per_task": demos_per_task, "seed": seed,
                              "camera_size": camera_size, "tasks": tasks, "noise": noise, "perturb": perturb},
                   "tasks": rows}, f, indent=1)
    return rows


def contact_sheet(items, path, tile=192, cols=5):
    """A PNG grid of (label, upright image) tiles, each image labelled below."""
    if not items:
        return None
    import textwrap
    from PIL import Image, ImageDraw
    rows, band = -(-len(items) // cols), 62
    sheet = Image.new("RGB", (cols * tile, rows * (tile + band)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (label, img) in enumerate(items):
        x, y = (k % cols) * tile, (k // cols) * (tile + band)
        sheet.paste(Image.fromarray(img).resize((tile, tile), Image.NEAREST), (x, y))
        draw.multiline_text((x + 3, y + tile + 2), "\n".join(textwrap.wrap(label, 34)[:4]), fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def measure_success(suite="all", inits=50, workers=2, seed=0, tasks=None, perturb=0.0):
    """Expert success per task over init states 0..inits-1 (physics only: cameras do not affect it)."""
    pairs = _select_tasks(suite, tasks)
    results = {}
    with _executor(workers) as ex:
        futures = [ex.submit(_success_job, s, t, range(inits), seed, perturb) for s, t in pairs]
        for f in tqdm(as_completed(futures), total=len(futures), desc="tasks", unit="task", **BAR_INTERVAL):
            s, t, out = f.result()
            results[(s, t)] = out
    rows = []
    for s, t in pairs:
        oks = [ok for ok, _ in results[(s, t)]]
        lens = [n for ok, n in results[(s, t)] if ok]
        rows.append({"suite": s, "task": t, "language": SUITES[s].tasks[t].language, "success": sum(oks),
                     "trials": len(oks), "mean_len": float(np.mean(lens)) if lens else 0.0,
                     "max_len": max(lens, default=0), "max_steps": SUITES[s].max_steps})
    return rows


def print_table(rows):
    print(f"{'suite':13s} {'id':>2s} {'success':>9s} {'len mean/max':>13s}  instruction")
    for r in rows:
        ok, n = (r["success"], r["trials"]) if "trials" in r else (r["demos"], r["attempts"])
        print(f"{r['suite']:13s} {r['task']:2d} {ok:4d}/{n:<4d} {r['mean_len']:7.0f}/{r['max_len']:<5d}  {r['language']}")


def show(suite, task, out, init=0, seed=0, camera_size=128, scale=2):
    """GIF of one expert rollout, agentview | eye-in-hand side by side, upright."""
    from PIL import Image
    demo, ok = rollout_expert(suite, task, init, seed, camera_size=camera_size, keep_failed=True)
    frames = np.concatenate([demo["obs"]["agentview_rgb"], demo["obs"]["eye_in_hand_rgb"]], axis=2)  # (T, H, 2W, 3)
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    images = [Image.fromarray(f) for f in frames]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    images[0].save(out, save_all=True, append_images=images[1:], duration=1000 // CONTROL_HZ, loop=0)
    print(f"{get_suite(suite).name} task {task} init {init}: {'success' if ok else 'FAILED'} in "
          f"{len(frames)} steps -> {out}")
    return ok


def bench(steps=400, camera_size=128, workers=2, demos_per_task=2, skip_generate=False):
    """Environment steps/s per process with both cameras rendering, and dataset generation wall time."""
    REAL_LIBERO = 8.0  # steps/s: 0.125 s per step with two 128x128 cameras on a CPU (SPEC.md Sec. 3)
    res = {}
    for label, size in (("physics + 2 cameras", camera_size), ("physics only", 0)):
        env = MiniEnv("mini_long", 3, camera_size=size)
        rng, t_step, n = np.random.default_rng(0), 0.0, 0
        for init in range(NUM_INIT_STATES):
            obs = env.set_init_state(init)
            expert = scripted_expert(env, rng)
            for k in range(env.suite.max_steps):
                action = expert(obs)
                t0 = time.perf_counter()
                obs, _, done, _ = env.step(action)
                if init > 0 or k >= 20:  # the first renders are slow (GL warm-up)
                    t_step += time.perf_counter() - t0
                    n += 1
                if done or n >= steps:
                    break
            if n >= steps:
                break
        env.close()
        res[label] = n / t_step
        print(f"{label:22s}: {res[label]:7.1f} steps/s per process ({1000 / res[label]:.2f} ms/step, "
              f"{size}x{size} images) = {res[label] / REAL_LIBERO:.1f}x the real LIBERO simulator (8 steps/s)")
    if not skip_generate:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            rows = generate("all", demos_per_task, tmp, workers=workers, camera_size=camera_size)
            wall = time.perf_counter() - t0
        frames = sum(r["mean_len"] * r["demos"] for r in rows)
        print(f"generate --suite all --demos-per-task {demos_per_task} --workers {workers}: {wall:.1f} s wall "
              f"({sum(r['demos'] for r in rows)} demos, {frames:.0f} steps)")
        res["generate_s"] = wall
    return res


# ----------------------------------------------------------------------------------------------
# Command line

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    suite_help = "mini_spatial|mini_object|mini_goal|mini_long, short forms spatial|object|goal|long, " \
                 "a comma-separated list of these, or all"

    g = sub.add_parser("generate", formatter_class=argparse.ArgumentDefaultsHelpFormatter, help="write expert demonstrations in LIBERO's HDF5 layout")
    g.add_argument("--suite", default="all", help=suite_help)
    g.add_argument("--tasks", default="all", help="comma-separated task ids within each suite, or all")
    g.add_argument("--demos-per-task", type=int, default=50, help="successful demos to keep per task")
    g.add_argument("--out", required=True, help="output root; files go to OUT/<suite>/<task_name>_demo.hdf5")
    g.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="rollout processes (1: in-process)")
    g.add_argument("--seed", type=int, default=0, help="expert noise seed (init states are fixed per task)")
    g.add_argument("--camera-size", type=int, default=128, help="image height = width in pixels")
    g.add_argument("--noise", type=float, default=EXPERT_NOISE,
                   help="std of the Gaussian noise on the expert's position actions (recorded as executed)")
    perturb_help = ("execute the expert's actions with bursts of pushes of up to this many action units per "
                    "position axis (2-6 steps, ~4%% of steps start one) and record the expert's own actions: "
                    "demos then show corrections (DART); 0 = off")
    g.add_argument("--perturb", type=float, default=0.0, help=perturb_help)

    s = sub.add_parser("success", formatter_class=argparse.ArgumentDefaultsHelpFormatter, help="measure expert success per task (no rendering)")
    s.add_argument("--suite", default="all", help=suite_help)
    s.add_argument("--tasks", default="all", help="comma-separated task ids within each suite, or all")
    s.add_argument("--inits", type=int, default=50, help="init states 0..N-1 per task")
    s.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="rollout processes (1: in-process)")
    s.add_argument("--seed", type=int, default=0, help="expert noise seed")
    s.add_argument("--perturb", type=float, default=0.0, help=perturb_help)

    v = sub.add_parser("show", formatter_class=argparse.ArgumentDefaultsHelpFormatter, help="GIF of an expert rollout, both cameras side by side")
    v.add_argument("--suite", required=True, help=suite_help.replace(", or all", ""))
    v.add_argument("--task", type=int, default=0, help="task id within the suite")
    v.add_argument("--init", type=int, default=0, help="init state id (0..49)")
    v.add_argument("--seed", type=int, default=0, help="expert noise seed")
    v.add_argument("--camera-size", type=int, default=128, help="image height = width in pixels")
    v.add_argument("--out", required=True, help="output .gif path")

    b = sub.add_parser("bench", formatter_class=argparse.ArgumentDefaultsHelpFormatter, help="steps/s per process with both cameras, and dataset generation time")
    b.add_argument("--steps", type=int, default=400, help="timed environment steps per measurement")
    b.add_argument("--camera-size", type=int, default=128, help="image height = width in pixels")
    b.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for the generation run")
    b.add_argument("--demos-per-task", type=int, default=2, help="demos per task in the generation run")
    b.add_argument("--skip-generate", action="store_true", help="only measure steps/s")

    args = p.parse_args(argv)
    print(json.dumps(vars(args)))
    if args.cmd in ("generate", "success"):
        if not 0 <= args.perturb <= 1:
            p.error(f"--perturb must lie in [0, 1] action units, got {args.perturb}")
        try:
            _select_tasks(args.suite, args.tasks)
        except ValueError as e:
            p.error(str(e))
    if args.cmd == "generate":
        t0 = time.perf_counter()
        rows = generate(args.suite, args.demos_per_task, args.out, args.workers, args.seed, args.camera_size,
                        args.tasks, args.noise, args.perturb)
        print_table(rows)
        short = [r for r in rows if r["demos"] < args.demos_per_task]
        print(f"wrote {sum(r['demos'] for r in rows)} demos for {len(rows)} tasks to {args.out} "
              f"in {time.perf_counter() - t0:.1f} s (contact sheet: {Path(args.out) / 'contact_sheet.png'})")
        if short:
            print(f"WARNING: {len(short)} task(s) got fewer than {args.demos_per_task} successful demos", file=sys.stderr)
            return 1
    elif args.cmd == "success":
        rows = measure_success(args.suite, args.inits, args.workers, args.seed, args.tasks, args.perturb)
        print_table(rows)
        worst = min(rows, key=lambda r: r["success"] / r["trials"])
        print(f"worst task: {worst['suite']} {worst['task']} {worst['success']}/{worst['trials']}")
    elif args.cmd == "show":
        show(args.suite, args.task, args.out, args.init, args.seed, args.camera_size)
    elif args.cmd == "bench":
        bench(args.steps, args.camera_size, args.workers, args.demos_per_task, args.skip_generate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
