"""What reading LeRobot-format data costs against our HDF5 files: the same demonstrations written three ways
(LIBERO HDF5, LeRobot v3.0 with PNGs in the parquet, LeRobot v3.0 with AV1 MP4s), each sample view timed
through the same DataLoader in one run; prints one table (samples/s, ratio to HDF5) and the sizes on disk.

    python experiments/lerobot_bench.py                 # synthetic demos: 2 suites x 3 tasks x 4 x ~200 steps
    python experiments/lerobot_bench.py --data DIR      # your own LIBERO-format data
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import data as D  # noqa: E402
from integrations import lerobot_export as W  # noqa: E402


def du(path: Path) -> float:
    path = Path(path)
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 2**20


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="LIBERO-format data (default: synthetic demos in a temp dir)")
    p.add_argument("--image-size", type=int, default=128, help="stored and served square image size (synthetic)")
    p.add_argument("--batch-size", type=int, default=8, help="DataLoader batch size")
    p.add_argument("--batches", type=int, default=20, help="timed batches per cell")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(args.data) if args.data else D.write_synthetic(
            Path(tmp) / "h5", suites=("libero_spatial", "libero_object"), tasks=3, demos=4, T=200, size=args.image_size)
        sources, sizes = {"HDF5 (ours)": src}, {"HDF5 (ours)": du(src)}
        for name, video in (("LeRobot, PNG in parquet", False), ("LeRobot, AV1 MP4", True)):
            t0 = time.perf_counter()
            sources[name] = W.export(src, Path(tmp) / name.split(",")[1].strip().replace(" ", "_"), video=video,
                                     progress=False)
            sizes[name] = du(sources[name])
            print(f"export {name}: {time.perf_counter() - t0:.1f} s, {sizes[name]:.1f} MB "
                  f"(HDF5 {sizes['HDF5 (ours)']:.1f} MB)")
        stats = D.compute_stats(D.open_data(src))
        views = {"ClipView (f=16)": lambda d: D.ClipView(d, image_size=args.image_size),
                 "PretrainView": lambda d: D.PretrainView(d, image_size=args.image_size),
                 "WindowView (N=2, 2 cams)": lambda d: D.WindowView(d, stats, image_size=args.image_size)}
        print(f"\n| view | {' | '.join(sources)} |\n|---|" + "---|" * len(sources))
        for vname, make in views.items():
            cells, base = [], None
            for sname, path in sources.items():
                r = D.view_rate(make(D.open_data(path)), args.batch_size, args.batches, args.workers)
                base = base or r
                cells.append(f"{r:.0f}/s" + ("" if r is base else f" ({r / base:.2f}×)"))
            print(f"| {vname} | {' | '.join(cells)} |")
        print(f"\nsamples/s through a DataLoader (batch {args.batch_size}, workers {args.workers}); ratio to HDF5")


if __name__ == "__main__":
    main()
