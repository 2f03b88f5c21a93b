"""Does LeRobot's loader open what `integrations.lerobot export` writes? LeRobot itself needs another Python
and torch, so this does what its LeRobotDataset does on a v3.0 folder (lerobot/datasets: load_info,
load_tasks, load_episodes, get_hf_features_from_features, load_nested_dataset) with the same libraries,
Hugging Face `datasets` and pandas, in an environment of their own:

    python3 -m venv /tmp/dsv && /tmp/dsv/bin/pip install datasets pandas pillow
    /tmp/dsv/bin/python experiments/lerobot_compat.py data/libero_object_lerobot
"""
import json
import sys
from pathlib import Path

import datasets
import pandas as pd


def hf_features(features: dict) -> datasets.Features:
    """LeRobot's mapping: image -> Image, shape (1,) -> Value, (n,) -> fixed-length Sequence; video: not in
    the parquet."""
    out = {}
    for key, ft in features.items():
        shape = tuple(ft["shape"])
        if ft["dtype"] == "video":
            continue
        out[key] = (datasets.Image() if ft["dtype"] == "image" else datasets.Value(ft["dtype"]) if shape == (1,)
                    else datasets.Sequence(length=shape[0], feature=datasets.Value(ft["dtype"])))
    return datasets.Features(out)


def main(root: Path):
    info = json.loads((root / "meta" / "info.json").read_text())
    frames = datasets.Dataset.from_parquet([str(p) for p in sorted((root / "data").glob("*/*.parquet"))],
                                           features=hf_features(info["features"]))
    tasks = pd.read_parquet(root / "meta" / "tasks.parquet")
    tasks.index.name = "task"
    episodes = datasets.Dataset.from_parquet([str(p) for p in sorted((root / "meta" / "episodes").glob("*/*.parquet"))])
    assert len(frames) == info["total_frames"] and len(episodes) == info["total_episodes"]
    first = tasks.index[0]
    print(f"{len(frames)} frames, {len(episodes)} episodes; tasks (pandas index): {list(tasks.index)}; "
          f"task_index of {first!r}: {int(tasks.loc[first].task_index)}")
    e = episodes[len(episodes) - 1]
    row = frames[e["dataset_from_index"]]
    assert row["episode_index"] == e["episode_index"] and row["frame_index"] == 0
    print("last episode:", {k: v for k, v in e.items() if not k.startswith("meta")})
    print("its first frame:", {k: (type(v).__name__, getattr(v, "size", None) or (len(v) if isinstance(v, list) else v))
                               for k, v in row.items()})
    print("stats:", sorted(json.loads((root / "meta" / "stats.json").read_text())))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
