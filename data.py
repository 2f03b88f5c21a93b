"""LIBERO-format data: reading, writing, validation, normalisation and the three sample views.

Every CoWVLA stage trains on LIBERO demonstrations (paper Sec. 4, LIBERO setting). This module reads
the official HDF5 layout written by LIBERO's `scripts/create_dataset.py` (and the files `envs/`
writes in the same layout), rejects bad files with errors a user can act on, and serves:

    ClipView      f frames of one episode for the Latent Motion Extractor (Sec. 3.2)
    PretrainView  [instruction, first frame v^1, last frame v^f] + the clip's key (Sec. 3.3)
    WindowView    [instruction, N keyframes (both cameras), N action chunks of l_a] (Sec. 3.4)

Official layout (one file per task, `<root>/<suite>/<task_name>_demo.hdf5`):

    data                             attrs: env_name, env_args (JSON), problem_info (JSON with
                                            language_instruction), bddl_file_name, bddl_file_content,
                                            macros_image_convention, num_demos, total
    data/demo_{i}                    attrs: num_samples, model_file, init_state
    data/demo_{i}/actions            (T, 7)  float  delta eef pos (3), delta axis-angle (3), gripper
    data/demo_{i}/obs/agentview_rgb  (T, H, W, 3) uint8   third-person camera
    data/demo_{i}/obs/eye_in_hand_rgb(T, H, W, 3) uint8   wrist camera
    data/demo_{i}/obs/ee_pos         (T, 3)  ee_ori (T, 3)  gripper_states (T, 2)  (+ joint_states ...)
    data/demo_{i}/states, robot_states, rewards, dones

Image convention: files whose `data` attribute `macros_image_convention` is "opengl" store images
upside down (LIBERO's robosuite default); they are rotated 180 degrees on read (`img[::-1, ::-1]`,
what VLA codebases do). The official LIBERO downloads predate that attribute and are stored upside
down, so a *missing* attribute is treated as "opengl" too. "opencv" files are read as stored.

Instruction: the task file name with `_demo` dropped and underscores as spaces (what OpenVLA, openpi
and UniVLA train on); a leading upper-case scene prefix of libero_10/libero_90 names
("KITCHEN_SCENE3_turn_on_the_stove" -> "turn on the stove") is dropped too. The file's own
`problem_info.language_instruction` is kept as `Episode.language_instruction`.

Commands:
    python data.py inspect PATH            # summary of a download (root, suite folder or file)
    python data.py stats PATH --out FILE   # normalisation statistics (1st/99th percentiles) as JSON
    python data.py subset PATH --out DIR --demos-per-task N   # the first N demos of every task file
    python data.py bench [PATH]            # sample-view throughput (synthetic data if no PATH)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")
CAMERAS = {"agentview": "agentview_rgb", "wrist": "eye_in_hand_rgb"}  # view name -> obs key
PROPRIO_KEYS = {"ee_pos": 3, "ee_ori": 3, "gripper_states": 2}  # 8-D proprio, OpenVLA's state layout
ACTION_DIM = 7
GRIPPER_DIM = 6  # last action dimension: -1 open, +1 close (already in [-1, 1], never rescaled)
CONTROL_HZ = 20


class DataError(ValueError):
    """A dataset problem a user can act on: names the file, the demo, the key, expected vs found."""


def _where(path, demo=None, key=None) -> str:
    s = str(path)
    if demo is not None:
        s += f": demo '{demo}'"
    if key is not None:
        s += f", key '{key}'"
    return s


# ----------------------------------------------------------------------------------------------
# Finding files and naming tasks

def find_task_files(path) -> list[Path]:
    """A root (`<root>/<suite>/*_demo.hdf5`), one suite folder, or one file -> sorted task files."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or directory (expected a LIBERO root, a suite folder "
                        f"or a *_demo.hdf5 file)")
    if p.is_file():
        return [p]
    files = sorted(p.glob("*.hdf5")) or sorted(p.glob("*/*.hdf5"))
    if not files:
        raise DataError(f"{p}: no .hdf5 files here or one folder down (expected "
                        f"<root>/<suite>/<task>_demo.hdf5 as in LIBERO's download)")
    return files


def instruction_from_filename(path) -> str:
    """`KITCHEN_SCENE3_turn_on_the_stove_demo.hdf5` -> "turn on the stove" (see module docstring)."""
    stem = Path(path).name
    for suffix in (".hdf5", ".h5"):
        stem = stem[: -len(suffix)] if stem.endswith(suffix) else stem
    stem = re.sub(r"_demo$", "", stem)
    words = stem.split("_")
    while len(words) > 1 and re.fullmatch(r"[A-Z0-9]+", words[0]) and any(c.isupper() for c in words[0]):
        words = words[1:]  # scene prefix such as LIVING_ROOM_SCENE2
    return " ".join(w for w in words if w)


def suite_of(path) -> str:
    return Path(path).parent.name


# ----------------------------------------------------------------------------------------------
# Writing (used by envs/; written files read back identically)

