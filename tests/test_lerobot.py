"""integrations/lerobot.py: LeRobot v3.0 (and v2.1) folders read as LIBERO data, written from HDF5 demos."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import data as D

pa = pytest.importorskip("pyarrow", reason="the LeRobot extra (requirements-lerobot.txt) is not installed")
pq = pytest.importorskip("pyarrow.parquet")
from integrations import lerobot as L  # noqa: E402
from integrations import lerobot_export as W  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def marked_demo(T, size, seed):
    """A demo whose frames are told apart by a bright bar at row (t % size): any off-by-one in frame
    lookup (or a flipped image) shows."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    base = (np.stack([yy, xx, (yy + xx) / 2], -1) * 60 + rng.integers(0, 40, 3)).astype(np.uint8)  # smooth
    frames = np.repeat(base[None], T, 0)
    for t in range(T):
        frames[t, (t * 3) % size, :, :] = 255
        frames[t, :, : size // 4, 0] = (t * 7) % 256
    frames[:, 0, 0] = [255, 0, 0]  # a top-left marker: orientation
    return {"actions": np.clip(rng.normal(0, 0.3, (T, 7)), -1, 1).round(4),
            "obs": {"agentview_rgb": frames, "eye_in_hand_rgb": frames[:, ::-1].copy(),
                    "ee_pos": rng.normal(0, 0.1, (T, 3)), "ee_ori": rng.normal(0, 1, (T, 3)),
                    "gripper_states": rng.uniform(0, 0.04, (T, 2))}}


@pytest.fixture(scope="module")
def hdf5_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("h5")
    for k, name in enumerate(["pick_up_the_ketchup_and_place_it_in_the_basket", "open_the_top_drawer"]):
        D.write_task_file(root / "libero_object" / f"{name}_demo.hdf5",
                          [marked_demo(30 + 3 * d, 32, 10 * k + d) for d in range(3)])
    return root


@pytest.fixture(scope="module")
def exported(hdf5_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("lr")
    return {"png": W.export(hdf5_root, out / "png", progress=False),
            "video": W.export(hdf5_root, out / "video", video=True, progress=False)}


def test_png_round_trip_same_windows(hdf5_root, exported):
    h, l = D.open_data(hdf5_root), D.open_data(exported["png"])
    assert isinstance(l, L.LeRobotData) and len(l) == len(h) == 6
    assert [e.length for e in l.episodes] == [e.length for e in h.episodes]       # episode boundaries
    assert [e.instruction for e in l.episodes] == [e.instruction for e in h.episodes]
    stats = D.compute_stats(h)
    wh, wl = D.WindowView(h, stats, N=2, l_a=5, frames=4, span=10), D.WindowView(l, stats, N=2, l_a=5, frames=4, span=10)
    assert len(wh) == len(wl)
    for idx in (0, 7, len(wh) - 1):
        a, b = wh[idx], wl[idx]
        for k, v in a.items():
            if k in ("actions", "proprio"):   # LeRobot stores them as float32
                np.testing.assert_allclose(np.asarray(v), np.asarray(b[k]), atol=1e-5, err_msg=k)
            elif k != "key":
                assert np.array_equal(np.asarray(v), np.asarray(b[k])), k   # images, masks: exactly
    assert wl[0]["key"].startswith("lerobot/png/episode_0")


def test_stored_upright_with_leroBot_columns(hdf5_root, exported):
    info = json.loads((exported["png"] / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == D.CONTROL_HZ
    assert info["features"]["observation.images.image"]["shape"] == [32, 32, 3]
    assert info["features"]["observation.state"]["shape"] == [8] and info["features"]["action"]["shape"] == [7]
    t = pq.read_table(exported["png"] / "data" / "chunk-000" / "file-000.parquet")
    for col in ("observation.images.image", "observation.images.wrist_image", "observation.state", "action",
                "timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert col in t.column_names
    import io
    from PIL import Image
    img = np.asarray(Image.open(io.BytesIO(t.column("observation.images.image")[0].as_py()["bytes"])))
    assert tuple(img[0, 0]) == (255, 0, 0)   # stored upright (the HDF5 file stores it upside down)
    eps = pq.read_table(exported["png"] / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [(e["dataset_from_index"], e["dataset_to_index"]) for e in eps[:2]] == [(0, 30), (30, 63)]
    tasks = pq.read_table(exported["png"] / "meta" / "tasks.parquet")
    assert tasks.column("task").to_pylist() == ["open the top drawer",   # the HDF5 files' sorted order
                                                "pick up the ketchup and place it in the basket"]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    stats = json.loads((exported["png"] / "meta" / "stats.json").read_text())
    assert len(stats["action"]["mean"]) == 7 and np.shape(stats["observation.images.image"]["mean"]) == (3, 1, 1)


def test_video_variant_finds_every_frame(hdf5_root, exported):
    h, l = D.open_data(hdf5_root), D.open_data(exported["video"])
    assert l.video == {"agentview": True, "wrist": True}
    for i in (0, 4):
        T = h.episodes[i].length
        ref = h.images(i, "agentview").astype(np.float64)                       # (T, H, W, 3)
        idx = [T - 1, 0, 7, 8, 20, 0]                                           # any order, repeats, the ends
        got = l.images(i, "agentview", idx).astype(np.float64)
        err = ((got[:, None] - ref[None]) ** 2).mean(axis=(2, 3, 4))            # (len(idx), T)
        assert list(err.argmin(1)) == idx                                       # each is its own frame
        psnr = 10 * np.log10(255 ** 2 / err[np.arange(len(idx)), idx])
        assert psnr.min() > 28, psnr                                            # AV1 at crf 30


def test_indices_as_liberodata_takes_them(exported, hdf5_root):
    h = D.open_data(hdf5_root)
    for kind in ("png", "video"):
        l = D.open_data(exported[kind])
        T = l.episodes[0].length
        a = l.images(0, "agentview")
        np.testing.assert_array_equal(l.images(0, "agentview", [-1, 0]), a[[T - 1, 0]])   # negatives: this episode
        np.testing.assert_array_equal(l.images(0, "agentview", slice(2, 5)), a[2:5])
        np.testing.assert_array_equal(l.images(0, "agentview", 3), a[3])                  # one int: one frame
        assert l.images(0, "agentview", []).shape == (0, 32, 32, 3) and l.read(0, "actions", []).shape == (0, 7)
        assert h.images(0, "agentview", 3).shape == l.images(0, "agentview", 3).shape
        with pytest.raises(D.DataError, match=rf"episode_0\): frame index \[{T}\] out of range for {T} frames"):
            l.images(0, "agentview", [T])                            # never the next episode's first frame


def write_v3_by_hand(root: Path, version="v3.0", fps=10, missing=None):
    """A LeRobot dataset laid out as LeRobot's LIBERO copies are (not with our writer): 3 episodes in two
    data files, PNG images, the task as pandas' unnamed index."""
    rng = np.random.default_rng(0)
    lengths, tasks = [5, 7, 4], ["put the bowl on the plate", "turn on the stove"]
    (root / "meta").mkdir(parents=True)
    img_t = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    feats = {"observation.images.image": {"dtype": "image", "shape": [8, 8, 3], "names": ["height", "width", "channel"]},
             "observation.images.wrist_image": {"dtype": "image", "shape": [8, 8, 3], "names": None},
             "observation.state": {"dtype": "float32", "shape": [8]}, "action": {"dtype": "float32", "shape": [7]}}
    rows, meta, index = {0: [], 1: []}, [], 0
    for e, T in enumerate(lengths):
        f = 0 if e < 2 else 1
        for t in range(T):
            img = np.full((8, 8, 3), 10 * e + t, np.uint8)
            r = {"observation.images.image": {"bytes": W._png(img), "path": None},
                 "observation.images.wrist_image": {"bytes": W._png(255 - img), "path": None},
                 "observation.state": rng.normal(size=8).tolist(), "action": rng.uniform(-1, 1, 7).tolist(),
                 "timestamp": t / fps, "frame_index": t, "episode_index": e, "index": index, "task_index": e % 2}
            rows[f].append({k: v for k, v in r.items() if k != missing})
            index += 1
        meta.append({"episode_index": e, "tasks": [tasks[e % 2]], "length": T, "data/chunk_index": 0,
                     "data/file_index": f})
    if version == "v3.0":
        for f, rs in rows.items():
            (root / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rs).cast(pa.Table.from_pylist(rs).schema.set(
                0, pa.field("observation.images.image", img_t))) if missing != "observation.images.image"
                else pa.Table.from_pylist(rs), root / f"data/chunk-000/file-{f:03d}.parquet")
        (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(meta), root / "meta/episodes/chunk-000/file-000.parquet")
        pq.write_table(pa.table({"task_index": [0, 1], "__index_level_0__": tasks}), root / "meta/tasks.parquet")
        data_path = L.DATA_PATH
    else:  # v2.1: one parquet per episode, JSON-lines metadata
        for e in range(len(lengths)):
            (root / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
            rs = [r for f in rows.values() for r in f if r["episode_index"] == e]
            pq.write_table(pa.Table.from_pylist(rs), root / f"data/chunk-000/episode_{e:06d}.parquet")
        (root / "meta" / "episodes.jsonl").write_text("".join(json.dumps(m) + "\n" for m in meta))
        (root / "meta" / "tasks.jsonl").write_text("".join(json.dumps({"task_index": i, "task": t}) + "\n"
                                                           for i, t in enumerate(tasks)))
        data_path = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
    (root / "meta" / "info.json").write_text(json.dumps({"codebase_version": version, "fps": fps, "features": feats,
                                                         "data_path": data_path, "video_path": None}))
    return root


@pytest.mark.parametrize("version", ["v3.0", "v2.1"])
def test_reads_a_dataset_not_written_by_us(tmp_path, version):
    d = D.open_data(write_v3_by_hand(tmp_path / "ds", version))
    assert [e.length for e in d.episodes] == [5, 7, 4]
    assert [e.instruction for e in d.episodes] == ["put the bowl on the plate", "turn on the stove",
                                                   "put the bowl on the plate"]
    assert d.images(2, "agentview").shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(d.images(2, "agentview", [3, 0])[:, 0, 0, 0], [23, 20])   # 2nd data file
    np.testing.assert_array_equal(d.images(1, "wrist", [6])[0, 0, 0], [255 - 16] * 3)
    assert d.proprio(1).shape == (7, 8) and d.read(1, "actions").shape == (7, 7)


def test_reads_v21_with_one_video_per_episode(tmp_path):
    """v2.1 as LeRobot's older LIBERO copies: one parquet and one MP4 per episode, names from the templates."""
    root, fps = tmp_path / "v21", 10
    tasks, meta = ["open the drawer"], []
    frames = {e: marked_demo(12 + e, 64, e)["obs"]["agentview_rgb"] for e in range(2)}
    for e, imgs in frames.items():
        T = len(imgs)
        for key in ("observation.images.image", "observation.images.wrist_image"):
            w = W._VideoWriter(root / f"videos/chunk-000/{key}/episode_{e:06d}.mp4", fps, (64, 64))
            w.write(imgs if key.endswith("image") else imgs[:, ::-1])
            w.close()
        (root / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"observation.state": [[0.0] * 8] * T, "action": [[0.1] * 7] * T,
                                 "timestamp": [t / fps for t in range(T)], "frame_index": list(range(T)),
                                 "episode_index": [e] * T, "index": list(range(T)), "task_index": [0] * T}),
                       root / f"data/chunk-000/episode_{e:06d}.parquet")
        meta.append({"episode_index": e, "tasks": tasks, "length": T})
    (root / "meta").mkdir()
    (root / "meta" / "episodes.jsonl").write_text("".join(json.dumps(m) + "\n" for m in meta))
    (root / "meta" / "tasks.jsonl").write_text(json.dumps({"task_index": 0, "task": tasks[0]}) + "\n")
    cam = {"dtype": "video", "shape": [64, 64, 3], "names": ["height", "width", "channel"]}
    (root / "meta" / "info.json").write_text(json.dumps({
        "codebase_version": "v2.1", "fps": fps, "chunks_size": 1000,
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": {"observation.images.image": cam, "observation.images.wrist_image": cam,
                     "observation.state": {"dtype": "float32", "shape": [8]},
                     "action": {"dtype": "float32", "shape": [7]}}}))
    d = D.open_data(root)
    assert [e.length for e in d.episodes] == [12, 13] and d.video["agentview"]
    ref = frames[1].astype(np.float64)
    got = d.images(1, "agentview", [12, 0, 5]).astype(np.float64)
    assert list(((got[:, None] - ref[None]) ** 2).mean(axis=(2, 3, 4)).argmin(1)) == [12, 0, 5]


def test_clear_errors(tmp_path, exported):
    with pytest.raises(D.DataError, match=r"file-000.parquet: missing column 'action'"):
        D.open_data(write_v3_by_hand(tmp_path / "noaction", missing="action"))
    with pytest.raises(D.DataError, match=r"missing column 'observation.images.image'"):
        D.open_data(write_v3_by_hand(tmp_path / "noimage", missing="observation.images.image"))
    cut = tmp_path / "cut"
    import shutil
    shutil.copytree(exported["png"], cut)
    f = cut / "data" / "chunk-000" / "file-000.parquet"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(D.DataError, match=r"file-000.parquet: not a readable parquet file .*truncated"):
        D.open_data(cut)
    short = tmp_path / "short"
    shutil.copytree(exported["video"], short)
    v = short / "videos" / "observation.images.image" / "chunk-000" / "file-000.mp4"
    w = W._VideoWriter(v, D.CONTROL_HZ, (32, 32))
    w.write(np.zeros((40, 32, 32, 3), np.uint8))   # 2 s of the 9.9 s its six episodes need
    w.close()
    with pytest.raises(D.DataError, match=r"file-000.mp4: 2.00 s of video, but episode_5 needs .* shorter than its "
                                          r"episodes"):
        D.open_data(short)
    bad = tmp_path / "badinfo"
    shutil.copytree(exported["png"], bad)
    info = json.loads((bad / "meta" / "info.json").read_text())
    info["features"]["action"]["shape"] = [6]
    (bad / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(D.DataError, match=r"info.json\[features\]\[action\]: expected shape \[7\], found \[6\]"):
        D.open_data(bad)
    info["features"]["action"]["shape"] = [7]
    info["features"]["observation.state"]["names"] = {"motors": [f"joint_{j}" for j in range(7)] + ["gripper"]}
    (bad / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(D.DataError, match=r"names .* are joint positions; the stages read the 8-D end-effector"):
        D.open_data(bad)
    info["features"]["observation.state"]["names"], info["fps"] = None, "ten"
    (bad / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(D.DataError, match=r"info.json: fps must be a positive number, found 'ten'"):
        D.open_data(bad)


def test_import_to_hdf5_and_cli(tmp_path, exported):
    files = W.to_hdf5(exported["png"], tmp_path / "h5", progress=False)
    assert [f.name for f in files] == ["open_the_top_drawer_demo.hdf5",
                                       "pick_up_the_ketchup_and_place_it_in_the_basket_demo.hdf5"]
    back, lr = D.open_data(tmp_path / "h5"), D.open_data(exported["png"])
    np.testing.assert_array_equal(back.images(4, "wrist"), lr.images(4, "wrist"))
    np.testing.assert_allclose(back.read(4, "actions"), lr.read(4, "actions"))
    run = lambda *a: subprocess.run([sys.executable, *a], cwd=REPO, capture_output=True, text=True)
    r = run("data.py", "inspect", str(exported["video"]))
    assert r.returncode == 0 and "LeRobot v3.0, labelled 20 fps" in r.stdout and "open the top drawer" in r.stdout
    r = run("-m", "integrations.lerobot", "export", str(tmp_path / "h5"), "--out", str(exported["png"]))
    assert r.returncode == 2 and "exists; export never overwrites" in r.stderr
    r = run("tokenizers.py", "fit", "--data", str(exported["png"]), "--out", str(tmp_path / "tok"), "--l-a", "5",
            "--text-vocab", "300", "--action-vocab", "64")
    assert r.returncode == 0, r.stderr[-500:]
    assert (tmp_path / "tok" / "stats.json").exists()
