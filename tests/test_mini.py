"""Tests for envs/mini, the embedded MuJoCo benchmark (CPU, ~1 minute on 2 cores).

    python -m pytest tests/test_mini.py -q            # fast tests
    python -m pytest tests/test_mini.py -q -m slow    # expert success >= 95% on all 50 init states
"""
import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import h5py
import numpy as np
import pytest

import envs.mini as sim
import envs.mini.cli
import envs.mini.scene

ALL_TASKS = [(s, t) for s in sim.SUITES for t in range(len(sim.SUITES[s].tasks))]
SMALL = 32  # camera size for tests: rendering does not change the physics


def test_suites_follow_libero_design_and_names_round_trip():
    from data import instruction_from_filename
    assert list(sim.SUITES) == ["mini_spatial", "mini_object", "mini_goal", "mini_long"]
    for short, full in zip(("spatial", "object", "goal", "long"), sim.SUITES):
        assert sim.get_suite(short) is sim.get_suite(full) is sim.SUITES[full]
    for suite in sim.SUITES.values():
        assert len(suite.tasks) >= 4
        assert len({t.name for t in suite.tasks}) == len(suite.tasks)
        for i, task in enumerate(suite.tasks):
            assert task.index == i and "_" not in task.language and task.name == task.name.lower()
            # the data layer derives the instruction from the file name: it must round-trip exactly
            assert instruction_from_filename(f"{task.name}_demo.hdf5") == task.language
    with pytest.raises(ValueError, match="unknown suite"):
        sim.get_suite("libero_spatial")


def test_task_selection_and_its_cli_errors(capsys):
    assert envs.mini.cli._select_tasks("goal", "all") == envs.mini.cli._select_tasks("goal", None) == [("mini_goal", t) for t in range(5)]
    assert envs.mini.cli._select_tasks("goal,long", "0,2") == [("mini_goal", 0), ("mini_goal", 2), ("mini_long", 0), ("mini_long", 2)]
    # a typo is one line naming the flag (argparse exit 2), found before any rollout starts
    for argv, msg in ((["--suite", "goal", "--tasks", "9"], "mini_goal has tasks 0..4, got [9]"),
                      (["--suite", "goal", "--tasks", "a"], "expected comma-separated integers"),
                      (["--suite", "foo"], "unknown suite 'foo'")):
        with pytest.raises(SystemExit) as e:
            sim.main(["success", "--inits", "1", "--workers", "1", *argv])
        assert e.value.code == 2 and msg in capsys.readouterr().err


def test_init_states_are_seeded_fixed_and_distinct():
    suite = sim.get_suite("goal")
    states = suite.get_task_init_states(1)
    env = sim.MiniEnv("goal", 1, camera_size=0)
    assert states.shape == (sim.NUM_INIT_STATES, env.model.nq + env.model.nv)
    fresh = envs.mini.scene._build_suites()["mini_goal"]  # recomputed from the seeds, in another order
    np.testing.assert_array_equal(fresh.get_init_state(1, 7), states[7])
    np.testing.assert_array_equal(fresh.get_task_init_states(1), states)
    assert len(np.unique(states.round(6), axis=0)) == sim.NUM_INIT_STATES
    assert not np.allclose(states, suite.get_task_init_states(2))


@pytest.mark.parametrize("suite,task", ALL_TASKS)
def test_no_task_starts_solved(suite, task):
    env = sim.MiniEnv(suite, task, camera_size=0)
    for i in range(sim.NUM_INIT_STATES):
        env.set_init_state(i)
        assert not env.check_success(), f"{suite} task {task} init {i} starts solved"
    for i in range(0, sim.NUM_INIT_STATES, 10):  # the evaluation protocol's 10 settling no-ops
        env.set_init_state(i)
        for _ in range(10):
            _, reward, done, _ = env.step([0, 0, 0, 0, 0, 0, -1])
            assert not done and reward == 0.0
        assert env.failure_mode() in set(sim.FAILURE_MODES) - {"held_over_goal", "held_elsewhere"}


@pytest.mark.parametrize("suite,task", ALL_TASKS)
def test_expert_succeeds(suite, task):
    env = sim.MiniEnv(suite, task, camera_size=SMALL)
    for init in (0, 37):
        demo, ok = sim.rollout_expert(suite, task, init, seed=0, env=env)
        assert ok and env.check_success(), f"{suite} task {task}: expert failed from init {init}"
        assert env.failure_mode() is None
        T = len(demo["actions"])
        assert 30 < T < env.suite.max_steps
        assert demo["actions"].shape == (T, 7) and np.abs(demo["actions"]).max() <= 1.0
        assert demo["obs"]["agentview_rgb"].shape == (T, SMALL, SMALL, 3)
        assert demo["obs"]["eye_in_hand_rgb"].dtype == np.uint8
        assert demo["obs"]["ee_pos"].shape == (T, 3) and demo["obs"]["gripper_states"].shape == (T, 2)
        np.testing.assert_array_equal(demo["states"][0], env.suite.get_init_state(task, init))
    env.close()