def write_task_file(path, demos: list[dict], *, instruction: str | None = None,
                    language_instruction: str | None = None, problem_name: str = "",
                    domain_name: str = "", env_name: str = "", env_args: dict | None = None,
                    bddl_file_name: str = "", bddl_file_content: str = "",
                    image_convention: str = "opengl", compression: str | None = "gzip") -> Path:
    """Write demonstrations in LIBERO's official layout; the file is written atomically.

    Each demo is a dict with
        actions   (T, 7) float
        obs       dict: agentview_rgb, eye_in_hand_rgb (T, H, W, 3) uint8 *upright* (as `read_demo`
                  returns them); ee_pos (T, 3), ee_ori (T, 3), gripper_states (T, 2); optional
                  joint_states (T, 7), ee_states (T, 6) (default: ee_pos ++ ee_ori)
        optional  states (T, D), robot_states (T, 9), rewards (T,), dones (T,) (default: 1 at the
                  last step), model_file (str), init_state (D,)
    With `image_convention="opengl"` images are stored upside down, as LIBERO stores them.
    `instruction` defaults to the one the file name implies.
    """
    path = Path(path)
    if image_convention not in ("opengl", "opencv"):
        raise ValueError(f"image_convention must be 'opengl' or 'opencv', got {image_convention!r}")
    language_instruction = language_instruction or instruction or instruction_from_filename(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    total = 0
    try:
        with h5py.File(tmp, "w") as f:
            grp = f.create_group("data")
            for i, demo in enumerate(demos):
                actions = np.asarray(demo["actions"], dtype=np.float64)  # (T, 7)
                T = len(actions)
                g = grp.create_group(f"demo_{i}")
                g.create_dataset("actions", data=actions)
                obs = dict(demo["obs"])
                obs.setdefault("ee_states", np.concatenate([obs["ee_pos"], obs["ee_ori"]], -1))
                for key, value in obs.items():
                    value = np.asarray(value)
                    if key in CAMERAS.values():
                        if image_convention == "opengl":
                            value = value[:, ::-1, ::-1]  # (T, H, W, 3) stored upside down
                        g.create_dataset(f"obs/{key}", data=np.ascontiguousarray(value, np.uint8),
                                         chunks=(1,) + value.shape[1:], compression=compression)
                    else:
                        g.create_dataset(f"obs/{key}", data=value.astype(np.float64))
                dones = np.zeros(T, np.uint8)
                dones[-1] = 1
                g.create_dataset("dones", data=np.asarray(demo.get("dones", dones), np.uint8))
                g.create_dataset("rewards", data=np.asarray(demo.get("rewards", dones), np.uint8))
                g.create_dataset("states", data=np.asarray(demo.get("states", np.zeros((T, 0))), np.float64))
                g.create_dataset("robot_states",
                                 data=np.asarray(demo.get("robot_states", np.zeros((T, 9))), np.float64))
                g.attrs["num_samples"] = T
                g.attrs["model_file"] = demo.get("model_file", "")
                g.attrs["init_state"] = np.asarray(demo.get("init_state", np.zeros(0)), np.float64)
                total += T
            grp.attrs["env_name"] = env_name
            grp.attrs["env_args"] = json.dumps(env_args or {})
            grp.attrs["problem_info"] = json.dumps({"problem_name": problem_name,
                                                    "domain_name": domain_name,
                                                    "language_instruction": language_instruction})
            grp.attrs["bddl_file_name"] = bddl_file_name
            grp.attrs["bddl_file_content"] = bddl_file_content
            grp.attrs["macros_image_convention"] = image_convention
            grp.attrs["num_demos"] = len(demos)
            grp.attrs["total"] = total
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a dataset is meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


# ----------------------------------------------------------------------------------------------
# Reading and validation

@dataclass
class Episode:
    """One demonstration: where it lives and what it is (no arrays; those are read lazily)."""
    file: Path
    demo: str                  # "demo_0"
    length: int                # T
    instruction: str           # from the file name (what the stages train on)
    language_instruction: str  # the file's problem_info.language_instruction
    suite: str
    flip: bool                 # stored upside down ("opengl")
    image_hw: tuple            # (H, W)


def _demo_sort_key(name: str):
    m = re.search(r"(\d+)$", name)
    return (0, int(m.group(1))) if m else (1, name)


def _validate_demo(path, name, g, image_hw):
    """Check one demo group; returns (T, (H, W)). Reads only actions (to find NaN/inf)."""
    def need(key):
        if key not in g:
            raise DataError(f"{_where(path, name, key)}: missing (LIBERO's layout has "
                            f"data/{name}/{key}; found keys {sorted(g.keys())})")
        if not isinstance(g[key], h5py.Dataset):
            raise DataError(f"{_where(path, name, key)}: expected a dataset, found a group")
        return g[key]

    actions = need("actions")
    if actions.ndim != 2 or actions.shape[1] != ACTION_DIM or actions.dtype.kind != "f":
        raise DataError(f"{_where(path, name, 'actions')}: expected shape (T, {ACTION_DIM}) float, "
                        f"found {actions.shape} {actions.dtype}")
    T = actions.shape[0]
    if T == 0:
        raise DataError(f"{_where(path, name, 'actions')}: the demo has no steps (T = 0)")
    for key in CAMERAS.values():
        d = need(f"obs/{key}")
        if d.ndim != 4 or d.shape[0] != T or d.shape[3] != 3 or d.dtype != np.uint8:
            raise DataError(f"{_where(path, name, 'obs/' + key)}: expected shape ({T}, H, W, 3) "
                            f"uint8 (T from actions), found {d.shape} {d.dtype}")
        if image_hw is None:
            image_hw = d.shape[1:3]
        elif tuple(d.shape[1:3]) != tuple(image_hw):
            raise DataError(f"{_where(path, name, 'obs/' + key)}: images are {d.shape[1]}x{d.shape[2]} "
                            f"but earlier images in this dataset are {image_hw[0]}x{image_hw[1]}; "
                            f"all images must have one size")
    for key, dim in PROPRIO_KEYS.items():
        d = need(f"obs/{key}")
        if d.shape != (T, dim) or d.dtype.kind not in "fi":
            raise DataError(f"{_where(path, name, 'obs/' + key)}: expected shape ({T}, {dim}) float, "
                            f"found {d.shape} {d.dtype}")
    try:
        a = actions[()]
    except OSError as e:
        raise DataError(f"{_where(path, name, 'actions')}: cannot be read ({e}); the file is "
                        f"damaged — download it again") from None
    bad = ~np.isfinite(a)
    if bad.any():
        step, dim = np.argwhere(bad)[0]
        raise DataError(f"{_where(path, name, 'actions')}: {int(bad.sum())} NaN/inf values, the "
                        f"first at step {step}, dim {dim}; expected finite actions")
    return T, tuple(int(x) for x in image_hw)


def scan_file(path, image_hw=None) -> list[Episode]:
    """Open and validate one task file; returns its episodes. Raises DataError on any problem."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, RuntimeError) as e:
        hint = "the file is truncated" if "truncated" in str(e) else "it may be truncated or not HDF5"
        raise DataError(f"{path}: not a readable HDF5 file ({e}); {hint} — download it again") from None
    with f:
        if "data" not in f or not isinstance(f["data"], h5py.Group):
            raise DataError(f"{_where(path, key='data')}: missing group (LIBERO files keep demos "
                            f"under data/demo_<i>; found {sorted(f.keys())})")
        data = f["data"]
        names = sorted((k for k in data.keys() if k.startswith("demo")), key=_demo_sort_key)
        if not names:
            raise DataError(f"{_where(path, key='data')}: no demo_<i> groups (found {sorted(data.keys())})")
        conv = data.attrs.get("macros_image_convention", "opengl")
        conv = conv.decode() if isinstance(conv, bytes) else str(conv)
        if conv not in ("opengl", "opencv"):
            raise DataError(f"{_where(path, key='data.attrs[macros_image_convention]')}: expected "
                            f"'opengl' or 'opencv', found {conv!r}")
        try:
            info = json.loads(data.attrs.get("problem_info", "{}"))
            language = str(info.get("language_instruction", "")).strip()
        except (json.JSONDecodeError, TypeError, AttributeError):
            language = ""
        instruction = instruction_from_filename(path)
        episodes = []
        for name in names:
            T, image_hw = _validate_demo(path, name, data[name], image_hw)
            episodes.append(Episode(path, name, T, instruction, language or instruction,
                                    suite_of(path), conv == "opengl", image_hw))
    return episodes


class Demonstrations:
    """What every stage reads: validated `episodes` and `read(i, key, index)` in LIBERO's key names
    ("actions", "obs/agentview_rgb", "obs/eye_in_hand_rgb", "obs/ee_pos", ...; images upright).
    Two sources: `LiberoData` (HDF5 files) and `integrations.lerobot.LeRobotData` (a LeRobot folder);
    `open_data` picks the one a path holds."""
    episodes: list[Episode]
    files: list[Path]

    def __len__(self):
        return len(self.episodes)

    @property
    def image_hw(self) -> tuple:
        return self.episodes[0].image_hw

    @property
    def instructions(self) -> list[str]:
        return sorted({e.instruction for e in self.episodes})

    def read(self, i: int, key: str, index=None) -> np.ndarray:
        raise NotImplementedError

    def images(self, i, camera="agentview", index=None) -> np.ndarray:
        return self.read(i, f"obs/{CAMERAS[camera]}", index)  # (n, H, W, 3) uint8 upright

    def model_file(self, i: int) -> str:
        """The demo's simulator model (MJCF/XML); "" when the source has none."""
        return ""

    def proprio(self, i, index=None) -> np.ndarray:
        return np.concatenate([self.read(i, f"obs/{k}", index) for k in PROPRIO_KEYS], -1)  # (n, 8)

    def read_episode(self, i: int) -> dict:
        return {"actions": self.read(i, "actions"),           # (T, 7)
                "agentview": self.images(i, "agentview"),     # (T, H, W, 3)
                "wrist": self.images(i, "wrist"),             # (T, H, W, 3)
                "proprio": self.proprio(i),                   # (T, 8)
                "instruction": self.episodes[i].instruction}


def is_lerobot(path) -> bool:
    """A LeRobot dataset folder (`meta/info.json` inside) rather than LIBERO HDF5 files."""
    return (Path(path) / "meta" / "info.json").is_file()


def open_data(paths, suites: list[str] | None = None, progress: bool = False) -> Demonstrations:
    """LIBERO HDF5 data (a root, suite folder, file or a list of those) or one LeRobot dataset folder."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    lerobot = [p for p in paths if is_lerobot(p)]
    if not lerobot:
        return LiberoData(paths, suites, progress)
    if len(paths) > 1:
        raise DataError(f"{lerobot[0]}: a LeRobot dataset is read on its own (got {len(paths)} paths); "
                        f"merge them first or convert with `python -m integrations.lerobot import`")
    if suites:
        raise DataError(f"{lerobot[0]}: --suites selects LIBERO suite folders; a LeRobot dataset has none")
    from integrations.lerobot import LeRobotData
    return LeRobotData(lerobot[0], progress=progress)


class LiberoData(Demonstrations):
    """All episodes under a path (root, suite folder, single file or a list of those), validated.

    Validation happens here, before any training step, so a bad file can never crash an epoch.
    HDF5 files are opened lazily and once per process (safe with DataLoader workers).
    """

    def __init__(self, paths, suites: list[str] | None = None, progress: bool = False):
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        files = [f for p in paths for f in find_task_files(p)]
        if suites:
            files = [f for f in files if suite_of(f) in suites]
            if not files:
                raise DataError(f"{paths}: no task files in suites {suites}")
        self.files = files
        self.episodes: list[Episode] = []
        it = files
        if progress:
            it = progress_bar(files, desc="validating", unit="file")
        for f in it:
            hw = self.episodes[0].image_hw if self.episodes else None
            self.episodes.extend(scan_file(f, hw))
        self._handles: dict = {}
        self._pid = None

    def __getstate__(self):  # h5py handles do not pickle; workers reopen their own
        state = dict(self.__dict__)
        state["_handles"], state["_pid"] = {}, None
        return state

    def _group(self, ep: Episode):
        if self._pid != os.getpid():
            self._handles, self._pid = {}, os.getpid()
        f = self._handles.get(ep.file)
        if f is None:
            f = self._handles[ep.file] = h5py.File(ep.file, "r")
        return f["data"][ep.demo]

    def read(self, i: int, key: str, index=None) -> np.ndarray:
        """Read `key` of episode i (all steps, or the steps in `index`); images come upright."""
        ep = self.episodes[i]
        if index is None:
            index = slice(None)
        elif not isinstance(index, slice):
            index = np.asarray(index)
            uniq, inverse = np.unique(index, return_inverse=True)  # h5py needs increasing indices
        try:
            d = self._group(ep)[key]
            if isinstance(index, slice):
                x = d[index]
            elif d.ndim == 4:  # images: one chunk per frame; h5py's fancy indexing is ~50x slower
                x = np.stack([d[j] for j in uniq])[inverse]
            else:              # small per-step arrays: one contiguous read
                x = d[uniq[0]: uniq[-1] + 1][uniq - uniq[0]][inverse]
        except (OSError, KeyError) as e:
            raise DataError(f"{_where(ep.file, ep.demo, key)}: read failed ({e})") from None
        if ep.flip and key.startswith("obs/") and key[4:] in CAMERAS.values():
            x = x[..., ::-1, ::-1, :]  # (..., H, W, 3) rotate 180 degrees
        return x

    def model_file(self, i: int) -> str:
        """The demo's `model_file` attribute (the simulator's MJCF/XML; "" when absent)."""
        ep = self.episodes[i]
        return str(self._group(ep).attrs.get("model_file", ""))


# ----------------------------------------------------------------------------------------------
# Normalisation: per-dimension 1st/99th percentiles -> [-1, 1] (SPEC §2, what FAST expects)

@dataclass
class NormStats:
    """x -> 2 (x - q01) / (q99 - q01) - 1, clipped to [-1, 1]; dims with mask False pass through
    (clipped) — the gripper action is already -1/+1. A constant dim (q99 == q01) maps to 0."""
    q01: np.ndarray
    q99: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    mask: np.ndarray  # bool, True = rescale this dim

    def _arrays(self, x):
        if isinstance(x, torch.Tensor):
            return [torch.as_tensor(a, dtype=x.dtype, device=x.device) for a in (self.q01, self.q99, self.mask)]
        return [np.asarray(a) for a in (self.q01, self.q99, self.mask)]

    def normalize(self, x):
        lo, hi, mask = self._arrays(x)
        rng = hi - lo
        deg = rng < 1e-8
        y = 2 * (x - lo) / (rng + deg) - 1  # (..., D)
        y = y * ~deg if isinstance(x, torch.Tensor) else np.where(deg, 0.0, y)
        y = torch.where(mask.bool(), y, x) if isinstance(x, torch.Tensor) else np.where(mask, y, x)
        return y.clamp(-1, 1) if isinstance(y, torch.Tensor) else np.clip(y, -1, 1)

    def unnormalize(self, y):
        lo, hi, mask = self._arrays(y)
        y = y.clamp(-1, 1) if isinstance(y, torch.Tensor) else np.clip(y, -1, 1)
        x = (y + 1) / 2 * (hi - lo) + lo  # (..., D); a constant dim returns q01
        return torch.where(mask.bool(), x, y) if isinstance(y, torch.Tensor) else np.where(mask, x, y)

    def to_dict(self) -> dict:
        return {k: np.asarray(getattr(self, k)).tolist() for k in ("q01", "q99", "mean", "std", "mask")}

    @classmethod
    def from_dict(cls, d: dict) -> "NormStats":
        return cls(*(np.asarray(d[k], dtype=bool if k == "mask" else np.float64)
                     for k in ("q01", "q99", "mean", "std", "mask")))

    @classmethod
    def fit(cls, x: np.ndarray, passthrough=()) -> "NormStats":
        x = np.asarray(x, np.float64)  # (n, D)
        mask = np.ones(x.shape[1], bool)
        mask[list(passthrough)] = False
        q01, q99 = np.percentile(x, [1, 99], axis=0)
        return cls(q01, q99, x.mean(0), x.std(0), mask)


def compute_stats(data: LiberoData) -> dict[str, NormStats]:
    """Percentile statistics of actions (gripper passes through) and 8-D proprio over all episodes."""
    actions = np.concatenate([data.read(i, "actions") for i in range(len(data))])   # (sum T, 7)
    proprio = np.concatenate([data.proprio(i) for i in range(len(data))])          # (sum T, 8)
    return {"actions": NormStats.fit(actions, passthrough=[GRIPPER_DIM]),
            "proprio": NormStats.fit(proprio)}


def save_stats(stats: dict[str, NormStats], path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({k: v.to_dict() for k, v in stats.items()}, indent=1))
    os.replace(tmp, path)
    return path


def load_stats(path) -> dict[str, NormStats]:
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
        return {k: NormStats.from_dict(v) for k, v in raw.items()}
    except FileNotFoundError:
        raise DataError(f"{path}: normalisation statistics not found (write them with "
                        f"`python data.py stats DATA --out {path}`)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not a statistics file ({e!r}); expected keys "
                        f"actions/proprio with q01, q99, mean, std, mask") from None


def progress_bar(iterable=None, **kw):
    """A tqdm bar that, written to a log file rather than a terminal, refreshes every 30 s instead of
    ten times a second (a logged evaluation otherwise grows by a line per 0.1 s); TQDM_MININTERVAL,
    when set, still decides. maxinterval goes up with it: tqdm's monitor thread otherwise forces a
    refresh 10 s after the last one (measured: a logged evaluation printed every 10-20 s)."""
    from tqdm import tqdm
    if "TQDM_MININTERVAL" not in os.environ and not sys.stderr.isatty():
        kw.setdefault("mininterval", 30.0)
        kw.setdefault("maxinterval", 30.0)
    return tqdm(iterable, **kw)


# ----------------------------------------------------------------------------------------------
# The three sample views (torch Datasets)
#
# Sampling rule (every valid window is one item; shuffling is the DataLoader's, seeded):
#   a clip starting at step s covers steps s .. s + span; its f frames sit at
#   s + round(linspace(0, span, f)), clamped to T - 1 (an episode shorter than the span repeats its
#   last frame). Default span = 100 steps = 5 s at 20 Hz, i.e. 6 keyframes 1 s apart (the paper's
#   16 frames over 6 keyframes).
#   ClipView / PretrainView: starts s = 0, stride, ... <= max(0, T - 1 - span).
#   WindowView: starts s = 0, stride, ... <= T - 1; chunk j covers steps s + j l_a .. s + (j+1) l_a - 1,
#   keyframe j is step s + j l_a; steps past the episode end are padded and masked. Its z_m target
#   (Eq. 3's z_m(V_{1:f})) is the window's own motion: f frames over the N l_a steps from s
#   (cofinetune.py --motion-span window, the default; --motion-span clip: pre-training's 100-step clip).

def frames_to_tensor(frames: np.ndarray, size: int | tuple | None = None) -> torch.Tensor:
    """(n, H, W, 3) uint8 -> (n, 3, size, size) (or (n, 3, *size) for a (height, width) pair) float in
    [-1, 1] (bilinear, antialiased resize)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # (n, 3, H, W)
    hw = None if size is None else (tuple(size) if isinstance(size, (tuple, list)) else (size, size))
    if hw is not None and tuple(x.shape[-2:]) != hw:
        x = F.interpolate(x, size=hw, mode="bilinear", antialias=True, align_corners=False)
    return (x / 127.5 - 1.0).clamp(-1, 1)


