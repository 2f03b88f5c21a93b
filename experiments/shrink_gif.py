"""A rollout GIF small enough to commit: every k-th frame (and the last), an adaptive palette, the same pace.

    python experiments/shrink_gif.py SRC.gif OUT.gif --every 3
    python experiments/shrink_gif.py --pick runs/libero_cpu_object/cft_s1/gifs_test docs/libero_object
        # the first success and the first failure (by task) of an evaluation with --videos ->
        # docs/libero_object_success.gif, docs/libero_object_failure.gif
    python experiments/shrink_gif.py --first-success runs/libero_cpu_goal/cft_s1/eval_test_replan5 -
        # -> "--tasks 2 --trials 6 --video-trial 5": evaluate.py flags that record the first success
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def shrink(src, out, every: int = 3, colors: int = 96) -> int:
    """Write `out` from `src` -> the number of frames kept."""
    from PIL import Image, ImageSequence
    with Image.open(src) as im:
        duration = im.info.get("duration", 100)
        frames = [f.convert("RGB") for f in ImageSequence.Iterator(im)]
    kept = frames[::every] + ([frames[-1]] if (len(frames) - 1) % every else [])
    pal = [f.quantize(colors=colors, method=Image.Quantize.MEDIANCUT) for f in kept]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    pal[0].save(out, save_all=True, append_images=pal[1:], duration=duration * every, loop=0, optimize=True)
    return len(kept)


def _episodes(eval_dir) -> list[dict]:
    """The episodes evaluate.py journaled in EVAL_DIR/episodes.jsonl, one dict per line."""
    import json
    return [json.loads(line) for line in (Path(eval_dir) / "episodes.jsonl").read_text().splitlines() if line]


def pick(eval_dir, prefix, every: int = 3, colors: int = 96) -> dict:
    """The first successful and the first failed episode (by task, then trial) that has a GIF in `eval_dir`
    (an evaluate.py --videos output) -> PREFIX_success.gif / PREFIX_failure.gif; -> {outcome: episode}."""
    eval_dir = Path(eval_dir)
    episodes = sorted(_episodes(eval_dir), key=lambda r: (r["task"], r["trial"]))
    chosen = {}
    for r in episodes:
        gif = eval_dir / "videos" / f"{r['suite']}_task{r['task']}_trial{r['trial']}.gif"
        outcome = "success" if r["success"] else "failure"
        if outcome not in chosen and gif.exists():
            n = shrink(gif, f"{prefix}_{outcome}.gif", every, colors)
            chosen[outcome] = r
            print(f"{prefix}_{outcome}.gif: task {r['task']} trial {r['trial']}, {r['steps']} steps"
                  f"{', ' + r['failure_mode'] if r.get('failure_mode') else ''} ({n} frames)")
    return chosen


def first_success(eval_dir) -> list[str]:
    """evaluate.py flags that record the first successful episode (by task, then trial) of `eval_dir` as a
    GIF: ['--tasks', T, '--trials', I + 1, '--video-trial', I]; [] when no episode succeeded."""
    wins = sorted((r["task"], r["trial"]) for r in _episodes(eval_dir) if r["success"])
    if not wins:
        return []
    task, trial = wins[0]
    return ["--tasks", str(task), "--trials", str(trial + 1), "--video-trial", str(trial)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("src", help="a GIF evaluate.py --videos wrote (with --pick: its output directory)")
    p.add_argument("out", help="the smaller GIF (with --pick: the prefix of the two GIFs)")
    p.add_argument("--pick", action="store_true",
                   help="SRC is an evaluation directory: shrink its first success and first failure")
    p.add_argument("--first-success", action="store_true",
                   help="SRC is an evaluation directory: print the evaluate.py flags that record its first "
                        "successful episode as a GIF (nothing when none succeeded); OUT is ignored")
    p.add_argument("--every", type=int, default=3, help="keep every k-th frame (each then shows k times as long)")
    p.add_argument("--colors", type=int, default=96, help="palette size")
    args = p.parse_args(argv)
    if args.every < 1 or not 2 <= args.colors <= 256:
        raise SystemExit("error: --every must be >= 1 and --colors within 2..256")
    if (args.pick or args.first_success) and not (Path(args.src) / "episodes.jsonl").is_file():
        raise SystemExit(f"error: {args.src}/episodes.jsonl: not an evaluation directory")
    if args.first_success:
        print(" ".join(first_success(args.src)))
        return 0
    if args.pick:
        return 0 if pick(args.src, args.out, args.every, args.colors) else 1
    if not Path(args.src).is_file():
        raise SystemExit(f"error: {args.src}: no such GIF")
    n = shrink(args.src, args.out, args.every, args.colors)
    print(f"wrote {args.out}: {n} frames, {Path(args.out).stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    sys.exit(main())