def test_failure_mode_says_what_happened_to_the_object():
    """mini_goal task 1, bowl on the plate: the expert's actions up to a point, then something else."""
    env = sim.MiniEnv("mini_goal", 1, camera_size=0)
    hold, release = [0, 0, 0, 0, 0, 0, 1.0], [0, 0, 0, 0, 0, 0, -1.0]

    def expert_until(stop, then, steps=25):
        env.set_init_state(2)
        expert = sim.scripted_expert(env, np.random.default_rng(0))
        for _ in range(env.suite.max_steps):
            a = expert()
            if stop(a):
                break
            env.step(a)
        for _ in range(steps):
            env.step(then)
        return env.failure_mode()

    lifted = lambda a: env.body_pos("bowl")[2] - env._rest_z["bowl"] > 0.06
    assert expert_until(lambda a: False, release) is None                        # the expert's whole plan
    assert expert_until(lambda a: a[6] > 0, hold) == "never_lifted"             # stopped before the grasp
    assert expert_until(lifted, hold) == "held_elsewhere"                       # lifted, then held in place
    assert expert_until(lifted, release) == "let_go_elsewhere"                  # lifted, then dropped
    carried = lambda a: env._max_rise["bowl"] > 0.06 and a[6] < 0               # the expert's release over the plate
    assert expert_until(carried, hold) == "held_over_goal"
    assert sim.MiniEnv("mini_goal", 0, camera_size=0).failure_mode() == "drawer_not_opened"
    assert sim.MiniEnv("mini_goal", 3, camera_size=0).failure_mode() == "not_pushed"


def test_observation_keys_and_image_convention():
    env = sim.MiniEnv("spatial", 0, camera_size=48)
    obs = env.reset()
    assert obs["agentview_image"].shape == obs["robot0_eye_in_hand_image"].shape == (48, 48, 3)
    assert obs["agentview_image"].dtype == np.uint8
    assert obs["robot0_eef_pos"].shape == (3,) and obs["robot0_gripper_qpos"].shape == (2,)
    q = obs["robot0_eef_quat"]
    assert q.shape == (4,) and abs(np.linalg.norm(q) - 1) < 1e-6
    # gripper pointing down: 180 degrees about x, i.e. xyzw ~ (+-1, 0, 0, 0) as robosuite's Panda at rest
    assert abs(abs(q[0]) - 1) < 1e-3
    # LIBERO's env returns images upside down: the black background above the table is at the bottom
    img = obs["agentview_image"].astype(float)
    assert img[-4:].mean() < 30 < img[:4].mean()
    upright = img[::-1, ::-1]
    assert upright[:4].mean() < 30  # after the evaluation code's 180-degree rotation it is on top
    obs2, reward, done, info = env.step(np.zeros(7))
    assert isinstance(reward, float) and isinstance(done, bool) and "success" in info
    env.close()


def test_action_convention():
    env = sim.MiniEnv("goal", 0, camera_size=0)
    obs = env.set_init_state(0)
    for axis in range(3):
        for sign in (1, -1):
            a = np.zeros(7)
            a[axis], a[6] = 2.0 * sign, -1  # out-of-range actions are clipped to [-1, 1]
            p0 = obs["robot0_eef_pos"]
            obs, *_ = env.step(a)
            d = obs["robot0_eef_pos"] - p0
            assert 0.04 < sign * d[axis] <= 0.05 + 1e-4, (axis, sign, d)
            assert np.abs(np.delete(d, axis)).max() < 0.003
    p0 = obs["robot0_eef_pos"]
    obs, *_ = env.step([0.5, 0, 0, 0, 0, 0, -1])
    assert 0.02 < obs["robot0_eef_pos"][0] - p0[0] <= 0.025 + 1e-4
    # rotation: accepted; the yaw component turns the gripper about z by up to 0.5 rad per step
    yaw0 = env.hand_yaw()
    obs, *_ = env.step([0, 0, 0, 0.3, -0.3, 1, -1])
    assert 0.4 < env.hand_yaw() - yaw0 <= 0.5 + 1e-3
    # gripper: +1 closes, -1 opens (robot0_gripper_qpos is (left, right) like the Panda's fingers)
    for _ in range(4):
        obs, *_ = env.step([0, 0, 0, 0, 0, 0, 1])
    assert obs["robot0_gripper_qpos"][0] - obs["robot0_gripper_qpos"][1] < 0.005
    for _ in range(4):
        obs, *_ = env.step([0, 0, 0, 0, 0, 0, -1])
    assert obs["robot0_gripper_qpos"][0] - obs["robot0_gripper_qpos"][1] > 2 * sim.FINGER_OPEN - 0.005
    with pytest.raises(ValueError, match="7 values"):
        env.step(np.zeros(6))