def clip_indices(start: int, T: int, frames: int, span: int) -> np.ndarray:
    return np.minimum(start + np.round(np.linspace(0, span, frames)).astype(int), T - 1)  # (f,)


class _View(Dataset):
    def __init__(self, data: Demonstrations, frames: int, span: int, image_size: int | None,
                 stride: int, last_start):
        if frames < 2 or span < frames - 1:
            raise ValueError(f"need frames >= 2 and span >= frames - 1 (got frames={frames}, span={span})")
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.data, self.frames, self.span, self.image_size = data, frames, span, image_size
        self.items = [(i, s) for i, ep in enumerate(data.episodes)
                      for s in range(0, last_start(ep.length) + 1, stride)]  # (episode, start)

    def __len__(self):
        return len(self.items)

    def key(self, idx: int) -> str:
        """Stable name of item idx's clip: where a cached z_m for it is found."""
        i, s = self.items[idx]
        return clip_key(self.data.episodes[i], s)

    def clip(self, i: int, s: int) -> torch.Tensor:
        idx = clip_indices(s, self.data.episodes[i].length, self.frames, self.span)
        return frames_to_tensor(self.data.images(i, "agentview", idx), self.image_size)  # (f, 3, H, W)


def episode_key(ep: Episode) -> str:
    """The one name of an episode in every cache (keyframe ids, z_m exports): suite/file/demo."""
    return f"{ep.suite}/{ep.file.name}/{ep.demo}"


