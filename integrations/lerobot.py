"""LeRobot-format datasets in and out: read one as LIBERO data, write our HDF5 demonstrations as one.

Most people who train on LIBERO download it in LeRobot's format (`HuggingFaceVLA/libero`,
`physical-intelligence/libero`). This module reads such a folder with the same interface and validation
as `data.LiberoData`, so `data.open_data` (and with it every stage and `data.py inspect`) accepts a
LeRobot folder wherever it accepts LIBERO data; and it writes LeRobot v3.0 folders from our HDF5
demonstrations, so LeRobot's own policies can train on the data this project generates. It needs the
optional extra `pip install -r requirements-lerobot.txt` (pyarrow, and PyAV for video), not the `lerobot`
package itself (its releases need another Python and another torch).

Layout, codebase v3.0 (v2.0/v2.1, one parquet and one MP4 per episode, are read too):

    meta/info.json                 codebase_version, fps, features {key: {dtype, shape, names}},
                                   data_path / video_path templates, chunks_size
    meta/tasks.parquet             task (string; pandas' index) -> task_index
    meta/episodes/chunk-000/file-000.parquet
                                   per episode: episode_index, tasks, length, data/chunk_index,
                                   data/file_index, dataset_from_index, dataset_to_index, per camera
                                   videos/<key>/{chunk_index, file_index, from_timestamp, to_timestamp}
    data/chunk-000/file-000.parquet
                                   the features + timestamp, frame_index, episode_index, index, task_index;
                                   "image" features as struct<bytes: PNG, path>
    videos/<key>/chunk-000/file-000.mp4
                                   "video" features: several episodes per file, found by timestamp

LIBERO's keys: observation.images.image (agentview), observation.images.wrist_image, observation.state
(8: eef position, axis-angle, 2 gripper fingers; our proprio layout), action (7). Images are stored
upright (the HDF5 files store them upside down). The LeRobot copies say 10 fps, but their frames are
every 20 Hz control step (1,693 episodes, 273,465 frames: 161 frames per episode, the length of LIBERO's
demos at 20 Hz with no-op steps removed), so frames and actions line up one to one as in the HDF5 files:
l_a = 10 frames is 10 control steps, 0.5 s in the simulator, though the timestamps call it 1 s. The
reader indexes by frame, never by time; only video lookup uses time: from_timestamp + frame / info.json's fps.

Commands:
    python -m integrations.lerobot export  SRC --out DIR [--video]   # LIBERO HDF5 (or LeRobot) -> v3.0
    python -m integrations.lerobot import  SRC --out DIR             # LeRobot -> LIBERO HDF5 (fast reads)
    python data.py inspect DIR                                       # any stage: --data DIR
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

import data as D

EXTRA_HINT = "install the LeRobot extra: pip install -r requirements-lerobot.txt"

# Our name -> the LeRobot feature names tried in order (LeRobot's LIBERO copies first).
FEATURE_KEYS = {
    "agentview": ("observation.images.image", "observation.images.agentview", "observation.images.agentview_rgb",
                  "observation.images.front", "image"),
    "wrist": ("observation.images.wrist_image", "observation.images.wrist", "observation.images.eye_in_hand_rgb",
              "observation.images.image2", "wrist_image"),
    "state": ("observation.state", "state"),
    "action": ("action", "actions"),
}
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise D.DataError(f"reading or writing LeRobot datasets needs pyarrow; {EXTRA_HINT}") from None
    return pa, pq


def _av(where):
    try:
        import av
    except ImportError:
        raise D.DataError(f"{where}: video features need PyAV to decode; {EXTRA_HINT}") from None
    return av


def _read_parquet(path, columns=None):
    _, pq = _pyarrow()
    if not Path(path).is_file():
        raise D.DataError(f"{path}: missing (a LeRobot dataset of this version has it)")
    try:
        return pq.read_table(path, columns=columns)
    except Exception as e:  # noqa: BLE001 - pyarrow raises ArrowInvalid/OSError/KeyError for bad files
        raise D.DataError(f"{path}: not a readable parquet file ({type(e).__name__}: {str(e)[:160]}); it may be "
                          f"truncated — download it again") from None


def _column(table, name, path):
    if name not in table.column_names:
        raise D.DataError(f"{path}: missing column {name!r} (found {table.column_names})")
    return table.column(name)


def _hwc(feature: dict, key: str, where) -> tuple:
    """A camera feature's (H, W) from its shape and names ([H, W, 3] or [3, H, W])."""
    shape, names = list(feature.get("shape", [])), [str(n).lower() for n in (feature.get("names") or [])]
    if len(shape) != 3 or 3 not in (shape[0], shape[2]):
        raise D.DataError(f"{where}[features][{key}]: expected shape [H, W, 3], found {shape}")
    if names[:1] in (["channel"], ["channels"], ["c"]) or (shape[2] != 3 and shape[0] == 3):
        return int(shape[1]), int(shape[2])
    return int(shape[0]), int(shape[1])