def test_same_init_gives_same_observation_and_rollout():
    a, b = sim.MiniEnv("long", 2, camera_size=SMALL), sim.MiniEnv("long", 2, camera_size=SMALL)
    oa, ob = a.set_init_state(5), b.set_init_state(b.init_states[5])  # index or LIBERO-style vector
    for key in oa:
        np.testing.assert_array_equal(oa[key], ob[key], err_msg=key)
    assert not np.array_equal(a.set_init_state(6)["agentview_image"], oa["agentview_image"])
    a.set_init_state(5)
    actions = np.random.default_rng(0).uniform(-1, 1, (8, 7))
    for act in actions:
        oa, *_ = a.step(act)
        ob, *_ = b.step(act)
    np.testing.assert_array_equal(oa["agentview_image"], ob["agentview_image"])
    np.testing.assert_array_equal(a.get_state(), b.get_state())
    with pytest.raises(ValueError, match="init state must have"):
        a.set_init_state(np.zeros(3))
    a.close()
    b.close()


def test_generated_file_passes_validation_and_reads_back(tmp_path):
    from data import DataError, LiberoData
    task = sim.get_suite("goal").tasks[0]
    rc = sim.main(["generate", "--suite", "goal", "--tasks", "0", "--demos-per-task", "2", "--out",
                   str(tmp_path), "--workers", "1", "--camera-size", str(SMALL)])
    assert rc == 0
    path = tmp_path / "mini_goal" / f"{task.name}_demo.hdf5"
    assert path.exists() and (tmp_path / "contact_sheet.png").exists()
    ds = LiberoData(path)
    assert len(ds.episodes) == 2
    ep = ds.episodes[0]
    assert ep.instruction == ep.language_instruction == task.language == "open the drawer"
    assert ep.suite == "mini_goal"
    sample = ds.read_episode(0)
    T = ep.length
    assert sample["actions"].shape == (T, 7)
    assert sample["agentview"].shape == sample["wrist"].shape == (T, SMALL, SMALL, 3)
    assert sample["proprio"].shape == (T, 8)
    # the same (training) init state and seed reproduce the stored demo; images read back upright
    demo, ok = sim.rollout_expert("goal", 0, 0, seed=0, camera_size=SMALL, split="train")
    assert ok and len(demo["actions"]) == T
    np.testing.assert_allclose(sample["actions"], demo["actions"], atol=1e-6)
    np.testing.assert_array_equal(sample["agentview"], demo["obs"]["agentview_rgb"])
    with h5py.File(path, "r") as f:
        assert f["data"].attrs["macros_image_convention"] == "opengl"
        stored = f["data/demo_0/obs/agentview_rgb"][:]
        np.testing.assert_array_equal(stored, demo["obs"]["agentview_rgb"][:, ::-1, ::-1])  # upside down
        assert f["data/demo_0/dones"][-1] == 1 and f["data/demo_0/dones"][:-1].sum() == 0
        rs = f["data/demo_0/robot_states"][:]                       # (T, 9): gripper_qpos, eef_pos, quat xyzw
    # the policy's observation -> proprio mapping (--proprio) gives the recorded 8-D proprio, in its key order
    got = np.stack([sim.obs_proprio({"robot0_gripper_qpos": r[:2], "robot0_eef_pos": r[2:5], "robot0_eef_quat": r[5:]})
                    for r in rs])
    np.testing.assert_allclose(got, sample["proprio"], atol=1e-6)
    with h5py.File(path, "r") as f:
        np.testing.assert_allclose(f["data/demo_0"].attrs["init_state"], sim.get_suite("goal").get_init_state(0, 0, "train"))
    with pytest.raises(DataError):
        LiberoData(tmp_path / "nothing_here")