def clip_key(ep: Episode, start: int) -> str:
    return f"{episode_key(ep)}:{start}"


VAL_EVERY = 10  # every 10th episode is held out for validation (VQGAN, extractor, VLA stages alike)


def heldout_episodes(n: int, every: int = VAL_EVERY) -> list[int]:
    """The held-out episodes of n: i % every == every - 1, at least one (the last); every = 0: none."""
    if not every:
        return []
    return [i for i in range(n) if i % every == every - 1] or [n - 1]


class ClipView(_View):
    """Clips for the Latent Motion Extractor (Sec. 3.2): third-person camera, (f, 3, H, W) in [-1, 1]."""

    def __init__(self, data, frames=16, span=100, image_size=None, stride=1):
        super().__init__(data, frames, span, image_size, stride, lambda T: max(0, T - 1 - span))

    def __getitem__(self, idx):
        i, s = self.items[idx]
        return {"clip": self.clip(i, s), "key": self.key(idx)}


class PretrainView(_View):
    """Pre-training samples (Sec. 3.3): instruction T, first frame v^1, last frame v^f of the clip
    whose z_m is the target (found by `key`, or returned as `clip` with return_clip=True)."""

    def __init__(self, data, frames=16, span=100, image_size=None, stride=1, return_clip=False):
        super().__init__(data, frames, span, image_size, stride, lambda T: max(0, T - 1 - span))
        self.return_clip = return_clip

    def __getitem__(self, idx):
        i, s = self.items[idx]
        ends = clip_indices(s, self.data.episodes[i].length, self.frames, self.span)[[0, -1]]
        first_last = frames_to_tensor(self.data.images(i, "agentview", ends), self.image_size)  # (2, 3, H, W)
        out = {"instruction": self.data.episodes[i].instruction, "first": first_last[0],
               "last": first_last[1], "key": self.key(idx)}
        if self.return_clip:
            out["clip"] = self.clip(i, s)  # (f, 3, H, W)
        return out


