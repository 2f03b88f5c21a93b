"""The embedded benchmark's scene: objects, the MJCF builder, tasks, suites and their start states.

Axes: +x toward the agentview camera ("front"), +y to the camera's right, +z up; an object's origin is
the bottom centre. Four suites in LIBERO's design (mini_spatial, mini_object, mini_goal, mini_long), 5
tasks each, a goal predicate per task (its plan) and seeded, settled start states in three disjoint
streams: the 50 evaluation (test) states, the demonstrations' and the validation ones (Suite.get_init_state).
"""
from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass, field

import numpy as np

try:
    import mujoco
except (ImportError, AttributeError, RuntimeError) as e:  # a broken OpenGL backend fails at import time
    raise ImportError(f"importing mujoco failed with MUJOCO_GL={os.environ.get('MUJOCO_GL')!r} ({e!r}). "
                      f"Offscreen rendering needs EGL (libegl1) or OSMesa (libosmesa6, MUJOCO_GL=osmesa); "
                      f"MUJOCO_GL=disable gives physics only (camera_size=0)") from e

from envs import common
from envs.common import CONTROL_HZ, NUM_INIT_STATES

TIMESTEP = 0.002
SUBSTEPS = round(1.0 / CONTROL_HZ / TIMESTEP)  # 25 physics steps per action
EEF_OFFSET = 0.06     # eef site (between the fingertips) sits this far below the hand joint origin
FINGER_OPEN = 0.055   # finger slide travel (each side)
HOME = (-0.02, 0.0, 0.34)  # eef home position
FRONT_X = 0.10        # "front of the table": x beyond this line
# ----------------------------------------------------------------------------------------------
# Objects and the MJCF builder

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

@dataclass(kw_only=True)
class Task(common.Task):
    plan: list                 # the skills whose goals make up the task's goal predicate
    layout: object             # rng -> (dict name -> (x, y, yaw), drawer opening)


SPLIT_STREAM = dict(zip(common.SPLITS, ([], [1], [2])))  # seed-stream suffix of each split's start states


@dataclass(kw_only=True)
class Suite(common.Suite):
    objects: list
    cabinet: bool
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

    spatial = Suite("mini_spatial", 220, objects=[bowl("bowl_a", ".12 .12 .12 1"), bowl("bowl_b", ".12 .12 .12 1"),
                                              plate, _block("cube", ".85 .15 .12 1", 0.02, 0.02, 0.02)], cabinet=False)
    for i, rel in enumerate([*RELATIONS, "next to the red cube"]):
        spatial.tasks.append(Task(i, f"pick up the black bowl {rel} the plate and place it on the plate"
                                  if rel in RELATIONS else f"pick up the black bowl {rel} and place it on the plate",
                                  plan=[("pick_place", "bowl_a", "plate")], layout=_spatial_layout(rel)))

    items = {"red cube": _block("cube", ".85 .15 .12 1", 0.02, 0.02, 0.02),
             "green can": _can("can", ".2 .65 .25 1", 0.022, 0.04),
             "yellow carton": _block("carton", ".95 .8 .15 1", 0.03, 0.02, 0.04),
             "blue bowl": bowl("bowl", ".2 .35 .8 1"),
             "pink block": _block("block", ".95 .5 .7 1", 0.03, 0.02, 0.015)}
    obj_suite = Suite("mini_object", 260, objects=[basket, *items.values()], cabinet=False)
    for i, (label, o) in enumerate(items.items()):
        obj_suite.tasks.append(Task(i, f"pick up the {label} and place it in the basket",
                                    plan=[("pick_place", o.name, "basket")], layout=_object_layout))

    goal_layout = lambda rng: (_jitter(rng, GOAL_NOMINAL), 0.0)
    goal = Suite("mini_goal", 220, objects=[plate, bowl("bowl", ".9 .9 .95 1"), red], cabinet=True)
    for i, (lang, plan) in enumerate([("open the drawer", [("open",)]),
                                      ("put the bowl on the plate", [("pick_place", "bowl", "plate")]),
                                      ("put the red block in the bowl", [("pick_place", "red_block", "bowl")]),
                                      ("push the plate to the front", [("push", "plate")]),
                                      ("put the red block on the plate", [("pick_place", "red_block", "plate")])]):
        goal.tasks.append(Task(i, lang, plan=plan, layout=goal_layout))

    long = Suite("mini_long", 520, objects=[basket, plate, bowl("bowl", ".9 .9 .95 1"), red, blue], cabinet=True)
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
        long.tasks.append(Task(i, lang, plan=plan, layout=_long_layout(dq)))
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