def test_generate_keeps_only_successful_demos(tmp_path, monkeypatch):
    real = sim.rollout_expert

    def fails_on_init_0(suite, task_id, init_id, seed=0, **kw):
        demo, ok = real(suite, task_id, init_id, seed, **kw)
        return (None, False) if init_id == 0 else (demo, ok)

    monkeypatch.setattr(envs.mini.cli, "rollout_expert", fails_on_init_0)
    rows = sim.generate("goal", 2, tmp_path, workers=1, camera_size=SMALL, tasks="3")
    assert rows[0]["demos"] == 2 and rows[0]["attempts"] == 3  # the failure was replaced by init 2
    with h5py.File(tmp_path / "mini_goal" / "push_the_plate_to_the_front_demo.hdf5", "r") as f:
        assert f["data"].attrs["num_demos"] == 2
        for i, init in enumerate((1, 2)):
            np.testing.assert_array_equal(f[f"data/demo_{i}"].attrs["init_state"],
                                          sim.get_suite("goal").get_init_state(3, init, "train"))


@pytest.mark.slow
@pytest.mark.parametrize("suite,task", ALL_TASKS)
def test_expert_success_rate_all_init_states(suite, task):
    rows = sim.measure_success(suite, inits=sim.NUM_INIT_STATES, workers=1, tasks=str(task))
    assert rows[0]["success"] >= 0.95 * sim.NUM_INIT_STATES, rows[0]
    assert rows[0]["max_len"] < sim.get_suite(suite).max_steps


def test_demonstrations_never_start_from_evaluation_states():
    """Training demos start from a separate seed stream: evaluating from init state i is not a replay."""
    suite = sim.get_suite("mini_goal")
    evals = suite.get_task_init_states(2)                                         # (50, D)
    train = np.stack([suite.get_init_state(2, i, split="train") for i in range(60)])
    assert np.abs(train[:, None] - evals[None]).max(-1).min() > 1e-6               # no train state equals an eval one
    demo, ok = sim.rollout_expert("mini_goal", 2, 3, seed=0, camera_size=0, split="train")
    assert ok and np.array_equal(demo["states"][0], train[3])


def test_motion_masks_mark_exactly_what_moved():
    """sim.motion_masks (the extractor's ground truth for factorisation): pixels that change between
    two frames of a demo lie inside the masks, the masks cover a small part of the image, and a clip
    whose state never changes has no moving pixels."""
    demo, ok = sim.rollout_expert("mini_object", 0, 0, camera_size=64, split="train")
    assert ok
    idx = np.linspace(0, len(demo["actions"]) - 1, 6).round().astype(int)
    masks = sim.motion_masks(demo["model_file"], demo["states"][idx], 64)
    assert masks.shape == (6, 64, 64) and masks.dtype == bool
    assert 0 < masks.mean() < 0.2 and masks.any((1, 2)).all()              # the gripper is in view throughout
    img = demo["obs"]["agentview_rgb"][idx].astype(int)                    # upright, like the masks
    changed = (np.abs(img[-1] - img[0]).max(-1) > 30)                      # first vs last frame
    union = masks[0] | masks[-1]
    assert changed[~union].mean() < 0.01 and changed[union].mean() > 0.3
    static = sim.motion_masks(demo["model_file"], demo["states"][[0] * 4], 64)
    assert not static.any()
    with pytest.raises(ValueError, match="scene written by envs.mini"):
        sim.motion_masks("<mujoco model='robosuite'/>", demo["states"][:2], 64)



def test_expert_noise_is_the_only_source_of_actions_beyond_the_speed_cap():
    """The expert's position actions are a P-controller capped at its speed (<= 0.22) plus Gaussian
    noise of std `noise` (default sim.EXPERT_NOISE), recorded as executed: without noise no action
    exceeds the cap, with noise some do, and at zero error the actions' spread is the noise's std."""
    clean, ok0 = sim.rollout_expert("mini_goal", 2, 3, seed=0, camera_size=0, split="train", noise=0.0)
    noisy, ok1 = sim.rollout_expert("mini_goal", 2, 3, seed=0, camera_size=0, split="train", noise=0.05)
    assert ok0 and ok1
    assert np.abs(clean["actions"][:, :3]).max() <= 0.22 + 1e-9 < np.abs(noisy["actions"][:, :3]).max()
    env = sim.make_env("mini_goal", 2, camera_size=0)
    for noise in (sim.EXPERT_NOISE, 0.04):
        expert = sim.scripted_expert(env, np.random.default_rng(0), noise)
        a = np.stack([expert._action(np.zeros(3), -1.0) for _ in range(2000)])[:, :3]
        assert abs(a.std() - noise) < 0.1 * noise
    env.close()