class WindowView(_View):
    """Co-fine-tuning windows (Sec. 3.4): N keyframes from both cameras, N chunks of l_a normalised
    actions (keyframe j = first frame of chunk j), padding masks past the episode end."""

    def __init__(self, data, stats: dict[str, NormStats], N=2, l_a=10, frames=16, span=100,
                 image_size=None, stride=1, cameras=("agentview", "wrist"), return_clip=False):
        super().__init__(data, frames, span, image_size, stride, lambda T: T - 1)
        self.stats, self.N, self.l_a, self.cameras, self.return_clip = stats, N, l_a, cameras, return_clip

    def __getitem__(self, idx):
        i, s = self.items[idx]
        T = self.data.episodes[i].length
        steps = s + np.arange(self.N * self.l_a)                      # (N l_a,)
        valid = steps < T
        key_steps = np.minimum(steps[:: self.l_a], T - 1)             # (N,) keyframe j = chunk j's first step
        actions = np.zeros((self.N * self.l_a, ACTION_DIM), np.float32)
        actions[valid] = self.stats["actions"].normalize(self.data.read(i, "actions", steps[valid]))
        keyframes = torch.stack([frames_to_tensor(self.data.images(i, cam, key_steps), self.image_size)
                                 for cam in self.cameras], 1)        # (N, n_cam, 3, H, W)
        proprio = self.stats["proprio"].normalize(self.data.proprio(i, key_steps))  # (N, 8)
        out = {"instruction": self.data.episodes[i].instruction,
               "keyframes": keyframes,
               "keyframe_mask": torch.from_numpy(valid[:: self.l_a].copy()),                   # (N,)
               "actions": torch.from_numpy(actions).view(self.N, self.l_a, ACTION_DIM),        # (N, l_a, 7)
               "action_mask": torch.from_numpy(valid.copy()).view(self.N, self.l_a),           # (N, l_a)
               "proprio": torch.from_numpy(proprio.astype(np.float32)),
               "key": self.key(idx)}
        if self.return_clip:
            out["clip"] = self.clip(i, s)  # (f, 3, H, W)
        return out


