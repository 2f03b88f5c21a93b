"""data.py: reading the official layout, writing it back, validation, normalisation, sample views."""
import io
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import data
from conftest import write_raw

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- reading

def test_reads_official_layout_rotated(raw_file):
    path, stored = raw_file
    d = data.LiberoData(path)
    assert [e.demo for e in d.episodes] == ["demo_0", "demo_1"]
    assert [e.length for e in d.episodes] == [12, 9]
    img = d.images(0, "agentview")
    assert img.shape == (12, 16, 16, 3) and img.dtype == np.uint8
    # 180° rotation: the stored top-left marker is now bottom-right, content otherwise unchanged
    np.testing.assert_array_equal(img, stored[0][:, ::-1, ::-1])
    assert img[0, -1, -1, 1] == 255 and img[0, 0, 0, 1] == 0
    np.testing.assert_array_equal(d.images(1, "wrist", [3, 1, 3])[:, 5, 5, 0], [13, 11, 13])


@pytest.mark.parametrize("convention, rotated", [("opengl", True), ("opencv", False), (None, True)])
def test_image_convention(tmp_path, convention, rotated):
    path = tmp_path / "s" / "open_the_drawer_demo.hdf5"
    stored = write_raw(path, lengths=(3,), convention=convention)
    img = data.LiberoData(path).images(0, "agentview")
    np.testing.assert_array_equal(img, stored[0][:, ::-1, ::-1] if rotated else stored[0])


def test_instruction_from_file_name(raw_file):
    path, _ = raw_file
    ep = data.LiberoData(path).episodes[0]
    assert ep.instruction == "pick up the black bowl on the plate"
    assert ep.language_instruction == "pick the akita black bowl"
    assert ep.suite == "libero_spatial"
    assert data.instruction_from_filename(
        "KITCHEN_SCENE3_turn_on_the_stove_and_put_the_moka_pot_on_it_demo.hdf5") == \
        "turn on the stove and put the moka pot on it"
    assert data.instruction_from_filename("LIVING_ROOM_SCENE2_put_both_the_alphabet_soup_in_the_basket_demo.hdf5") \
        == "put both the alphabet soup in the basket"


def test_root_suite_and_file_paths(synthetic_root):
    root = synthetic_root
    assert len(data.find_task_files(root)) == 4
    assert len(data.find_task_files(root / "libero_object")) == 2
    one = data.find_task_files(root)[0]
    assert data.find_task_files(one) == [one]
    assert len(data.LiberoData(root, suites=["libero_object"])) == 6


def test_write_read_round_trip(tmp_path):
    demos = [data.synthetic_demo(T, size=24, seed=T) for T in (7, 11)]
    for conv in ("opengl", "opencv"):
        path = data.write_task_file(tmp_path / conv / "put_the_bowl_on_the_plate_demo.hdf5", demos,
                                    image_convention=conv)
        d = data.LiberoData(path)
        for i, demo in enumerate(demos):
            ep = d.read_episode(i)
            np.testing.assert_array_equal(ep["actions"], demo["actions"])
            np.testing.assert_array_equal(ep["agentview"], demo["obs"]["agentview_rgb"])
            np.testing.assert_array_equal(ep["wrist"], demo["obs"]["eye_in_hand_rgb"])
            o = demo["obs"]
            np.testing.assert_allclose(ep["proprio"], np.concatenate([o["ee_pos"], o["ee_ori"], o["gripper_states"]], -1))
            assert ep["instruction"] == "put the bowl on the plate"
        with h5py.File(path) as f:
            assert f["data"].attrs["num_demos"] == 2 and f["data"].attrs["total"] == 18
            assert f["data/demo_1/dones"][-1] == 1 and f["data/demo_1/dones"][:-1].sum() == 0
            stored = f["data/demo_0/obs/agentview_rgb"][()]
        expect = demos[0]["obs"]["agentview_rgb"]
        np.testing.assert_array_equal(stored, expect[:, ::-1, ::-1] if conv == "opengl" else expect)
    assert not list(tmp_path.rglob("*.tmp"))  # atomic write leaves no temporary file


# ---------------------------------------------------------------- validation

def _edit(path, fn):
    with h5py.File(path, "a") as f:
        fn(f)


