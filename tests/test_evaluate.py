"""evaluate.py: LIBERO's protocol on the embedded benchmark, summaries, and an end-to-end run."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import evaluate as E
from experiments.offline import offline_errors, per_task_table


class RecordingEnv:
    """Wraps a real MiniEnv and records the actions it receives, one list per episode (set_init_state)."""

    always_render = False  # True: draw the cameras at every step, whatever the loop asks

    def __init__(self, env):
        self.env, self.actions, self.episodes, self.renders = env, [], [], []

    def set_init_state(self, i):
        self.init, self.actions = i, []
        self.episodes.append(self.actions)
        return self.env.set_init_state(i)

    def step(self, a, render=True):
        self.actions.append(np.asarray(a))
        self.renders.append(render)
        return self.env.step(a, render or self.always_render)

    def close(self):
        self.env.close()

    def tasks_done(self):
        return self.env.tasks_done()

    def failure_mode(self):
        return self.env.failure_mode()


class ConstantPolicy:
    def __init__(self):
        self.queue, self.replan, self.seen = [], 10, []

    def reset(self):
        self.seen.clear()

    def select_action(self, obs, instruction):
        self.seen.append((obs["agentview_image"], instruction))
        return np.array([0.5, 0, 0, 0, 0, 0, -1.0])


@pytest.fixture
def recording(monkeypatch):
    import envs.mini as sim
    envs = []

    def backend(kind):
        def make(suite, task, size):
            envs.append(RecordingEnv(sim.MiniEnv(suite, task, camera_size=size)))
            return envs[-1]
        return list(sim.SUITES), sim.get_suite, make
    monkeypatch.setattr(E, "env_backend", backend)
    monkeypatch.setattr(E, "_POLICY", ConstantPolicy())
    return envs


def test_protocol_settles_then_acts_from_init_state(recording, tmp_path):
    job = {"env": "mini", "suite": "mini_goal", "task": 0, "trial": 3, "camera_size": 32, "video": str(tmp_path / "v.gif"),
           "imagine": False, "max_steps": 7}
    r = E.run_episode(job)
    env = recording[0]
    assert env.init == 3                                                   # trial i starts from init state i
    acts = np.stack(env.actions)
    assert len(acts) == E.SETTLE_STEPS + 7 and r["steps"] == 17 and not r["success"]
    assert (acts[: E.SETTLE_STEPS] == E.NOOP).all() and (acts[E.SETTLE_STEPS:, 0] == 0.5).all()
    seen_img, instruction = E._POLICY.seen[0]
    assert instruction == "open the drawer" and seen_img.shape == (32, 32, 3)
    assert (tmp_path / "v.gif").exists()


def test_cameras_draw_only_for_a_replan_and_the_rollout_is_unchanged(recording, monkeypatch):
    """Between re-plans the loop asks the env for no images; the policy still sees an image at every re-plan,
    the same pixels and hence the same actions as with the cameras drawn at every step."""
    from collections import deque

    class ChunkPolicy(ConstantPolicy):  # a 4-action chunk from the pixels it sees at each re-plan
        def __init__(self):
            super().__init__()
            self.queue = deque()

        def select_action(self, obs, instruction):
            if not self.queue:
                self.seen.append(obs["agentview_image"].copy())
                v = obs["agentview_image"].mean() / 255 - 0.5
                self.queue.extend([np.array([v, 0.6, -0.2, 0, 0, 0, -1.0])] * 4)
            return self.queue.popleft()
    job = {"env": "mini", "suite": "mini_goal", "task": 0, "trial": 1, "camera_size": 32, "video": None,
           "imagine": False, "max_steps": 20}
    runs = []
    for always in (False, True):
        monkeypatch.setattr(RecordingEnv, "always_render", always)
        monkeypatch.setattr(E, "_POLICY", ChunkPolicy())
        E.close_envs()  # a fresh env for each run (evaluate keeps one per task)
        recording.clear()
        E.run_episode(job)
        runs.append((np.stack(recording[0].actions), E._POLICY.seen, recording[0].renders))
    (acts, seen, renders), (acts_all, seen_all, _) = runs
    assert len(seen) == 5 and all(np.array_equal(a, b) for a, b in zip(seen, seen_all))
    np.testing.assert_array_equal(acts, acts_all)
    # rendered: the last settling step and the last step of each chunk (its next observation is read)
    assert [t for t, r in enumerate(renders) if r] == [9, 13, 17, 21, 25, 29]


def test_success_is_done_at_any_step(recording, monkeypatch):
    import envs.mini as sim

    class ExpertPolicy(ConstantPolicy):  # privileged: drives the env the episode built
        def select_action(self, obs, instruction):
            if not hasattr(self, "expert"):
                self.expert = sim.scripted_expert(recording[-1].env, np.random.default_rng(0))
            return self.expert(obs)
    monkeypatch.setattr(E, "_POLICY", ExpertPolicy())
    r = E.run_episode({"env": "mini", "suite": "mini_goal", "task": 0, "trial": 0, "camera_size": 0,
                       "video": None, "imagine": False, "max_steps": None})
    assert r["success"] and r["steps"] < E.SETTLE_STEPS + sim.get_suite("mini_goal").max_steps
    assert r["failure_mode"] is None


def test_a_rollout_that_does_another_task_is_a_failure_that_names_it(recording, monkeypatch):
    """Asked for "put the bowl on the plate" (task 1), the policy carries out task 4's plan (red block on
    the plate): not a success, and the episode records task 4 in other_tasks_done; the summary and the
    table count it among the failures that did another task."""
    import envs.mini as sim

    class WrongTaskPolicy(ConstantPolicy):
        def select_action(self, obs, instruction):
            if not hasattr(self, "expert"):
                self.expert = sim.scripted_expert(recording[-1].env, np.random.default_rng(0))
                self.expert.skills = list(sim.get_suite("mini_goal").tasks[4].plan)
            return self.expert(obs)
    monkeypatch.setattr(E, "_POLICY", WrongTaskPolicy())
    job = {"env": "mini", "suite": "mini_goal", "task": 1, "trial": 0, "camera_size": 0, "video": None,
           "imagine": False, "max_steps": None}
    r = E.run_episode(job)
    assert not r["success"] and r["other_tasks_done"] == [4]
    assert r["failure_mode"] == "never_lifted"                # the bowl stayed where it was
    monkeypatch.setattr(E, "_POLICY", ConstantPolicy())  # pushes +x with the gripper open: nothing done
    assert E.run_episode({**job, "max_steps": 5, "camera_size": 16})["other_tasks_done"] == []
    info = E.summarise([r, {**r, "trial": 1, "other_tasks_done": []}])
    assert info["per_task"][0]["failed_did_other"] == 1
    assert "| failures that did another task |" in E.markdown_table(info)
    assert "another task" not in E.markdown_table(E.summarise([{**r, "other_tasks_done": None}]))


def test_failure_modes_are_counted_per_task_and_tabled():
    res = [{"suite": "s", "task": 1, "trial": i, "success": m is None, "instruction": "x", "failure_mode": m}
           for i, m in enumerate([None, "never_lifted", "held_over_goal", "never_lifted"])]
    info = E.summarise(res)
    assert info["per_task"][0]["failure_modes"] == {"never_lifted": 2, "held_over_goal": 1}
    table = E.markdown_table(info)
    assert "| suite | task | failures | held_over_goal | never_lifted |" in table
    assert "| s | 1 | 3 | 1 | 2 |" in table
    no_modes = E.summarise([{**r, "failure_mode": None} for r in res])  # e.g. real LIBERO: no anatomy table
    assert "failure_modes" not in no_modes["per_task"][0] and "never_lifted" not in E.markdown_table(no_modes)


def test_grasp_offsets_are_summarised_by_outcome():
    """Real LIBERO's grasp_offset (hand minus object at the first firm close, m) per outcome, in cm; None = the
    gripper never closed. Episodes without the key (the embedded benchmark) add no grasp table."""
    offsets = [[0.003, 0.004, 0.01], [0.03, 0.04, 0.02], None, [0.0, 0.1, 0.2]]
    modes = [None, "never_lifted", "never_lifted", "let_go_elsewhere"]
    res = [{"suite": "s", "task": 0, "trial": i, "success": m is None, "instruction": "x", "failure_mode": m,
            "grasp_offset": g} for i, (m, g) in enumerate(zip(modes, offsets))]
    grasp = E.summarise(res)["per_task"][0]["grasp"]
    assert grasp["success"] == {"n": 1, "never_closed": 0, "xy_cm": [0.5], "dz_cm": [1.0]}
    assert grasp["never_lifted"] == {"n": 2, "never_closed": 1, "xy_cm": [5.0], "dz_cm": [2.0]}
    assert grasp["let_go_elsewhere"]["xy_cm"] == [10.0]
    table = E.markdown_table(E.summarise(res))
    assert "At the first firm close command" in table
    assert "| success | 1 | 0 | 0.5 (0.5–0.5) | 1.0 |" in table
    assert "| never_lifted | 2 | 1 | 5.0 (5.0–5.0) | 2.0 |" in table
    plain = E.summarise([{k: v for k, v in r.items() if k != "grasp_offset"} for r in res])
    assert "grasp" not in plain["per_task"][0] and "first firm close" not in E.markdown_table(plain)


def test_goal_offsets_get_their_own_table():
    """Real LIBERO's goal_offset (the object to place minus its target at the end, m) is summarised like the
    grasp, under "goal", in a table of its own; an episode with only one of the two keys adds only its table."""
    res = [{"suite": "s", "task": 0, "trial": 0, "success": False, "instruction": "x",
            "failure_mode": "let_go_elsewhere", "goal_offset": [0.06, 0.08, -0.05]},
           {"suite": "s", "task": 0, "trial": 1, "success": True, "instruction": "x", "failure_mode": None,
            "goal_offset": [0.0, 0.01, 0.02]}]
    info = E.summarise(res)
    goal = info["per_task"][0]["goal"]
    assert goal["let_go_elsewhere"] == {"n": 1, "never_closed": 0, "xy_cm": [10.0], "dz_cm": [-5.0]}
    assert goal["success"]["xy_cm"] == [1.0] and "grasp" not in info["per_task"][0]
    table = E.markdown_table(info)
    assert "At the episode's end" in table and "first firm close" not in table
    assert "| let_go_elsewhere | 1 | 0 | 10.0 (10.0–10.0) | -5.0 |" in table


def test_summary_and_table():
    res = [{"suite": "a", "task": 0, "trial": i, "success": i < 2, "instruction": "x"} for i in range(4)]
    res += [{"suite": "b", "task": 1, "trial": 0, "success": True, "instruction": "y"}]
    info = E.summarise(res)
    assert info["per_suite"]["a"] == {"n": 4, "success": 2, "pc_success": 50.0}
    assert info["overall"]["n"] == 5 and info["overall"]["avg_suite_success"] == 75.0
    md = E.markdown_table(info)
    assert "| a | 0 | x | 2 | 4 | 50% |" in md and "| **all** | 3 | 5 | 60.0%" in md


def test_evaluate_end_to_end_with_a_trained_policy(artifacts, tmp_path):
    import cofinetune
    out = tmp_path / "cft"
    cofinetune.main(["--data", str(artifacts.data), "--tokenizers", str(artifacts.tokenizers), "--vqgan",
                     str(artifacts.vqgan), "--extractor", str(artifacts.extractor), "--init-from", "none", "--tiny",
                     "--width", "32", "--layers", "2", "--heads", "2", "--steps", "1", "--batch-size", "2",
                     "--out", str(out), "--workers", "0"])
    info = E.evaluate(out, "mini", "mini_object", trials=2, out=tmp_path / "eval", workers=1, camera_size=32,
                      videos=1, tasks=[0], max_steps=12)
    saved = json.loads((tmp_path / "eval" / "eval_info.json").read_text())
    assert saved["overall"]["n"] == 2 and saved["per_task"][0]["instruction"].startswith("pick up the")
    assert (tmp_path / "eval" / "results.md").exists() and (tmp_path / "eval" / "videos" / "mini_object_task0_trial0.gif").exists()
    again = E.evaluate(out, "mini", "mini_object", trials=2, out=tmp_path / "eval2", workers=1, camera_size=32,
                       videos=0, tasks=[0], max_steps=12)
    assert again["per_task"] == info["per_task"]                          # deterministic
    E.evaluate(out, "mini", "mini_object", trials=1, out=tmp_path / "eval3", workers=1, camera_size=32,
               videos=0, tasks=[0], max_steps=12, history=0, gripper_hold=True)  # --history 0: current keyframe only
    assert E._POLICY.history == 0 and E._POLICY.replan == 10 and E._POLICY.gripper_hold
    r = json.loads((tmp_path / "eval3" / "episodes.jsonl").read_text().splitlines()[0])
    assert r["settings"]["history"] == 0 and r["settings"]["gripper_hold"] is True
    # a two-member ensemble (the same run twice decodes as the run), with constrained decoding
    pair = E.evaluate(f"{out},{out}", "mini", "mini_object", trials=2, out=tmp_path / "eval4", workers=1,
                      camera_size=32, videos=0, tasks=[0], max_steps=12, decoding="constrained")
    assert len(E._POLICY.model) == 2 and E._POLICY.constrained and pair["decoding"] == "constrained"
    r = json.loads((tmp_path / "eval4" / "episodes.jsonl").read_text().splitlines()[0])
    assert r["settings"]["decoding"] == "constrained" and r["settings"]["policy"].count("@step") == 2


def test_gripper_hold_replaces_weak_commands_by_the_last_firm_one():
    """--gripper-hold: an episode starts open (-1); a weak command (|g| < 0.5) executes as the last firm one,
    a firm one passes unchanged and becomes the held value; the other dimensions are never touched."""
    from cofinetune import hold_gripper
    last, executed = -1.0, []
    for g in (0.2, 0.9, -0.16, 0.03, -0.6, 0.49):
        a = np.array([0.1, -0.2, 0.3, 0, 0, 0.05, g])
        out, last = hold_gripper(a, last)
        np.testing.assert_array_equal(out[:-1], a[:-1])
        assert a[-1] == g   # the decoded chunk itself is left as decoded
        executed.append(float(out[-1]))
    assert executed == [-1.0, 0.9, 0.9, 0.9, -0.6, -0.6]


@pytest.mark.parametrize("flags", [["--history", "-1"], ["--history", "1", "--replan", "5"]])
def test_history_flag_errors(flags, capsys):
    with pytest.raises(SystemExit) as e:
        E.main(["--policy", "zero", "--suite", "mini_goal", *flags])
    assert e.value.code == 2 and "--history must be" in capsys.readouterr().err


@pytest.mark.parametrize("main", ["evaluate", "sim"])
def test_negative_perturb_is_a_usage_error(main, capsys):
    import envs.mini as sim
    argv = {"evaluate": ["--policy", "zero", "--suite", "mini_goal", "--perturb", "-0.1"],
            "sim": ["success", "--suite", "mini_goal", "--perturb", "-0.1"]}[main]
    with pytest.raises(SystemExit) as e:
        (E.main if main == "evaluate" else sim.main)(argv)
    assert e.value.code == 2 and "argument --perturb: must be in [0, 1], got -0.1" in capsys.readouterr().err


def test_offline_errors_against_the_mean_action(artifacts):
    """A policy that always predicts the data's mean action scores exactly the baseline; one that
    returns the recorded actions of the step it is shown scores zero (observations and targets line up)."""
    import data as D
    demos = D.LiberoData(artifacts.data)
    mean = np.concatenate([demos.read(i, "actions") for i in range(len(demos.episodes))]).mean(0)

    class Mean:
        l_a = 4
        def reset(self): pass
        def predict_action_chunk(self, obs, instruction): return np.tile(mean, (self.l_a, 1))

    r = offline_errors(Mean(), demos, episodes=3, every=2)
    assert r["chunks"] > 3 and np.allclose(r["policy"], r["mean_action"]) and len(r["policy"]) == 7

    class Oracle(Mean):                    # knows the documented sampling order: episodes, then every 2nd step
        order = iter([(i, t) for i in r["episodes"] for t in range(0, demos.episodes[i].length - 4 + 1, 2)])
        def predict_action_chunk(self, obs, instruction):
            i, t = next(self.order)
            assert np.array_equal(obs["agentview_image"][::-1, ::-1], demos.images(i, "agentview", [t])[0])
            return demos.read(i, "actions")[t: t + self.l_a]

    assert np.allclose(offline_errors(Oracle(), demos, episodes=3, every=2)["policy"], 0)

    n_instr = len({ep.instruction for ep in demos.episodes})

    class ReadsInstruction(Mean):          # the sample's recorded actions under its own instruction, else the mean
        order = [(i, t) for i in r["episodes"] for t in range(0, demos.episodes[i].length - 4 + 1, 2)]
        calls = 0                          # documented: the right instruction first, then each other one

        def predict_action_chunk(self, obs, instruction):
            i, t = self.order[self.calls // n_instr]
            self.calls += 1
            if instruction != demos.episodes[i].instruction:
                return np.tile(mean, (self.l_a, 1))
            return demos.read(i, "actions")[t: t + self.l_a]

    r = offline_errors(ReadsInstruction(), demos, episodes=3, every=2, other_instructions=True)
    assert np.allclose(r["policy"], 0) and np.allclose(r["other_instructions"], r["mean_action"])
    # per task: the same chunks split by instruction, each task's rows agreeing with the whole
    drawn = sorted({demos.episodes[i].instruction for i in r["episodes"]})
    assert [t["instruction"] for t in r["per_task"]] == drawn
    assert sum(t["chunks"] for t in r["per_task"]) == r["chunks"]
    assert all(np.isclose(t["policy"], 0) and np.isclose(t["other_instructions"], t["mean_action"])
               for t in r["per_task"])
    w = np.array([t["chunks"] for t in r["per_task"]])   # chunk-weighted, the tasks give back the whole
    assert np.isclose(w @ [t["mean_action"] for t in r["per_task"]] / w.sum(), np.mean(r["mean_action"]))
    table = per_task_table(r)
    assert len(table) == 2 + len(drawn) and table[2].startswith(f"| {drawn[0]} | ") and table[2].endswith(" |")
    assert offline_errors(Mean(), demos, episodes=1, every=10)["other_instructions"] is None
    held = D.heldout_episodes(len(demos.episodes), 2)   # --held-out: only the pool's episodes are drawn
    assert set(offline_errors(Mean(), demos, episodes=99, every=10, pool=held)["episodes"]) == set(held)
    with pytest.raises(ValueError, match="held-out split is empty"):
        offline_errors(Mean(), demos, pool=[])


def test_libero_backend_missing_is_a_clear_error():
    import envs.libero as libero_sim
    if libero_sim.available():
        pytest.skip("the real-LIBERO extra is installed here (tests/test_libero.py covers the backend)")
    with pytest.raises(SystemExit, match="pip install -r requirements-libero.txt"):
        E.env_backend("libero")


def test_zero_action_baseline(tmp_path):
    info = E.evaluate("zero", "mini", "mini_goal", trials=1, out=tmp_path, workers=1, camera_size=16, videos=0,
                      tasks=[0, 1], max_steps=5)
    assert info["overall"] == {"n": 2, "success": 0, "pc_success": 0.0, "avg_suite_success": 0.0}


def test_video_trial_records_that_trial(tmp_path, capsys):
    """--video-trial I: the GIF shows trial I (e.g. a task's first success), not trial 0; it needs --trials > I."""
    E.evaluate("zero", "mini", "mini_goal", trials=2, out=tmp_path, workers=1, camera_size=16, videos=1,
               tasks=[0], max_steps=3, video_trial=1)
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == ["mini_goal_task0_trial1.gif"]
    with pytest.raises(SystemExit) as e:
        E.main(["--policy", "zero", "--suite", "mini_goal", "--trials", "1", "--video-trial", "1"])
    assert e.value.code == 2 and "--video-trial 1 needs --trials above it" in capsys.readouterr().err


def test_replayed_expert_actions_succeed_through_the_loop(monkeypatch):
    """Record the expert from eval init state 2 after the protocol's settling steps, then replay the
    actions open-loop through run_episode: the loop must reproduce the success (a check of the loop)."""
    import envs.mini as sim
    env = sim.MiniEnv("mini_object", 1, camera_size=0)
    obs = env.set_init_state(2)
    for _ in range(E.SETTLE_STEPS):
        obs, *_ = env.step(E.NOOP)
    expert, actions, done = sim.scripted_expert(env, np.random.default_rng(0)), [], False
    while not done:
        actions.append(expert(obs))
        obs, _, done, _ = env.step(actions[-1])
    env.close()

    class Replay(ConstantPolicy):
        def reset(self):
            self.i = 0

        def select_action(self, obs, instruction):
            self.i += 1
            return actions[self.i - 1] if self.i <= len(actions) else E.NOOP
    monkeypatch.setattr(E, "_POLICY", Replay())
    job = {"env": "mini", "suite": "mini_object", "task": 1, "trial": 2, "camera_size": 0, "video": None,
           "imagine": False, "max_steps": None}
    r = E.run_episode(job)
    assert r["success"] and r["steps"] == E.SETTLE_STEPS + len(actions)
    actions[len(actions) // 2:] = [E.NOOP] * (len(actions) - len(actions) // 2)  # half the demo: no success
    assert not E.run_episode({**job, "max_steps": len(actions) + 20})["success"]


def test_resume_skips_finished_episodes(tmp_path, monkeypatch):
    ran = []

    def fake_episode(job):
        if len(ran) == 3 and not job.get("resumed"):
            raise KeyboardInterrupt  # the run is killed while the 4th episode runs
        ran.append((job["suite"], job["task"], job["trial"]))
        return {**{k: job[k] for k in ("suite", "task", "trial")}, "success": job["trial"] % 2 == 0, "steps": 3,
                "instruction": "x"}
    monkeypatch.setattr(E, "run_episode", fake_episode)
    kw = dict(env="mini", suite="mini_goal", trials=3, out=tmp_path, workers=1, videos=0, tasks=[0, 1], max_steps=5)
    with pytest.raises(KeyboardInterrupt):
        E.evaluate("zero", **kw)
    assert len((tmp_path / "episodes.jsonl").read_text().splitlines()) == 3
    first = list(ran)
    monkeypatch.setattr(E, "run_episode", lambda job: fake_episode({**job, "resumed": True}))
    info = E.evaluate("zero", resume=True, **kw)
    assert len(ran) == 6 and not set(ran[3:]) & set(first)                  # only the 3 missing episodes ran
    assert info["resumed_episodes"] == 3 and info["overall"]["n"] == 6
    assert [t["success"] for t in info["per_task"]] == [2, 2]               # trials 0 and 2 of each task
    finished = json.loads((tmp_path / "eval_info.json").read_text())
    again = E.evaluate("zero", resume=True, **kw)
    assert len(ran) == 6                                                     # all done: nothing re-runs
    assert (again["seconds"], again["resumed_episodes"]) == (finished["seconds"], 3)   # its record is kept
    E.evaluate("zero", resume=True, **{**kw, "max_steps": 6})
    assert len(ran) == 12                                                    # other settings: all re-run
    E.evaluate("zero", **kw)
    assert len(ran) == 18                                                    # without --resume: a fresh run


def test_gif_keeps_the_imagined_keyframe_panel(tmp_path):
    """Frames before the first imagined keyframe get a blank panel, so every GIF frame is 3 images wide
    (PIL crops later frames to the first frame's size, which used to drop the imagined panel)."""
    from PIL import Image, ImageSequence
    row = np.zeros((8, 16, 3), np.uint8)
    frames = [(row, None)] * 4 + [(row, np.full((32, 32, 3), 200, np.uint8))] * 4
    E._save_gif(frames, tmp_path / "v.gif")
    gif = [f.convert("RGB") for f in ImageSequence.Iterator(Image.open(tmp_path / "v.gif"))]
    assert len(gif) >= 2 and all(f.size == (24, 8) for f in gif)      # (PIL merges identical frames)
    assert np.asarray(gif[-1])[:, 16:].mean() > 150 and np.asarray(gif[0])[:, 16:].mean() < 120


def test_torch_threads_respect_omp_num_threads(monkeypatch):
    """Two evaluations side by side must not each take every core (oversubscription, docs/benchmark.md)."""
    import training as TR
    monkeypatch.setattr(E.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(TR, "free_cores", lambda: 8)  # an idle 8-core machine, whatever this one runs
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert E.torch_threads(1) == 8 and E.torch_threads(2) == 4 and E.torch_threads(16) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert E.torch_threads(1) == 1 and E.torch_threads(2) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # a 2-thread budget over 2 workers: one thread each, not two
    assert E.torch_threads(1) == 2 and E.torch_threads(2) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "")  # unset-like values fall back to the core share
    assert E.torch_threads(2) == 4


def test_task_plan_accepts_both_list_forms_and_rejects_bad_ids(capsys):
    plan = lambda tasks: [(su.name, ids) for su, ids in E.task_plan("mini", "goal,long", tasks)]
    assert plan([0, 2]) == plan("0,2") == [("mini_goal", [0, 2]), ("mini_long", [0, 2])]
    assert plan(None) == plan("all") == [("mini_goal", list(range(5))), ("mini_long", list(range(5)))]
    # a bad id is one argparse line before any policy is loaded or episode run
    with pytest.raises(SystemExit) as e:
        E.main(["--policy", "zero", "--suite", "mini_goal", "--tasks", "1", "7"])
    assert e.value.code == 2 and "mini_goal has tasks 0..4, got [7]" in capsys.readouterr().err


def test_perturbed_evaluation_pushes_the_executed_actions_deterministically(recording):
    """--perturb adds sim.Disturbance's bursts to what the env executes (never to the settling no-ops),
    seeded per (task, trial): the same trial is perturbed the same way twice, another trial differently."""
    job = {"env": "mini", "suite": "mini_goal", "task": 0, "trial": 3, "camera_size": 16, "video": None,
           "imagine": False, "max_steps": 120}
    E.run_episode(job)
    E.run_episode({**job, "perturb": 0.2})
    E.run_episode({**job, "perturb": 0.2})
    E.run_episode({**job, "trial": 4, "perturb": 0.2})
    assert len(recording) == 1                                             # one env, reused across the trials
    plain, a, b, other = (np.stack(actions) for actions in recording[0].episodes)
    assert (a[: E.SETTLE_STEPS] == E.NOOP).all() and np.array_equal(a, b)
    pushed = np.any(a != plain, axis=1)
    assert 0 < pushed.mean() < 0.6 and np.abs(a - plain).max() <= 0.2 + 1e-9
    assert a.shape == other.shape and not np.array_equal(a, other)


def test_killing_an_evaluation_ends_its_worker_processes(tmp_path):
    """SIGKILL to evaluate.py's main process: its pool workers exit within seconds instead of running on."""
    import signal
    import subprocess
    import time
    main = subprocess.Popen([sys.executable, str(Path(E.__file__)), "--policy", "zero", "--env", "mini", "--suite",
                             "mini_goal", "--trials", "50", "--workers", "2", "--videos", "1", "--out",
                             str(tmp_path / "ev")], cwd=Path(E.__file__).parent, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def children():
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(main.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]
    deadline = time.time() + 120
    while len(children()) < 2 and time.time() < deadline:  # the pool (and its resource tracker) started
        time.sleep(0.5)
    workers = children()
    assert workers, "the evaluation started no worker processes"
    main.send_signal(signal.SIGKILL)
    main.wait()
    deadline = time.time() + 30
    alive = workers
    while alive and time.time() < deadline:
        time.sleep(0.5)
        alive = [p for p in alive if os.path.exists(f"/proc/{p}") and
                 open(f"/proc/{p}/stat").read().split()[2] != "Z"]
    assert not alive, f"worker processes {alive} outlived the killed evaluation"