def test_disturbance_bursts_are_bounded_and_spare_holds():
    """sim.Disturbance: pushes come in bursts of 2-6 steps with one constant push per burst, each axis
    within +-scale; the rotation and gripper are never touched; a hold (zero position action) is
    executed as given and ends the burst."""
    d = sim.Disturbance(np.random.default_rng(0), scale=0.2, rate=0.1)
    move = np.array([0.1, -0.1, 0.05, 0, 0, 0.2, 1.0])
    pushes = [d(move) - move for _ in range(3000)]
    hit = np.array([np.any(p) for p in pushes])
    assert 0.15 < hit.mean() < 0.5                                          # ~ rate x mean length 4
    assert all(np.array_equal(p[3:], np.zeros(4)) for p in pushes)            # rotation and gripper untouched
    assert max(np.abs(p[:3]).max() for p in pushes) <= 0.2 + 1e-12
    bursts, n = [], 0                                       # lengths of runs of one constant non-zero push
    for prev, cur in zip([np.zeros(7)] + pushes, pushes + [np.zeros(7)]):
        if np.any(prev) and not np.array_equal(prev, cur):
            bursts.append(n)
        n = n + 1 if np.any(cur) and np.array_equal(prev, cur) else 1
    assert len(bursts) > 50 and min(bursts) >= 2 and max(bursts) <= 6
    d = sim.Disturbance(np.random.default_rng(1), scale=0.2, rate=1.0)
    assert np.any(d(move) != move)                                            # a burst started...
    hold = np.array([0, 0, 0, 0, 0, 0, 1.0])
    assert np.array_equal(d(hold), hold) and d.left == 0                      # ...and a hold ends it


def test_perturbed_demos_record_the_experts_corrections():
    """`perturb` executes disturbed actions but records the expert's: without it (and without noise) the
    recorded actions replayed from the init state reproduce the recorded states exactly; with it they do
    not, while the labels stay within the expert's speed cap and the demo still succeeds."""
    kw = dict(seed=0, camera_size=0, split="train", noise=0.0)
    for perturb in (0.0, 0.2):
        demo, ok = sim.rollout_expert("mini_goal", 4, 1, perturb=perturb, **kw)
        assert ok and np.abs(demo["actions"][:, :3]).max() <= 0.22 + 1e-9
        env = sim.make_env("mini_goal", 4, camera_size=0)
        env.set_init_state(demo["states"][0])
        for a in demo["actions"][:-1]:
            env.step(a)
        gap = np.abs(env.eef_pos() - demo["obs"]["ee_pos"][-1]).max()
        env.close()
        assert (gap < 1e-9) if perturb == 0 else (gap > 1e-3), (perturb, gap)
    again, _ = sim.rollout_expert("mini_goal", 4, 1, perturb=0.0, seed=0, camera_size=0, split="train")
    default, _ = sim.rollout_expert("mini_goal", 4, 1, seed=0, camera_size=0, split="train")
    assert np.array_equal(again["actions"], default["actions"])              # perturb=0 is the old stream


def test_partial_task_keeps_each_attempt_and_refuses_other_settings(tmp_path):
    """A generation's attempts so far (envs.common.PartialTask, shared by both simulators' generators)
    come back in attempt order, arrays and the model string intact; other settings are refused, never mixed."""
    from envs.common import PartialTask
    task_file = tmp_path / "suite" / "task_demo.hdf5"
    rng = np.random.default_rng(0)
    demo = {"actions": rng.normal(size=(5, 7)), "model_file": "<mujoco/>", "init_state": rng.normal(size=9),
            "obs": {"agentview_rgb": rng.integers(0, 255, (5, 8, 8, 3), dtype=np.uint8)}}
    p = PartialTask(task_file, {"seed": 0, "camera_size": 8})
    assert p.load() == ([], [])
    attempts = [{"k": 0, "ok": False, "steps": None, "s": 1.0}]
    p.add(attempts, None)
    attempts.append({"k": 1, "ok": True, "steps": 5, "s": 2.0})
    p.add(attempts, demo)
    demos, rows = PartialTask(task_file, {"seed": 0, "camera_size": 8}).load()
    assert [r["k"] for r in rows] == [0, 1] and len(demos) == 1
    assert demos[0]["model_file"] == "<mujoco/>"
    np.testing.assert_array_equal(demos[0]["actions"], demo["actions"])
    np.testing.assert_array_equal(demos[0]["obs"]["agentview_rgb"], demo["obs"]["agentview_rgb"])
    with pytest.raises(SystemExit, match="camera_size"):
        PartialTask(task_file, {"seed": 0, "camera_size": 16}).load()
    p.clear()
    assert not p.dir.exists() and PartialTask(task_file, {"seed": 0, "camera_size": 8}).load() == ([], [])