_INHERITED: list = []  # decoders a forked process inherited (kept alive, never used)


class _VideoFile:
    """One MP4 (or AV1/H.264 in any container PyAV opens): frames by timestamp, decoded forward from the
    nearest keyframe (LeRobot encodes with a keyframe every 2 frames, so a seek costs a frame or two)."""

    def __init__(self, path: Path):
        av = _av(path)
        try:
            self.container = av.open(str(path))
            self.stream = self.container.streams.video[0]
        except Exception as e:  # noqa: BLE001
            raise D.DataError(f"{path}: not a readable video ({type(e).__name__}: {str(e)[:120]})") from None
        self.path = path

    def duration(self) -> float:
        s = self.stream
        if s.duration:
            return float(s.duration * s.time_base)
        return float(self.container.duration or 0) / 1e6

    def frames(self, times: np.ndarray, fps: float) -> list:
        """RGB frames (H, W, 3) uint8 at increasing timestamps (seconds)."""
        out, tol = [], 0.5 / fps
        s, it, last = self.stream, None, None
        for t in times:
            if it is None or last is None or t > last + 2.0 or t < last - tol:
                self.container.seek(int(max(t - tol, 0) / s.time_base), stream=s, backward=True, any_frame=False)
                it, last = self.container.decode(s), None
            frame = None
            for f in it:
                last = float(f.pts * s.time_base)
                if last >= t - tol:
                    frame = f
                    break
            if frame is None:
                raise D.DataError(f"{self.path}: no frame at {t:.3f} s (the video ends at {last} s); the video is "
                                  f"shorter than its episodes — encode or download it again")
            out.append(frame.to_ndarray(format="rgb24"))
        return out

    def close(self):
        self.container.close()


