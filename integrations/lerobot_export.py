"""Writing LeRobot-format datasets: LIBERO HDF5 demonstrations -> a LeRobot v3.0 folder (`export`), and a
LeRobot folder -> LIBERO HDF5 files (`to_hdf5`, the command `import`). The layout, the keys and the frame
rate are described in `integrations.lerobot`, which reads such folders and holds the command line:

    python -m integrations.lerobot export SRC --out DIR [--video]
    python -m integrations.lerobot import SRC --out DIR
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import data as D
from integrations.lerobot import DATA_PATH, FEATURE_KEYS, VIDEO_PATH, LeRobotData, _av, _pyarrow

STATE_NAMES = ["eef_x", "eef_y", "eef_z", "axis_angle_x", "axis_angle_y", "axis_angle_z", "gripper_l", "gripper_r"]
ACTION_NAMES = ["dx", "dy", "dz", "drx", "dry", "drz", "gripper"]
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
CHUNKS = 1000  # files per chunk folder (info.json's chunks_size, LeRobot's default)


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _stats(x: np.ndarray) -> dict:
    """LeRobot's per-feature statistics (meta/stats.json) of (N, D) values."""
    q = {f"q{p:02d}": np.quantile(x, p / 100, axis=0).tolist() for p in (1, 10, 50, 90, 99)}
    return {"min": x.min(0).tolist(), "max": x.max(0).tolist(), "mean": x.mean(0).tolist(),
            "std": x.std(0).tolist(), "count": [len(x)], **q}


class _ImageStats:
    """Per-channel statistics in [0, 1], shaped (3, 1, 1) as LeRobot stores them for cameras, accumulated
    episode by episode (running sums: memory stays flat whatever the dataset's size)."""

    def __init__(self):
        self.n, self.frames = 0, 0
        self.sum, self.sq = np.zeros(3), np.zeros(3)
        self.lo, self.hi = np.full(3, np.inf), np.full(3, -np.inf)

    def add(self, frames: np.ndarray):  # (n, H, W, 3) uint8
        x = frames.reshape(-1, 3).astype(np.float64) / 255.0
        self.n, self.frames = self.n + len(x), self.frames + len(frames)
        self.sum, self.sq = self.sum + x.sum(0), self.sq + (x * x).sum(0)
        self.lo, self.hi = np.minimum(self.lo, x.min(0)), np.maximum(self.hi, x.max(0))

    def result(self) -> dict:
        c = lambda v: np.asarray(v).reshape(3, 1, 1).tolist()
        mean = self.sum / self.n
        return {"min": c(self.lo), "max": c(self.hi), "mean": c(mean),
                "std": c(np.sqrt(np.maximum(self.sq / self.n - mean ** 2, 0))), "count": [self.frames]}


class _VideoWriter:
    """Frames of consecutive episodes into one AV1 MP4 (LeRobot's encoding: libsvtav1, yuv420p, a keyframe
    every 2 frames, crf 30)."""

    def __init__(self, path: Path, fps: int, hw: tuple):
        av = _av(path)
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner at info level otherwise
        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream("libsvtav1", rate=fps, options={"g": "2", "crf": "30", "preset": "8"})
        self.stream.width, self.stream.height, self.stream.pix_fmt = hw[1], hw[0], "yuv420p"
        self.frames, self.av = 0, av

    def write(self, frames: np.ndarray):
        for img in frames:
            f = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            f.pts = self.frames
            self.container.mux(self.stream.encode(f))
            self.frames += 1

    def close(self):
        self.container.mux(self.stream.encode())
        self.container.close()