@pytest.mark.parametrize("case, words", [
    ("missing_data", ["'data'", "missing group"]),
    ("no_demos", ["no demo_<i>"]),
    ("missing_key", ["demo_1", "obs/agentview_rgb", "missing"]),
    ("wrong_dtype", ["demo_0", "obs/eye_in_hand_rgb", "uint8", "float32"]),
    ("wrong_shape", ["demo_0", "actions", "(T, 7)", "(12, 6)"]),
    ("length_mismatch", ["demo_1", "obs/ee_pos", "(9, 3)", "(5, 3)"]),
    ("empty", ["demo_0", "actions", "no steps"]),
    ("nan", ["demo_1", "actions", "NaN/inf", "step 4, dim 2"]),
    ("inf", ["demo_0", "actions", "NaN/inf"]),
])
def test_validation_errors_name_file_demo_key(raw_file, case, words):
    path, _ = raw_file

    def set_(key, value):
        return lambda f: (f.__delitem__(key), f.create_dataset(key, data=value))

    edits = {
        "missing_data": lambda f: f.move("data", "other"),
        "no_demos": lambda f: [f["data"].move(k, "x" + k) for k in list(f["data"].keys())],
        "missing_key": lambda f: f.__delitem__("data/demo_1/obs/agentview_rgb"),
        "wrong_dtype": set_("data/demo_0/obs/eye_in_hand_rgb", np.zeros((12, 16, 16, 3), np.float32)),
        "wrong_shape": set_("data/demo_0/actions", np.zeros((12, 6))),
        "length_mismatch": set_("data/demo_1/obs/ee_pos", np.zeros((5, 3))),
        "empty": set_("data/demo_0/actions", np.zeros((0, 7))),
        "nan": lambda f: f["data/demo_1/actions"].__setitem__((4, 2), np.nan),
        "inf": lambda f: f["data/demo_0/actions"].__setitem__((0, 0), np.inf),
    }
    _edit(path, edits[case])
    with pytest.raises(data.DataError) as e:
        data.LiberoData(path)
    msg = str(e.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, (w, msg)


def test_inconsistent_image_sizes_across_files(tmp_path):
    write_raw(tmp_path / "s" / "a_demo.hdf5", size=16)
    write_raw(tmp_path / "s" / "b_demo.hdf5", size=20)
    with pytest.raises(data.DataError, match=r"b_demo.hdf5: demo 'demo_0', key 'obs/agentview_rgb'.*20x20.*16x16"):
        data.LiberoData(tmp_path)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(data.DataError, match="no such file"):
        data.LiberoData(tmp_path / "nope")
    with pytest.raises(data.DataError, match="no .hdf5 files"):
        data.LiberoData(tmp_path)


def test_unreadable_and_truncated_files(tmp_path):
    bad = tmp_path / "s" / "garbage_demo.hdf5"
    bad.parent.mkdir()
    bad.write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(data.DataError, match="garbage_demo.hdf5: not a readable HDF5 file"):
        data.LiberoData(bad)
    good = data.write_task_file(tmp_path / "t" / "x_demo.hdf5", [data.synthetic_demo(30, 32)])
    blob = good.read_bytes()
    for keep in (0.5, 0.9):
        cut = tmp_path / "t" / f"cut{keep}_demo.hdf5"
        cut.write_bytes(blob[: int(len(blob) * keep)])
        with pytest.raises(data.DataError, match=f"cut{keep}_demo.hdf5: not a readable HDF5 file.*the file is truncated"):
            data.LiberoData(cut)


def test_inspect_cli(synthetic_root, tmp_path):
    run = lambda *a: subprocess.run([sys.executable, str(REPO / "data.py"), "inspect", *map(str, a)],
                                    capture_output=True, text=True, timeout=120)
    r = run(synthetic_root)
    assert r.returncode == 0, r.stderr
    assert "2 suite(s), 4 task file(s), 12 demos" in r.stdout
    assert "suite libero_object" in r.stdout and "pick up object b and place it on the plate" in r.stdout
    assert r.stdout.count("3    40/  41/  42  pick up object") == 4  # demos, min/median/max length
    assert "32x32" in r.stdout and "rotated 180" in r.stdout
    blob = data.find_task_files(synthetic_root)[0].read_bytes()
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "cut_demo.hdf5").write_bytes(blob[: len(blob) // 2])
    r = run(tmp_path / "s")
    assert r.returncode == 2 and "cut_demo.hdf5" in r.stderr and "Traceback" not in r.stderr


def test_subset_keeps_the_first_demos_of_every_task(synthetic_root, tmp_path):
    """data.py subset: the first N demos of each file, the layout kept, the same arrays; never overwrites."""
    run = lambda *a: subprocess.run([sys.executable, str(REPO / "data.py"), "subset", *map(str, a)],
                                    capture_output=True, text=True, timeout=120)
    out = tmp_path / "sub"
    r = run(synthetic_root, "--out", out, "--demos-per-task", 2)
    assert r.returncode == 0, r.stderr
    full, sub = data.LiberoData(synthetic_root), data.LiberoData(out)
    assert len(sub) == 8 and len(full) == 12 and sub.instructions == full.instructions
    assert [p.relative_to(out) for p in data.find_task_files(out)] == \
        [p.relative_to(synthetic_root) for p in data.find_task_files(synthetic_root)]
    for f in data.find_task_files(out):
        with h5py.File(f) as a, h5py.File(synthetic_root / f.relative_to(out)) as b:
            assert sorted(a["data"]) == ["demo_0", "demo_1"] and a["data"].attrs["num_demos"] == 2
            assert a["data"].attrs["total"] == len(a["data/demo_0/actions"]) + len(a["data/demo_1/actions"])
            for k in ("demo_0", "demo_1"):
                assert np.array_equal(a[f"data/{k}/obs/agentview_rgb"][:], b[f"data/{k}/obs/agentview_rgb"][:])
                assert np.array_equal(a[f"data/{k}/actions"][:], b[f"data/{k}/actions"][:])
    before = data.find_task_files(out)[0].read_bytes()
    r = run(synthetic_root, "--out", out, "--demos-per-task", 1)
    assert r.returncode == 2 and "exists" in r.stderr and "Traceback" not in r.stderr
    assert data.find_task_files(out)[0].read_bytes() == before
    r = run(synthetic_root, "--out", tmp_path / "more", "--demos-per-task", 4)
    assert r.returncode == 2 and "fewer than the 4" in r.stderr


# ---------------------------------------------------------------- normalisation

def test_normalisation_round_trip(synthetic_root, tmp_path):
    d = data.LiberoData(synthetic_root)
    stats = data.compute_stats(d)
    path = data.save_stats(stats, tmp_path / "stats.json")
    stats = data.load_stats(path)
    a = d.read(0, "actions")
    s = stats["actions"]
    y = s.normalize(a)
    assert y.min() >= -1 and y.max() <= 1
    inside = ((a >= s.q01) & (a <= s.q99)).all(1)
    np.testing.assert_allclose(s.unnormalize(y)[inside], a[inside], atol=1e-9)
    np.testing.assert_array_equal(y[:, data.GRIPPER_DIM], a[:, data.GRIPPER_DIM])  # gripper passes through
    yt = s.normalize(torch.tensor(a, dtype=torch.float64))
    np.testing.assert_allclose(yt.numpy(), y)
    np.testing.assert_allclose(s.unnormalize(yt).numpy(), s.unnormalize(y))
    const = data.NormStats.fit(np.ones((10, 2)))
    assert (const.normalize(np.ones((3, 2))) == 0).all() and (const.unnormalize(np.zeros((1, 2))) == 1).all()
    with pytest.raises(data.DataError, match="missing.json: normalisation statistics not found"):
        data.load_stats(tmp_path / "missing.json")


# ---------------------------------------------------------------- sample views

def test_clip_view(synthetic_root):
    d = data.LiberoData(synthetic_root)
    v = data.ClipView(d, frames=8, span=21, image_size=16)
    assert len(v) == sum(e.length - 21 for e in d.episodes)  # every start 0..T-1-span
    x = v[0]
    assert x["clip"].shape == (8, 3, 16, 16) and x["clip"].dtype == torch.float32
    assert -1 <= x["clip"].min() and x["clip"].max() <= 1
    i, s = v.items[5]
    idx = data.clip_indices(s, d.episodes[i].length, 8, 21)
    assert idx[0] == s and idx[-1] == s + 21 and (np.diff(idx) > 0).all()
    full = data.ClipView(d, frames=8, span=21)[5]["clip"]
    np.testing.assert_allclose(full, data.frames_to_tensor(d.images(i, "agentview", idx)))
    assert v.key(5) == f"{d.episodes[i].suite}/{d.episodes[i].file.name}/{d.episodes[i].demo}:{s}" == data.clip_key(d.episodes[i], s)
    # an episode shorter than the span gives one clip that holds its last frame
    short = data.ClipView(d, frames=4, span=100)
    assert len(short) == len(d) and data.clip_indices(0, 40, 4, 100).tolist() == [0, 33, 39, 39]


def test_pretrain_view(synthetic_root):
    d = data.LiberoData(synthetic_root)
    v = data.PretrainView(d, frames=8, span=21, image_size=16, return_clip=True)
    x = v[3]
    assert x["first"].shape == x["last"].shape == (3, 16, 16)
    torch.testing.assert_close(x["first"], x["clip"][0])
    torch.testing.assert_close(x["last"], x["clip"][-1])
    assert isinstance(x["instruction"], str) and x["key"] == data.ClipView(d, 8, 21).key(3)


def test_window_view_and_padding(synthetic_root):
    d = data.LiberoData(synthetic_root)
    stats = data.compute_stats(d)
    v = data.WindowView(d, stats, N=2, l_a=5, frames=8, span=21, image_size=16, return_clip=True)
    assert len(v) == sum(e.length for e in d.episodes)  # every start 0..T-1
    x = v[0]
    assert x["keyframes"].shape == (2, 2, 3, 16, 16) and x["actions"].shape == (2, 5, 7)
    assert x["action_mask"].all() and x["keyframe_mask"].all() and x["clip"].shape == (8, 3, 16, 16)
    np.testing.assert_allclose(x["actions"].reshape(10, 7), stats["actions"].normalize(d.read(0, "actions")[:10]),
                               atol=1e-6)
    # keyframe j is the first frame of chunk j, both cameras
    torch.testing.assert_close(x["keyframes"][1, 1], data.frames_to_tensor(d.images(0, "wrist", [5]), 16)[0])
    # a window starting 3 steps before the end: 3 real steps, the rest padded and masked
    T = d.episodes[0].length
    y = v[T - 3]
    assert y["action_mask"].reshape(-1).tolist() == [True] * 3 + [False] * 7
    assert y["keyframe_mask"].tolist() == [True, False]
    assert (y["actions"].reshape(10, 7)[3:] == 0).all()
    last = np.stack([d.images(0, cam, [T - 1])[0] for cam in ("agentview", "wrist")])  # (2, H, W, 3)
    torch.testing.assert_close(y["keyframes"][1], data.frames_to_tensor(last, 16))  # padded with the last frame


def test_loader_deterministic_and_two_workers(synthetic_root):
    d = data.LiberoData(synthetic_root)
    v = data.ClipView(d, frames=4, span=9, image_size=16)
    keys = lambda seed, w: [k for b in data.make_loader(v, 16, seed=seed, workers=w) for k in b["key"]]
    k0 = keys(1, 0)
    assert k0 == keys(1, 0) and k0 != keys(2, 0)
    assert sorted(k0) == sorted(v.key(i) for i in range(len(v)))  # every window exactly once per epoch
    assert keys(1, 2) == k0  # 2 workers: same order, files reopened inside each worker
    b = next(iter(data.make_loader(v, 4, seed=1, workers=2)))
    assert b["clip"].shape == (4, 4, 3, 16, 16)


def test_progress_bar_is_quiet_in_a_log_file(monkeypatch):
    # stderr is not a terminal under pytest's capture: a bar refreshes every 30 s, not every 0.1 s ...
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    with data.progress_bar(range(3), file=io.StringIO()) as bar:
        assert bar.mininterval == 30.0
        assert bar.maxinterval == 30.0  # else tqdm's monitor thread refreshes it after 10 s
    # ... unless the user chose an interval, or it is a terminal (tqdm's default 0.1 s)
    monkeypatch.setenv("TQDM_MININTERVAL", "5")
    with data.progress_bar(range(3), file=io.StringIO()) as bar:
        assert bar.mininterval != 30.0
    monkeypatch.delenv("TQDM_MININTERVAL")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with data.progress_bar(range(3), file=io.StringIO()) as bar:
        assert bar.mininterval == 0.1