class LeRobotData(D.Demonstrations):
    """Every episode of one LeRobot dataset folder, validated, behind `data.LiberoData`'s interface.

    Non-image columns (actions, state) are read at construction and checked (shapes, NaN, episode
    boundaries, task indices, video lengths); images are decoded on demand: PNG bytes from the parquet's
    row groups (an LRU of the last 16 per process), or MP4 frames by timestamp. For long training runs on
    a large download, `python -m integrations.lerobot import` converts it once to HDF5 (per-frame chunks).
    """

    def __init__(self, root, progress: bool = False, keys: dict | None = None):
        self.root = Path(root)
        info_path = self.root / "meta" / "info.json"
        try:
            info = json.loads(info_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise D.DataError(f"{info_path}: not readable JSON ({e})") from None
        for k in ("codebase_version", "fps", "features"):
            if k not in info:
                raise D.DataError(f"{info_path}: missing key {k!r} (LeRobot's info.json has codebase_version, fps, "
                                  f"features, data_path, video_path)")
        self.info, self.version = info, str(info["codebase_version"])
        if self.version not in ("v2.0", "v2.1", "v3.0"):
            raise D.DataError(f"{info_path}: codebase_version {self.version!r} is not read here (v2.0, v2.1, v3.0)")
        try:
            self.fps = float(info["fps"])
            assert self.fps > 0
        except (TypeError, ValueError, AssertionError):
            raise D.DataError(f"{info_path}: fps must be a positive number, found {info['fps']!r}") from None
        feats = info["features"]
        self.keys = dict(keys or {})
        for ours, names in FEATURE_KEYS.items():
            if ours not in self.keys:
                found = [n for n in names if n in feats]
                if not found:
                    raise D.DataError(f"{info_path}: no {ours} feature (tried {list(names)}; the dataset has "
                                      f"{sorted(feats)})")
                self.keys[ours] = found[0]
        for ours, dim in (("action", D.ACTION_DIM), ("state", sum(D.PROPRIO_KEYS.values()))):
            shape = list(feats[self.keys[ours]].get("shape", []))
            if shape != [dim]:
                raise D.DataError(f"{info_path}[features][{self.keys[ours]}]: expected shape [{dim}], found {shape}")
        hw = {_hwc(feats[self.keys[c]], self.keys[c], info_path) for c in D.CAMERAS}
        if len(hw) != 1:
            raise D.DataError(f"{info_path}: the two cameras have different sizes {sorted(hw)}; all images must "
                              f"have one size")
        self.video = {c: feats[self.keys[c]].get("dtype") == "video" for c in D.CAMERAS}
        names = feats[self.keys["state"]].get("names")
        flat = [str(n).lower() for v in (names.values() if isinstance(names, dict) else [names or []]) for n in v]
        if any("joint" in n for n in flat):
            raise D.DataError(f"{info_path}[features][{self.keys['state']}]: its names {flat} are joint positions; "
                              f"the stages read the 8-D end-effector state (position, axis-angle, two fingers) "
                              f"as LeRobot's LIBERO copies store it")
        needed = ["data_path"] + (["video_path"] if any(self.video.values()) else [])
        for k in needed if self.version != "v3.0" else []:
            if not info.get(k):
                raise D.DataError(f"{info_path}: missing {k!r} (a {self.version} dataset names its files by it)")
        tasks = self._tasks()
        meta = self._episode_meta()
        self.files = [self.root]
        self.episodes, self._actions, self._state, self._rows, self._video_at = [], [], [], [], []
        by_file: dict = {}
        for m in meta:
            by_file.setdefault(self._data_file(m), []).append(m)
        it = list(by_file.items())
        if progress:
            it = D.progress_bar(it, desc="validating", unit="file")
        for path, ms in it:
            self._load_data_file(path, ms, tasks, next(iter(hw)))
        if not self.episodes:
            raise D.DataError(f"{self.root}: the episode index lists no episodes")
        self._check_videos()
        self._groups, self._starts, self._videos, self._pid = OrderedDict(), {}, OrderedDict(), None

    # --- metadata ---------------------------------------------------------------------------------------

    def _tasks(self) -> dict:
        if self.version == "v3.0":
            path = self.root / "meta" / "tasks.parquet"
            t = _read_parquet(path)
            name = "task" if "task" in t.column_names else "__index_level_0__"
            return dict(zip(_column(t, "task_index", path).to_pylist(), _column(t, name, path).to_pylist()))
        path = self.root / "meta" / "tasks.jsonl"
        rows = self._jsonl(path)
        return {int(r["task_index"]): str(r["task"]) for r in rows}

    def _jsonl(self, path) -> list:
        try:
            return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        except (OSError, json.JSONDecodeError) as e:
            raise D.DataError(f"{path}: not readable JSON lines ({e})") from None

    def _episode_meta(self) -> list[dict]:
        if self.version != "v3.0":
            path = self.root / "meta" / "episodes.jsonl"
            rows = self._jsonl(path)
            for n, r in enumerate(rows):
                if not isinstance(r, dict) or "episode_index" not in r or "length" not in r:
                    raise D.DataError(f"{path}: line {n + 1} lacks episode_index or length (found {r})")
            return sorted(rows, key=lambda r: r["episode_index"])
        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise D.DataError(f"{self.root / 'meta' / 'episodes'}: no chunk-XXX/file-XXX.parquet (v3.0 keeps the "
                              f"episode index there)")
        rows = []
        for f in files:
            t = _read_parquet(f)
            cols = [c for c in t.column_names if not c.startswith("stats/")]
            for need in ("episode_index", "length"):
                _column(t, need, f)
            rows += t.select(cols).to_pylist()
        return sorted(rows, key=lambda r: r["episode_index"])

    def _fill(self, key: str, default: str | None, **fields) -> Path:
        """info.json's path template `key` with `fields` -> a path in the dataset."""
        tmpl = self.info.get(key) or default
        try:
            return self.root / tmpl.format(**fields)
        except (KeyError, IndexError, ValueError, AttributeError) as e:
            raise D.DataError(f"{self.root / 'meta' / 'info.json'}: {key} {tmpl!r} does not fill from "
                              f"{sorted(fields)} ({type(e).__name__}: {e})") from None

    def _data_file(self, m: dict) -> Path:
        if self.version == "v3.0":
            return self._fill("data_path", DATA_PATH, chunk_index=m.get("data/chunk_index", 0),
                              file_index=m.get("data/file_index", 0))
        chunk = m["episode_index"] // int(self.info.get("chunks_size", 1000))
        return self._fill("data_path", None, episode_chunk=chunk, episode_index=m["episode_index"])

    # --- validation -------------------------------------------------------------------------------------

    def _load_data_file(self, path: Path, metas: list[dict], tasks: dict, image_hw):
        a_key, s_key = self.keys["action"], self.keys["state"]
        _, pq = _pyarrow()
        if not path.is_file():
            raise D.DataError(f"{path}: missing (the episode index of episode {metas[0]['episode_index']} points here)")
        try:
            names = pq.ParquetFile(path).schema_arrow.names
        except Exception as e:  # noqa: BLE001
            raise D.DataError(f"{path}: not a readable parquet file ({type(e).__name__}: {str(e)[:160]}); it may "
                              f"be truncated — download it again") from None
        for c in D.CAMERAS:
            if not self.video[c] and self.keys[c] not in names:
                raise D.DataError(f"{path}: missing column {self.keys[c]!r} (an image feature in info.json; found "
                                  f"{names})")
        want = [a_key, s_key, "episode_index", "frame_index", "task_index"]
        t = _read_parquet(path, [c for c in want if c in names])
        cols = {c: _column(t, c, path) for c in (a_key, s_key, "episode_index", "frame_index", "task_index")}
        ep_idx = cols["episode_index"].to_numpy()
        frame = cols["frame_index"].to_numpy()
        try:
            action = np.asarray(cols[a_key].to_pylist(), np.float64)
            state = np.asarray(cols[s_key].to_pylist(), np.float64)
        except (TypeError, ValueError):
            raise D.DataError(f"{path}: columns {a_key!r}/{s_key!r} hold null or ragged values; expected "
                              f"{D.ACTION_DIM} and 8 numbers per frame") from None
        if action.ndim != 2 or action.shape[1:] != (D.ACTION_DIM,):
            raise D.DataError(f"{path}: column {a_key!r}: expected (N, {D.ACTION_DIM}) values, found {action.shape}")
        if state.ndim != 2 or state.shape[1:] != (sum(D.PROPRIO_KEYS.values()),):
            raise D.DataError(f"{path}: column {s_key!r}: expected (N, 8) values, found {state.shape}")
        task_col = cols["task_index"].to_numpy()
        for m in metas:
            e = int(m["episode_index"])
            rows = np.flatnonzero(ep_idx == e)
            where = f"{path} (episode {e})"
            if len(rows) != int(m["length"]):
                raise D.DataError(f"{where}: {len(rows)} frames in the data, but the episode index says length "
                                  f"{m['length']}; the file is incomplete — download it again")
            if len(rows) == 0:
                raise D.DataError(f"{where}: the episode has no frames")
            rows = rows[np.argsort(frame[rows], kind="stable")]
            if not np.array_equal(frame[rows], np.arange(len(rows))):
                raise D.DataError(f"{where}: frame_index is not 0..{len(rows) - 1} (the episode's rows have a gap "
                                  f"or a duplicate)")
            for name, x in ((a_key, action[rows]), (s_key, state[rows])):
                bad = ~np.isfinite(x)
                if bad.any():
                    step, dim = np.argwhere(bad)[0]
                    raise D.DataError(f"{where}: column {name!r}: {int(bad.sum())} NaN/inf values, the first at "
                                      f"frame {step}, dim {dim}; expected finite values")
            ti = int(task_col[rows[0]])
            if ti not in tasks:
                raise D.DataError(f"{where}: task_index {ti} is not in meta/tasks ({len(tasks)} tasks)")
            text = str(tasks[ti]).strip()
            self.episodes.append(D.Episode(self.root, f"episode_{e}", len(rows), text, text, "lerobot", False,
                                           tuple(image_hw)))
            self._actions.append(action[rows])
            self._state.append(state[rows])
            self._rows.append((path, rows))
            self._video_at.append({c: self._video_span(m, c) for c in D.CAMERAS if self.video[c]})

    def _video_span(self, m: dict, camera: str):
        key = self.keys[camera]
        if self.version == "v3.0":
            for need in ("chunk_index", "file_index", "from_timestamp"):
                if f"videos/{key}/{need}" not in m:
                    raise D.DataError(f"{self.root}/meta/episodes: missing column videos/{key}/{need} (a video "
                                      f"feature's episodes are found by it)")
            path = self._fill("video_path", VIDEO_PATH, video_key=key, chunk_index=m[f"videos/{key}/chunk_index"],
                              file_index=m[f"videos/{key}/file_index"])
            return path, float(m[f"videos/{key}/from_timestamp"])
        chunk = m["episode_index"] // int(self.info.get("chunks_size", 1000))
        return self._fill("video_path", None, episode_chunk=chunk, video_key=key,
                          episode_index=m["episode_index"]), 0.0

    def _check_videos(self):
        """Every video file exists, has the feature's size, and is long enough for the episodes in it."""
        need: dict = {}
        for ep, spans in zip(self.episodes, self._video_at):
            for c, (path, start) in spans.items():
                end = start + ep.length / self.fps
                if end > need.get(path, (0, None))[0]:
                    need[path] = (end, ep.demo)
        for path, (end, demo) in need.items():
            if not path.is_file():
                raise D.DataError(f"{path}: missing (the episode index of {demo} points here)")
            v = _VideoFile(path)
            try:
                got, hw = v.duration(), (v.stream.codec_context.height, v.stream.codec_context.width)
            finally:
                v.close()
            if got + 0.5 / self.fps < end:
                raise D.DataError(f"{path}: {got:.2f} s of video, but {demo} needs frames up to {end:.2f} s at "
                                  f"{self.fps:g} fps; the video is shorter than its episodes — encode or download "
                                  f"it again")
            if tuple(hw) != tuple(self.image_hw):
                raise D.DataError(f"{path}: frames are {hw[0]}x{hw[1]}, but info.json says {self.image_hw}")

    def describe(self) -> str:
        kinds = ", ".join(f"{c} = {self.keys[c]} ({'video' if self.video[c] else 'PNG in parquet'})"
                          for c in D.CAMERAS)
        return (f"LeRobot {self.version}, labelled {self.fps:g} fps (frames read as control steps); {kinds}; "
                f"state = {self.keys['state']}, action = {self.keys['action']}")

    # --- reading ----------------------------------------------------------------------------------------

    def __getstate__(self):  # open files and caches stay in their process
        state = dict(self.__dict__)
        state["_groups"], state["_starts"], state["_videos"], state["_pid"] = OrderedDict(), {}, OrderedDict(), None
        return state

    def _fresh(self):
        if self._pid != os.getpid():
            # a forked worker inherits its parent's open decoders: park them (closing or freeing them here
            # would run FFmpeg's teardown on threads that did not survive the fork)
            _INHERITED.extend(self._videos.values())
            self._groups, self._starts, self._videos, self._pid = OrderedDict(), {}, OrderedDict(), os.getpid()

    def _row_group(self, path: Path, key: str, group: int):
        self._fresh()
        k = (path, key, group)
        if k in self._groups:
            self._groups.move_to_end(k)
            return self._groups[k]
        _, pq = _pyarrow()
        try:
            col = pq.ParquetFile(path).read_row_group(group, columns=[key]).column(key).combine_chunks()
        except Exception as e:  # noqa: BLE001
            raise D.DataError(f"{path}: column {key!r}, row group {group}: read failed ({str(e)[:120]})") from None
        self._groups[k] = col.field("bytes") if hasattr(col, "field") else col
        while len(self._groups) > 16:
            self._groups.popitem(last=False)
        return self._groups[k]

    def _png_frames(self, i: int, camera: str, index: np.ndarray) -> np.ndarray:
        path, rows = self._rows[i]
        key = self.keys[camera]
        starts = self._group_starts(path)
        out = []
        for r in rows[index]:
            g = int(np.searchsorted(starts, r, side="right") - 1)
            blob = self._row_group(path, key, g)[int(r - starts[g])].as_py()
            try:
                out.append(np.asarray(Image.open(io.BytesIO(blob)).convert("RGB")))
            except Exception as e:  # noqa: BLE001
                raise D.DataError(f"{path}: column {key!r}, row {r}: not a decodable image ({e})") from None
        return np.stack(out)

    def _group_starts(self, path: Path) -> np.ndarray:
        self._fresh()
        if path not in self._starts:
            _, pq = _pyarrow()
            md = pq.ParquetFile(path).metadata
            self._starts[path] = np.cumsum([0] + [md.row_group(g).num_rows for g in range(md.num_row_groups)])[:-1]
        return self._starts[path]

    def _video_frames(self, i: int, camera: str, index: np.ndarray) -> np.ndarray:
        self._fresh()
        path, start = self._video_at[i][camera]
        v = self._videos.get(path)
        if v is None:
            v = self._videos[path] = _VideoFile(path)
            if len(self._videos) > 8:  # 4 files per camera
                self._videos.popitem(last=False)[1].close()
        self._videos.move_to_end(path)
        uniq, inverse = np.unique(index, return_inverse=True)
        return np.stack(v.frames(start + uniq / self.fps, self.fps))[inverse]

    def read(self, i: int, key: str, index=None) -> np.ndarray:
        """`key` of episode i in LIBERO's names (all frames, or those in `index`); images upright."""
        T = self.episodes[i].length
        try:  # any index LiberoData takes: None, a slice, a list/array (negative counts from the end), one int
            idx = np.arange(T) if index is None else np.arange(T)[index if isinstance(index, slice)
                                                                  else np.asarray(index, dtype=np.int64)]
        except IndexError:
            raise D.DataError(f"{self.root} ({self.episodes[i].demo}): frame index {index} out of range for "
                              f"{T} frames") from None
        if idx.ndim == 0:
            return self.read(i, key, [int(idx)])[0]
        if key == "actions":
            return self._actions[i][idx]
        if key.startswith("obs/") and key[4:] in D.PROPRIO_KEYS:
            lo = 0
            for k, dim in D.PROPRIO_KEYS.items():
                if k == key[4:]:
                    return self._state[i][idx, lo:lo + dim]
                lo += dim
        camera = {v: k for k, v in D.CAMERAS.items()}.get(key[4:]) if key.startswith("obs/") else None
        if camera is None:
            raise D.DataError(f"{self.root}: {key!r} is not in a LeRobot dataset (it has actions, the 8-D state "
                              f"and the two cameras; simulator states are only in HDF5 files)")
        if len(idx) == 0:
            return np.zeros((0, *self.image_hw, 3), np.uint8)
        return self._video_frames(i, camera, idx) if self.video[camera] else self._png_frames(i, camera, idx)


def main(argv=None):
    p = argparse.ArgumentParser(description="LeRobot-format datasets in and out (see the module docstring).")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("export", help="LIBERO HDF5 demonstrations (or a LeRobot folder) -> a LeRobot v3.0 folder")
    s.add_argument("src", help="LIBERO-format data: a root, suite folder, task file, or a LeRobot folder")
    s.add_argument("--out", required=True, help="new folder (never overwritten)")
    s.add_argument("--video", action="store_true",
                   help="cameras as AV1 MP4s (LeRobot's default; lossy, ~10x smaller) instead of PNGs in the parquet")
    s.add_argument("--fps", type=int, default=D.CONTROL_HZ,
                   help=f"frame rate written to info.json (default {D.CONTROL_HZ}: LIBERO's control rate; frames "
                        f"are control steps)")
    s.add_argument("--file-mb", type=int, default=100, help="start a new data file past this size (MB; video: 2x)")
    s = sub.add_parser("import", help="a LeRobot folder -> LIBERO HDF5 files (<out>/lerobot/<task>_demo.hdf5)")
    s.add_argument("src", help="LeRobot dataset folder (meta/info.json inside)")
    s.add_argument("--out", required=True, help="root folder for the HDF5 files (existing files are never overwritten)")
    args = p.parse_args(argv)
    from integrations.lerobot_export import export, to_hdf5  # the writing half (not needed to read)
    try:
        if args.cmd == "export":
            if args.fps < 1 or args.file_mb < 1:
                p.error("--fps and --file-mb must be at least 1")
            print(f"wrote {export(args.src, args.out, args.video, args.fps, args.file_mb)}")
        else:
            files = to_hdf5(args.src, args.out)
            print(f"wrote {len(files)} task files under {Path(args.out) / 'lerobot'}")
    except D.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