def make_loader(view: Dataset, batch_size: int, shuffle: bool = True, seed: int = 0,
                workers: int = 0, drop_last: bool = False, sampler=None, collate_fn=None) -> DataLoader:
    """A DataLoader whose order depends only on `seed` (files are reopened inside each worker)."""
    g = torch.Generator().manual_seed(seed)
    return DataLoader(view, batch_size=batch_size, shuffle=shuffle and sampler is None, generator=g,
                      sampler=sampler, num_workers=workers, drop_last=drop_last, collate_fn=collate_fn,
                      persistent_workers=workers > 0)


# ----------------------------------------------------------------------------------------------
# Synthetic official-layout data (tests and the loader benchmark; no simulator needed)

def synthetic_demo(T: int, size: int = 128, seed: int = 0) -> dict:
    """A demo with a square moving across a gradient (so clips contain motion) and smooth actions."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([xx * 255 // size, yy * 255 // size, np.full_like(xx, 96)], -1).astype(np.uint8)
    path = np.cumsum(rng.normal(0, 1.5, (T, 2)), 0) + size / 2                 # (T, 2) square centre
    imgs = np.repeat(base[None], T, 0)                                         # (T, H, W, 3)
    for t, (cy, cx) in enumerate(np.clip(path, 8, size - 8).astype(int)):
        imgs[t, cy - 6: cy + 6, cx - 6: cx + 6] = (255, 40, 40)
    actions = np.clip(np.cumsum(rng.normal(0, 0.1, (T, 7)), 0), -1, 1)
    actions[:, GRIPPER_DIM] = np.where(np.arange(T) < T // 2, -1.0, 1.0)
    return {"actions": actions,
            "obs": {"agentview_rgb": imgs, "eye_in_hand_rgb": imgs[:, ::-1].copy(),
                    "ee_pos": rng.normal(0, 0.1, (T, 3)), "ee_ori": rng.normal(0, 0.5, (T, 3)),
                    "gripper_states": rng.uniform(0, 0.04, (T, 2)),
                    "joint_states": rng.normal(0, 1, (T, 7))}}


def write_synthetic(root, suites=("libero_spatial",), tasks=2, demos=3, T=60, size=128, seed=0) -> Path:
    root = Path(root)
    for si, suite in enumerate(suites):
        for k in range(tasks):
            name = f"pick_up_object_{'abcdefghij'[k]}_and_place_it_on_the_plate"
            write_task_file(root / suite / f"{name}_demo.hdf5",
                            [synthetic_demo(T + d, size, seed + 1000 * si + 100 * k + d) for d in range(demos)],
                            problem_name=f"{suite}_task{k}")
    return root


# ----------------------------------------------------------------------------------------------
# Command line: inspect / stats / bench

def inspect(path) -> str:
    data = open_data(path)
    eps = data.episodes
    lines = [f"{path}: {len({e.suite for e in eps})} suite(s), {len(data.files)} task file(s), "
             f"{len(eps)} demos, {sum(e.length for e in eps)} steps "
             f"({sum(e.length for e in eps) / CONTROL_HZ / 60:.1f} min at {CONTROL_HZ} Hz control)"]
    if hasattr(data, "describe"):
        lines.append(data.describe())
    conv = sorted({'opengl (stored upside down; rotated 180° on read)' if e.flip else 'opencv (upright)'
                   for e in eps})
    lines.append(f"images: {data.image_hw[0]}x{data.image_hw[1]} (agentview_rgb, eye_in_hand_rgb); "
                 f"convention: {', '.join(conv)}")
    for suite in sorted({e.suite for e in eps}):
        lines.append(f"\nsuite {suite}")
        lines.append(f"  {'demos':>5}  {'len min/med/max':>15}  instruction")
        # one row per task file (HDF5) or per task of a LeRobot folder (one "file", the folder)
        for file, instruction in dict.fromkeys((e.file, e.instruction) for e in eps if e.suite == suite):
            group = [e for e in eps if e.file == file and e.instruction == instruction]
            lens = [e.length for e in group]
            lines.append(f"  {len(lens):>5}  {min(lens):>4}/{int(np.median(lens)):>4}/{max(lens):>4}  "
                         f"{instruction}")
            if group[0].language_instruction.lower() != instruction.lower():
                lines.append(f"  {'':>22}(file's language_instruction: {group[0].language_instruction})")
    stats = compute_stats(data)["actions"]
    a = np.concatenate([data.read(i, "actions") for i in range(len(data))])
    lines.append("\nactions per dim   " + " ".join(f"{n:>7}" for n in ("dx", "dy", "dz", "drx", "dry", "drz", "grip")))
    for name, row in (("min", a.min(0)), ("q01", stats.q01), ("mean", stats.mean), ("std", stats.std),
                      ("q99", stats.q99), ("max", a.max(0))):
        lines.append(f"  {name:<15} " + " ".join(f"{v:7.3f}" for v in row))
    return "\n".join(lines)


def view_rate(view, batch_size: int, batches: int, workers: int) -> float:
    """Samples/s of a view through make_loader, after one warm-up batch (worker start, file open)."""
    it = iter(make_loader(view, batch_size, seed=0, workers=workers))
    next(it)
    t0, n = time.perf_counter(), 0
    for _ in range(batches):
        n += len(next(it)["key"])
    return n / (time.perf_counter() - t0)


def bench(path=None, image_size=128, batch_size=8, batches=20, workers=(0, 2)):
    """Samples/s of each view through a DataLoader; prints a table."""
    tmp = None
    if path is None:
        tmp = tempfile.TemporaryDirectory()
        path = write_synthetic(tmp.name, suites=("libero_spatial", "libero_object"), tasks=3, demos=4,
                               T=200, size=image_size)
        print(f"synthetic data: 2 suites x 3 tasks x 4 demos x ~200 steps at {image_size}² in {path}")
    data = open_data(path)
    stats = compute_stats(data)
    views = {"ClipView (f=16)": ClipView(data, image_size=image_size),
             "PretrainView": PretrainView(data, image_size=image_size),
             "WindowView (N=2, 2 cams)": WindowView(data, stats, image_size=image_size)}
    print(f"\n{'view':<26} {'items':>7} " + " ".join(f"{f'workers={w}':>14}" for w in workers))
    for name, view in views.items():
        row = [f"{view_rate(view, batch_size, batches, w):10.0f} /s  " for w in workers]
        print(f"{name:<26} {len(view):>7} " + " ".join(row))
    if tmp:
        tmp.cleanup()


def subset(src, out, demos_per_task: int) -> list[Path]:
    """The first `demos_per_task` demos (demo_0, demo_1, ... in index order) of every task file under
    `src` -> the same layout under `out` (a data-scaling study trains on nested subsets of one generation).
    Groups are copied as they are (images, states, attributes); `num_demos`/`total` are recounted. Written
    into a temporary folder renamed to `out` at the end: `out` exists only when complete."""
    import shutil
    src, out = Path(src), Path(out)
    if out.exists():
        raise DataError(f"{out} exists; subset never overwrites (choose another --out)")
    files = find_task_files(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        for f in files:
            dst = tmp_dir / (f.relative_to(src) if src.is_dir() else f.name)
            dst.parent.mkdir(parents=True, exist_ok=True)
            with h5py.File(f, "r") as a, h5py.File(dst, "w") as b:
                names = sorted((k for k in a["data"] if k.startswith("demo_")), key=lambda k: int(k[5:]))
                if len(names) < demos_per_task:
                    raise DataError(f"{f}: {len(names)} demos, fewer than the {demos_per_task} asked for")
                g = b.create_group("data")
                for k, v in a["data"].attrs.items():
                    g.attrs[k] = v
                for k in names[:demos_per_task]:
                    a.copy(a["data"][k], g, name=k)
                g.attrs["num_demos"] = demos_per_task
                g.attrs["total"] = sum(int(len(g[k]["actions"])) for k in names[:demos_per_task])
        os.chmod(tmp_dir, 0o755)
        os.replace(tmp_dir, out)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return find_task_files(out)


def main(argv=None):
    p = argparse.ArgumentParser(description="LIBERO-format data tools (see the module docstring).")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("inspect", help="summarise a LIBERO root, suite folder or task file; exit 2 if invalid")
    s.add_argument("path", help="LIBERO root (<root>/<suite>/*_demo.hdf5), a suite folder, one file, "
                   "or a LeRobot dataset folder (meta/info.json inside)")
    s = sub.add_parser("stats", help="write normalisation statistics (1st/99th percentiles) as JSON")
    s.add_argument("path", help="training data (root, suite folder or file)")
    s.add_argument("--out", required=True, help="output JSON file, e.g. runs/tokenizers/stats.json")
    s = sub.add_parser("subset", help="copy the first N demos of every task file (a data-scaling study)")
    s.add_argument("path", help="LIBERO-format data (root, suite folder or file)")
    s.add_argument("--out", required=True, help="new folder (same layout); existing files are never overwritten")
    s.add_argument("--demos-per-task", type=int, required=True, help="demos kept per task file (the first N)")
    s = sub.add_parser("bench", help="throughput of the three sample views (samples/s)")
    s.add_argument("path", nargs="?", default=None, help="data to read (default: synthetic data in a temp dir)")
    s.add_argument("--image-size", type=int, default=128, help="square resolution of served images")
    s.add_argument("--batch-size", type=int, default=8, help="DataLoader batch size")
    s.add_argument("--batches", type=int, default=20, help="timed batches per (view, workers) cell")
    s.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts to time")
    args = p.parse_args(argv)
    try:
        if args.cmd == "inspect":
            print(inspect(args.path))
        elif args.cmd == "stats":
            out = save_stats(compute_stats(open_data(args.path, progress=True)), args.out)
            print(f"wrote {out}")
        elif args.cmd == "subset":
            if args.demos_per_task < 1:
                p.error("--demos-per-task must be at least 1")
            files = subset(args.path, args.out, args.demos_per_task)
            print(f"wrote {len(files)} task files with {args.demos_per_task} demos each to {args.out}")
        elif args.cmd == "bench":
            bench(args.path, args.image_size, args.batch_size, args.batches, args.workers)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    import training as TR
    sys.exit(TR.run_cli(main))
