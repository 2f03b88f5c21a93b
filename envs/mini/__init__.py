"""The embedded benchmark: a small MuJoCo tabletop in LIBERO's image — four suites, LIBERO's control and
observations, scripted experts, demonstrations in LIBERO's HDF5 layout (SPEC.md Sec. 3).

The real LIBERO simulator costs 0.16-0.30 s per rendered step on a CPU and needs a heavy install; this
package is the stand-in that every stage and `evaluate.py` run on, through the same code paths as real
LIBERO (envs.common's interface):

  scene.py   a table, a floating parallel gripper (x/y/z slides + a yaw hinge driven by position servos,
             two finger slides), blocks, a can, bowls, a plate, a basket, a cabinet with a drawer; the
             suites mini_spatial, mini_object, mini_goal, mini_long (LIBERO's four designs), 5 tasks each,
             and their seeded start states (50 test states per task, LIBERO's init files; train and val
             streams apart from them)
  env.py     MiniEnv: LIBERO's OffScreenRenderEnv interface (7-D delta actions at 20 Hz, upside-down images)
  expert.py  ScriptedExpert on privileged state, with noise; Disturbance (DART corrections)
  cli.py     python -m envs.mini generate | success | show | bench

Deviations from LIBERO (a Panda arm in robosuite), each listed in the README:
  # Deviation [sim-gripper]: a floating gripper instead of a 7-DoF arm, so joint_states /
  #   robot0_joint_pos hold the 4 hand joints (x, y, z, yaw), not 7 arm joints.
  # Deviation [sim-yaw]: only the yaw component (action[5]) of the rotation is applied; roll and pitch
  #   are accepted and ignored (the gripper always points down).
  # Deviation [sim-state]: the state vector for set_init_state is [qpos, qvel] of this scene (LIBERO's
  #   also starts with the sim time).

Measured on the 2-core CPU box: ~120-140 env steps/s per process with both 128x128 cameras; expert
success 50/50 init states on every task; `generate --suite all --demos-per-task 2` in ~35 s with 2 workers
(docs/benchmark.md). MuJoCo renders offscreen with MUJOCO_GL=egl by default on Linux (set by `envs`);
MUJOCO_GL=osmesa is the fallback where EGL is missing.
"""
from envs.common import CONTROL_HZ, NUM_INIT_STATES, obs_proprio, quat2axisangle, record_demo, task_ids
from envs.mini.scene import FINGER_OPEN, SPLIT_STREAM, SUITES, Suite, Task, get_suite, scene_xml, suite_names
from envs.mini.env import FAILURE_MODES, MiniEnv, make_env, motion_masks
from envs.mini.expert import EXPERT_NOISE, Disturbance, ScriptedExpert, rollout_expert, scripted_expert
from envs.mini.cli import bench, generate, main, measure_success, show

__all__ = ["CONTROL_HZ", "NUM_INIT_STATES", "obs_proprio", "quat2axisangle", "record_demo", "task_ids",
           "FINGER_OPEN", "SPLIT_STREAM", "SUITES", "Suite", "Task", "get_suite", "scene_xml", "suite_names",
           "FAILURE_MODES", "MiniEnv", "make_env", "motion_masks", "EXPERT_NOISE", "Disturbance",
           "ScriptedExpert", "rollout_expert", "scripted_expert", "bench", "generate", "main",
           "measure_success", "show"]