def _chunk_file(n: int) -> dict:
    """The n-th file of a kind -> its chunk and file index (LeRobot's rollover: CHUNKS files per chunk folder,
    so that the paths sort in the order they were written)."""
    return {"chunk_index": max(n, 0) // CHUNKS, "file_index": max(n, 0) % CHUNKS}


def _tasks_table(tasks: list[str]):
    """meta/tasks.parquet as pandas writes it (the task string is the index), so LeRobot's
    `pd.read_parquet(...).index` is the task list; pyarrow alone reads the same two columns."""
    pa, _ = _pyarrow()
    pandas_meta = {"index_columns": ["task"], "column_indexes": [], "columns": [
        {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
        {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None}],
        "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.0"}
    t = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    return t.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def export(src, out, video: bool = False, fps: int = D.CONTROL_HZ, file_mb: int = 100,
           progress: bool = True) -> Path:
    """LIBERO-format demonstrations (HDF5, or another LeRobot folder) -> a LeRobot v3.0 folder at `out`.

    One row group per episode; a new data (or video) file once the current one passes `file_mb`. Images
    as PNG in the parquet (lossless) or, with `video`, AV1 MP4s (lossy, ~10x smaller). Written into a
    temporary folder renamed to `out` at the end; an existing `out` is never touched."""
    pa, pq = _pyarrow()
    out = Path(out)
    if out.exists():
        raise D.DataError(f"{out} exists; export never overwrites (choose another --out)")
    if video:
        _av(out)
    data = D.open_data(src)
    hw = data.image_hw
    keys = {"agentview": FEATURE_KEYS["agentview"][0], "wrist": FEATURE_KEYS["wrist"][0]}
    tasks = list(dict.fromkeys(e.instruction for e in data.episodes))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([(keys[c], image_type) for c in ([] if video else D.CAMERAS)] + [
        ("observation.state", pa.list_(pa.float32(), 8)), ("action", pa.list_(pa.float32(), D.ACTION_DIM)),
        ("timestamp", pa.float32()), ("frame_index", pa.int64()), ("episode_index", pa.int64()),
        ("index", pa.int64()), ("task_index", pa.int64())])
    try:
        writer, data_file, n_data, index, episodes = None, None, -1, 0, []
        videos = {c: None for c in D.CAMERAS} if video else {}
        n_video = {c: -1 for c in videos}
        stat_rows = {"observation.state": [], "action": []}
        stat_frames = {keys[c]: _ImageStats() for c in D.CAMERAS}
        it = range(len(data))
        if progress:
            it = D.progress_bar(it, desc="exporting", unit="episode")
        for e in it:
            ep = data.read_episode(e)
            T = len(ep["actions"])
            if writer is None or data_file.stat().st_size > file_mb * 2**20:
                if writer is not None:
                    writer.close()
                n_data += 1
                data_file = tmp / DATA_PATH.format(**_chunk_file(n_data))
                data_file.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(data_file, schema)
            cols = {keys[c]: pa.array([{"bytes": _png(img), "path": None} for img in ep[c]], image_type)
                    for c in ([] if video else D.CAMERAS)}
            cols.update({
                "observation.state": pa.array(list(ep["proprio"].astype(np.float32)), pa.list_(pa.float32(), 8)),
                "action": pa.array(list(ep["actions"].astype(np.float32)), pa.list_(pa.float32(), D.ACTION_DIM)),
                "timestamp": pa.array(np.arange(T, dtype=np.float32) / fps, pa.float32()),
                "frame_index": pa.array(np.arange(T), pa.int64()), "episode_index": pa.array(np.full(T, e), pa.int64()),
                "index": pa.array(np.arange(index, index + T), pa.int64()),
                "task_index": pa.array(np.full(T, tasks.index(ep["instruction"])), pa.int64())})
            writer.write_table(pa.table(cols, schema=schema))  # one row group per episode
            where = _chunk_file(n_data)
            row = {"episode_index": e, "tasks": [ep["instruction"]], "length": T,
                   "data/chunk_index": where["chunk_index"], "data/file_index": where["file_index"],
                   "dataset_from_index": index, "dataset_to_index": index + T}
            for c in videos:
                k = keys[c]
                path = tmp / VIDEO_PATH.format(video_key=k, **_chunk_file(n_video[c]))
                if videos[c] is None or (path.exists() and path.stat().st_size > 2 * file_mb * 2**20):
                    if videos[c] is not None:
                        videos[c].close()
                    n_video[c] += 1
                    videos[c] = _VideoWriter(tmp / VIDEO_PATH.format(video_key=k, **_chunk_file(n_video[c])), fps, hw)
                where = _chunk_file(n_video[c])
                row.update({f"videos/{k}/chunk_index": where["chunk_index"], f"videos/{k}/file_index": where["file_index"],
                            f"videos/{k}/from_timestamp": videos[c].frames / fps,
                            f"videos/{k}/to_timestamp": (videos[c].frames + T) / fps})
                videos[c].write(ep[c])
            row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
            episodes.append(row)
            stat_rows["observation.state"].append(ep["proprio"])
            stat_rows["action"].append(ep["actions"])
            for c in D.CAMERAS:
                stat_frames[keys[c]].add(ep[c][::10])
            index += T
        writer.close()
        for v in videos.values():
            v.close()
        (tmp / "meta" / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(episodes), tmp / EPISODES_PATH.format(chunk_index=0, file_index=0))
        pq.write_table(_tasks_table(tasks), tmp / "meta" / "tasks.parquet")
        cam = lambda: {"dtype": "video" if video else "image", "shape": [hw[0], hw[1], 3],
                       "names": ["height", "width", "channel"],
                       **({"info": {"video.height": hw[0], "video.width": hw[1], "video.codec": "av1",
                                    "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps,
                                    "video.channels": 3, "has_audio": False}} if video else {})}
        scalar = lambda dtype: {"dtype": dtype, "shape": [1], "names": None}
        info = {"codebase_version": "v3.0", "robot_type": "panda", "total_episodes": len(episodes),
                "total_frames": index, "total_tasks": len(tasks), "chunks_size": CHUNKS,
                "data_files_size_in_mb": file_mb, "video_files_size_in_mb": 2 * file_mb, "fps": fps,
                "splits": {"train": f"0:{len(episodes)}"}, "data_path": DATA_PATH,
                "video_path": VIDEO_PATH if video else None,
                "features": {keys["agentview"]: cam(), keys["wrist"]: cam(),
                             "observation.state": {"dtype": "float32", "shape": [8], "names": STATE_NAMES},
                             "action": {"dtype": "float32", "shape": [D.ACTION_DIM], "names": ACTION_NAMES},
                             "timestamp": scalar("float32"), "frame_index": scalar("int64"),
                             "episode_index": scalar("int64"), "index": scalar("int64"),
                             "task_index": scalar("int64")}}
        (tmp / "meta" / "info.json").write_text(json.dumps(info, indent=4))
        stats = {k: _stats(np.concatenate(v)) for k, v in stat_rows.items()}
        stats.update({k: v.result() for k, v in stat_frames.items()})
        (tmp / "meta" / "stats.json").write_text(json.dumps(stats, indent=4))
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def to_hdf5(src, out, progress: bool = True) -> list[Path]:
    """A LeRobot folder -> LIBERO HDF5 files, one per task (`<out>/lerobot/<task>_demo.hdf5`), images
    decoded once: the fast path for long training runs on a large download. A task's demos are held in
    memory while its file is written (~3 GB for 50 demos at 256²)."""
    data = LeRobotData(src, progress=progress)
    out = Path(out) / "lerobot"
    by_task: dict = {}
    for i, ep in enumerate(data.episodes):
        by_task.setdefault(ep.instruction, []).append(i)
    paths = {}
    for text in by_task:  # every name checked before anything is written
        path = out / f"{re.sub(r'[^0-9A-Za-z]+', '_', text).strip('_')}_demo.hdf5"
        back = D.instruction_from_filename(path)
        if back != text:
            raise D.DataError(f"{src}: task {text!r} has no LIBERO file name that reads back as itself ({path.name} "
                              f"reads as {back!r}, and the stages train on the file name's instruction); train on "
                              f"the LeRobot folder directly")
        if path.exists() or path in paths.values():
            raise D.DataError(f"{path} exists; import never overwrites (choose another --out)")
        paths[text] = path
    files = []
    it = list(by_task.items())
    if progress:
        it = D.progress_bar(it, desc="converting", unit="task")
    for text, idx in it:
        demos = []
        for i in idx:
            ep = data.read_episode(i)
            p = ep["proprio"]
            demos.append({"actions": ep["actions"], "obs": {"agentview_rgb": ep["agentview"],
                          "eye_in_hand_rgb": ep["wrist"], "ee_pos": p[:, :3], "ee_ori": p[:, 3:6],
                          "gripper_states": p[:, 6:8]}})
        files.append(D.write_task_file(paths[text], demos, instruction=text, image_convention="opencv"))
    return files
