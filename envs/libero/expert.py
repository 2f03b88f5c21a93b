"""Scripted experts on privileged state, composed from the task's BDDL goal.

`plan_goal(goal)` orders the goal's predicates into primitive steps; `TaskExpert` runs them one after
the other, each planned from the state the previous one left. Primitives so far: pick-and-place in/on an
object, a fixture or a region (`PickPlaceExpert`), turning a stove's knob on (`TurnOnExpert`), opening
and shutting a drawer (`DrawerExpert`). `expert_support(task)` says, from the BDDL file alone
(before any env is built), whether every predicate of a task has a primitive, and if not which.
"""
from __future__ import annotations

import math

import numpy as np

from envs.libero.env import LiberoEnv
from envs.libero.motion import Primitive, _planar, _rotation


class PickPlaceExpert(Primitive):
    """Picks the step's object and puts it in/on its target. Positions are re-read at every step, so a
    settling or slipping object is followed; the fingers close across the object or across a bowl's
    wall. `rng` adds small noise to the grasp point, the carry height and the speed.
    """

    SLOT_GAP = 0.09   # m between the places of objects put on one region side by side (8 cm moka pots)

    def __init__(self, env: LiberoEnv, rng: np.random.Generator | None = None, step=None, slot=None):
        """`step`: ("in" | "on", object, target); default: the task's goal when it is exactly that.
        `slot`: (k, n) puts this object k-th of n side by side on the target (both moka pots on the stove)."""
        self.slot = slot
        if step is None:
            goal = env.goal()
            if len(goal) != 1 or goal[0][0] not in PLACE or len(goal[0]) != 3:
                raise ValueError(f"{env.suite.name} task {env.task_id}: PickPlaceExpert places one object, "
                                 f"got the goal {goal} (TaskExpert composes several)")
            step = goal[0]
        self.kind, self.obj, self.target = step
        super().__init__(env, rng, step)


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
        shifted up to 2 cm along it); else, for a solid object, "handle": a part at one side of the
        bounding box narrow enough to straddle (a moka pot's), the fingers closing across it; else "rim":
        for containers wider than the opening (bowls, mugs), the fingers pinch the wall, closing radially,
        at one of the four sides of its bounding box."""
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
        # a container (bowl, mug: nothing solid over its centre near the top) is pinched at its rim; a
        # solid object too wide to straddle (a moka pot) by a handle: the outermost 3 cm of one side
        # narrower than 3 cm across
        centre_top = self.env.top_at(self.obj, centre)
        hollow = centre_top is None or pts[:, 2].max() - centre_top > 0.5 * np.ptp(pts[:, 2])
        if not out and not hollow:
            for k in range(4):
                d = _planar(ang + k * math.pi / 2)[:2]
                t = np.array([-d[1], d[0]])
                proj = pts[:, :2] @ d
                slab = pts[proj > proj.max() - 0.03, :2]
                if np.ptp(slab @ t) < 0.03:
                    mid = 0.5 * (slab.max(0) + slab.min(0))
                    out.append((math.atan2(t[1], t[0]), mid - centre, "handle", 0.0))
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
            elif kind == "handle":  # the pads 2 cm below the handle's own top
                pts = self.env.object_corners(self.obj)
                near = np.linalg.norm(pts[:, :2] - (centre + offset), axis=1) < 0.015
                z = (pts[near, 2].max() if near.any() else top) - 0.02 - 0.5 * depth_noise + 0.5 * fb
            else:  # the fingertips a few cm below the top, never below the support
                z = top - min(0.035, 0.6 * (top - bottom)) - depth_noise + 0.5 * fb
            return np.r_[centre + offset + jitter, max(z, bottom + fb + 0.004)]

        # -- approach
        closing, offset, kind = self._choose_grasp(grasp_point()[2])
        R = self._target_rot(closing)
        start = env.eef_pos()
        z_above = max(grasp_point()[2] + 0.08, self._clear_height(start[:2], grasp_point()[:2]) + fb + 0.02)
        yield from self._move(lambda: np.r_[grasp_point()[:2], z_above], -1, R, tol=0.01)
        # -- descend
        yield from self._move(grasp_point, -1, R, tol=0.005, max_speed=0.6)
        yield from self._hold(grasp_point, -1, R, 2)
        # -- grasp
        here = env.eef_pos()
        yield from self._hold(lambda: here, 1, R, 12)
        centre, bottom = self._extent(self.obj)[:2]
        held = centre - here[:2]  # the object's centre relative to the hand, kept while carried
        hang = here[2] - bottom   # how far the object's bottom hangs below the grip site
        g = self._target_xy() - held + rng.uniform(-0.003, 0.003, 2)
        # carry height: the object's bottom clears the target's top and everything near the path
        t_top = self._target_top()
        z_carry = max(t_top, self._clear_height(here[:2], g)) + hang + 0.03 + rng.uniform(0, 0.02)
        # -- lift
        yield from self._move(lambda: np.r_[here[:2], z_carry], 1, R, tol=0.01)
        # -- transport
        yield from self._move(lambda: np.r_[g, z_carry], 1, R, tol=0.01)
        # -- lower
        z_release = max(t_top + hang + 0.01, self._release_floor() + hang + 0.02)
        yield from self._move(lambda: np.r_[g, z_release], 1, R, tol=0.008, max_speed=0.6)
        # -- release
        here = env.eef_pos()
        yield from self._hold(lambda: here, -1, R, 10)
        # -- retreat (the plan ends here: a TaskExpert goes on with its next step)
        yield from self._move(lambda: np.r_[here[:2], z_carry], -1, R, tol=0.01)

    @property
    def target_body(self) -> str | None:
        """The object that carries the target region (basket_1 for basket_1_contain_region), or None for
        a region of the table itself (main_table_stove_front_region: the table is no object of the scene)."""
        e = self.env.env.env
        if self.target in e.objects_dict or self.target in e.fixtures_dict:
            return self.target
        parent = e.object_sites_dict[self.target].parent_name
        return parent if e.get_object(parent) is not None else None

    @property
    def drawer(self) -> tuple[str, str] | None:
        """(slide joint, drawer body) when the target is a drawer's region, else None."""
        site = self.env.env.env.object_sites_dict.get(self.target)
        if site is None or not site.joints:
            return None
        _, _, body = self.env.joint_frame(site.joints[0])
        return site.joints[0], body

    def _target_top(self) -> float:
        """Height of the target's top: the carrying object's (a drawer's own, not its cabinet's), or the
        table's surface under a table region."""
        if self.drawer:
            return float(self.env.body_corners(self.drawer[1])[:, 2].max())
        body = self.target_body
        if body is None:
            return float(self.env.body_pos(self.target)[2])
        if body != self.target:   # a fixture's region: the fixture's top under it (a stove's plate, not its knob)
            top = self.env.top_at(body, self._target_xy())
            if top is not None:
                return top
        return float(self._extent(body)[2])

    def _target_xy(self) -> np.ndarray:
        xy = self.env.body_pos(self.target)[:2]
        if self.slot is not None:   # side by side as the robot sees them, so no carry passes over another
            k, n = self.slot
            away = xy - self.env.sim.data.get_body_xpos("robot0_base")[:2]
            xy = xy + (k - (n - 1) / 2) * self.SLOT_GAP * np.array([-away[1], away[0]]) / np.linalg.norm(away)
        if self.drawer:   # an open drawer's region reaches back under the cabinet: aim 3 cm out of it
            axis = self.env.joint_frame(self.drawer[0])[1]
            xy = xy - 0.03 * axis[:2] / (np.linalg.norm(axis[:2]) + 1e-9)
        return xy

    def _release_floor(self) -> float:
        """Height of the target's support surface (a drawer's bottom, its region's bottom, or the target's top)."""
        if self.drawer:
            return float(self.env.body_corners(self.drawer[1])[:, 2].min())
        if self.kind == "in":
            site = self.env.env.env.object_sites_dict.get(self.target)
            if site is not None:
                return float(self.env.body_pos(self.target)[2] - site.size[2])
        return self._target_top()


class TurnOnExpert(Primitive):
    """("turnon", stove): grasps the knob's raised bar over the knob's axis, fingers closing across it, and
    twists the hand about the vertical until the knob is well past LIBERO's on-threshold (0.5 rad), then
    lets go. The twist is re-aimed from the knob's angle at every step."""

    GOAL_ANGLE = 1.0   # rad turned (LIBERO: on from 0.5 rad; the knob stops at 2.1)

    def _plan(self):
        env = self.env
        joint = env.joint_of(self.step[1])
        c, axis, body = env.joint_frame(joint)
        sign = 1.0 if axis[2] > 0 else -1.0        # positive qpos turns counter-clockwise seen from above
        pts = env.body_corners(body)
        top = pts[:, 2].max()
        bar = pts[pts[:, 2] > top - 0.4 * (top - pts[:, 2].min()), :2] - c[:2]  # the raised bar, above the disc
        _, _, vt = np.linalg.svd(bar - bar.mean(0))
        closing = math.atan2(vt[0][1], vt[0][0]) + math.pi / 2   # across the bar
        # of the two equivalent hand turns (closing directions pi apart), the one whose predicted last-joint
        # angle after the approach's turn and the twist is nearer the joint's centre (limits +-2.9 rad). A
        # heuristic: how q7 moves also depends on the other joints; the hand is turned back afterwards.
        q7 = env.joint_qpos("robot0_joint7")
        closing = min((closing, closing + math.pi),
                      key=lambda a: abs(q7 + self._turn(a) + sign * (self.GOAL_ANGLE + 0.3)))
        R0, R_start = self._target_rot(closing), env.eef_mat()
        fb = env.finger_bottom()
        grasp = np.r_[c[:2] + self.rng.uniform(-0.003, 0.003, 2), top - 0.015]   # pads on the bar, hand above it
        yield from self._move(lambda: np.r_[grasp[:2], top + fb + 0.05], -1, R0, tol=0.01)
        yield from self._move(lambda: grasp, -1, R0, tol=0.005, max_speed=0.6)
        yield from self._hold(lambda: grasp, 1, R0, 10)
        q0 = env.joint_qpos(joint)
        for _ in range(80):
            turned = sign * (env.joint_qpos(joint) - q0)
            if turned >= self.GOAL_ANGLE:
                break
            R = _rotation([0, 0, 1.0], sign * (self.GOAL_ANGLE + 0.2 - turned)) @ env.eef_mat()
            yield self._action(grasp, 1, R)
        here, R = env.eef_pos(), env.eef_mat()
        yield from self._hold(lambda: here, -1, R, 8)
        yield from self._move(lambda: np.r_[here[:2], top + fb + 0.03], -1, R, tol=0.01)
        # clear of the knob, turn the hand back to how it came (the twist leaves the last joint near a limit)
        yield from self._move(lambda: np.r_[here[:2], top + fb + 0.08], -1, R_start, tol=0.01)
        yield from self._hold(lambda: np.r_[here[:2], top + fb + 0.08], -1, R_start, 10)


class DrawerExpert(Primitive):
    """("open" | "close", drawer region): with the hand turned level, fingers pointing into the cabinet,
    grasps the drawer's handle bar (fingers closing across it, vertically) and pulls it out past LIBERO's
    open threshold; or, with closed fingers pointing down and tilted toward the cabinet, pushes the
    handle in until the drawer is shut. Re-reads the handle's position at every step."""

    OPEN_TO, CLOSE_TO = -0.155, 0.006   # slide qpos to reach (LIBERO: open below -0.14, closed above 0.0)
    CLOSE_TILT = math.radians(30)       # pushing: the hand trails behind the fingertips, clear of the handles above

    def _plan(self):
        env = self.env
        kind, region = self.step
        joint = env.joint_of(region)
        _, axis, body = env.joint_frame(joint)
        out = -axis / np.linalg.norm(axis)        # a drawer opens toward lower qpos: out of the cabinet
        n_angle = math.atan2(out[1], out[0])

        def handle():
            """The handle's centre: the drawer's collision geoms within 2 cm of its outermost point."""
            pts = env.body_corners(body)
            proj = pts @ out
            return pts[proj > proj.max() - 0.02].mean(0)

        def opened() -> bool:
            q = env.joint_qpos(joint)
            return q <= self.OPEN_TO if kind == "open" else q >= self.CLOSE_TO

        if opened():
            return
        start, R_start = env.eef_pos(), env.eef_mat()
        lift = max(start[2], handle()[2] + 0.1)
        if kind == "open":   # fingers into the cabinet, closing vertically across the bar
            R = self._target_rot(n_angle, tilt=(-out, math.pi / 2))
            grip, depth = -1, 0.0
        else:                # closed fingers pointing down, tilted toward the cabinet, closing along the bar
            R = self._target_rot(n_angle + math.pi / 2, tilt=(-out, self.CLOSE_TILT))
            grip, depth = 1, 0.01
        jitter = np.r_[self.rng.uniform(-0.004, 0.004, 2) * [1, 1], 0] * np.r_[np.abs(out[1]), np.abs(out[0]), 0]
        pre = lambda d: handle() + jitter + out * d
        yield from self._move(lambda: np.r_[pre(0.10)[:2], lift], grip, R, tol=0.02, steps=100)
        yield from self._move(lambda: pre(0.10), grip, R, tol=0.01, steps=80)
        if kind == "open":
            yield from self._move(lambda: pre(-0.005), -1, R, tol=0.005, steps=60, max_speed=0.5)
            here = env.eef_pos()
            yield from self._hold(lambda: here, 1, R, 12)
            for _ in range(120):   # pull along the slide, the target kept a little ahead of the handle
                if opened():
                    break
                yield self._action(handle() + out * 0.04, 1, R, floor=0.5)
            here = env.eef_pos()
            yield from self._hold(lambda: here, -1, R, 8)
            yield from self._move(lambda: here + out * 0.06, -1, R, tol=0.01, steps=40)
        else:
            for _ in range(150):   # push the handle in, aimed a little behind its face
                if opened():
                    break
                yield self._action(handle() - out * (depth + 0.02), 1, R, floor=0.5)
            here = env.eef_pos()
            yield from self._move(lambda: here + out * 0.06, 1, R, tol=0.01, steps=40)
        here = env.eef_pos()
        # up and back to the pointing-down hand the step started with
        yield from self._move(lambda: np.r_[here[:2], lift], -1, R_start, tol=0.02, steps=60)
        yield from self._hold(lambda: np.r_[here[:2], lift], -1, R_start, 10)


# ----------------------------------------------------------------------------------------------
# Goals -> primitive steps

PLACE = ("in", "on")           # pick-and-place predicates: (kind, object, target)
PRIMITIVES = {"in": PickPlaceExpert, "on": PickPlaceExpert, "turnon": TurnOnExpert, "open": DrawerExpert,
              "close": DrawerExpert}


def primitive(predicate):
    """The primitive that reaches `predicate`, or None. open/close: drawers only (their argument is the
    drawer's region, e.g. white_cabinet_1_bottom_region); a door (close microwave_1) has none yet."""
    kind = predicate[0]
    if kind in ("open", "close") and not predicate[-1].endswith("_region"):
        return None
    return PRIMITIVES.get(kind)


class UnsupportedTask(ValueError):
    """A goal predicate the scripted experts have no primitive for."""


def plan_goal(goal: list) -> list[tuple]:
    """The goal's predicates as primitive steps, in an order that can reach them: what opens or switches
    on first, then the placements (in the goal's order), then what closes. UnsupportedTask names the
    predicates without a primitive."""
    missing = [p for p in goal if primitive(p) is None]
    if missing:
        raise UnsupportedTask(f"no scripted primitive for {' '.join('(' + ' '.join(p) + ')' for p in missing)}")
    rank = {"open": 0, "turnon": 0, "in": 1, "on": 1, "close": 2, "turnoff": 2}
    return [tuple(p) for p in sorted(goal, key=lambda p: rank.get(p[0], 1))]


def bddl_goal(path) -> list[list[str]]:
    """A BDDL file's goal predicates, lower-cased as LIBERO parses them: [['on', 'plate_1', 'x'], ...]."""
    text = open(path).read().lower()
    start = text.index("(:goal")
    depth, out, cur = 0, [], None
    for tok in text[start:].replace("(", " ( ").replace(")", " ) ").split():
        if tok == "(":
            depth += 1
            cur = [] if depth == 3 else cur   # (:goal (and (pred args...)))
        elif tok == ")":
            if depth == 3 and cur:
                out.append(cur)
            depth -= 1
            if depth == 0:
                break
        elif depth == 3:
            cur.append(tok)
    return out


def expert_support(task) -> str | None:
    """None when the scripted experts cover every goal predicate of `task` (a Task with .bddl_file), else
    why not — read from the BDDL file, so an unsupported task is refused before any env is built."""
    try:
        plan_goal(bddl_goal(task.bddl_file))
    except UnsupportedTask as e:
        return str(e)
    return None


class TaskExpert:
    """`expert(obs) -> action (7,)` for the env's whole goal: the steps of plan_goal, each primitive
    planned when the one before has finished (from the state it left); then holds still, gripper open."""

    def __init__(self, env: LiberoEnv, rng: np.random.Generator | None = None):
        self.env, self.rng = env, rng or np.random.default_rng(0)
        try:
            self.steps = plan_goal(env.goal())
        except UnsupportedTask as e:
            raise UnsupportedTask(f"{env.suite.name} task {env.task_id} ({env.language}): {e}") from None
        self.current = None
        # placements of several objects on one region (not into a container) get places side by side
        shared = {}
        for st in self.steps:
            if st[0] == "on" and st[2] in env.env.env.object_sites_dict:
                shared.setdefault(st[2], []).append(st)
        self.slots = {st: (k, len(group)) for group in shared.values() if len(group) > 1
                      for k, st in enumerate(group)}

    def _precondition(self, step):
        """A step the goal leaves implicit: placing into a drawer that is shut opens it first
        (libero_goal "open the top drawer and put the bowl inside" states only the placement)."""
        if step[0] in PLACE:
            site = self.env.env.env.object_sites_dict.get(step[2])
            if site is not None and site.joints and not self.env.holds(("open", step[2])):
                return ("open", step[2])
        return None

    def __call__(self, obs=None) -> np.ndarray:
        while True:
            if self.current is None:
                if not self.steps:
                    return np.r_[np.zeros(6), -1.0]
                step = self.steps.pop(0)
                before = self._precondition(step)
                if before is not None:   # do that first, then this step
                    self.steps.insert(0, step)
                    step = before
                extra = {"slot": self.slots[step]} if step in self.slots else {}
                self.current = primitive(step)(self.env, self.rng, step, **extra).plan
            try:
                return next(self.current)
            except StopIteration:
                self.current = None


def scripted_expert(env: LiberoEnv, rng: np.random.Generator | None = None) -> TaskExpert:
    """A callable `expert(obs) -> action (7,)` for the env's task from its current state."""
    return TaskExpert(env, rng)
