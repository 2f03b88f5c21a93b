"""Open-loop check on recorded demonstrations: the policy's first action chunk from recorded observations
against the demo's actions, beside always predicting the mean action (no simulator; minutes on a CPU).

    python experiments/offline.py --policy runs/cofinetune --data data/mini_goal [--other-instructions]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the method files live at the top level

import numpy as np  # noqa: E402

# ----------------------------------------------------------------------------------------------
# Open-loop check on recorded demonstrations

ACTION_NAMES = ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]


def offline_errors(policy, data, episodes=12, every=30, seed=0, other_instructions=False, pool=None) -> dict:
    """From the recorded observation at step s (every `every` steps of `episodes` episodes drawn with
    `seed`), the policy's first chunk (fresh context: `reset()` first) vs the demo's actions from s:
    mean |error| per action dimension, beside the error of always predicting the data's mean action.
    A policy that does not use what it sees stays at that baseline; this is how the quickstart's
    x/y failure was found (docs/results.md). Cheap: no simulator, one chunk per sample.

    With `other_instructions`, each observation is then also given every other instruction in the data and
    the error of those chunks against the same demo actions is averaged: a policy that reads the
    instruction is worse with the wrong one; one that ignores it scores the same (docs/results.md, random layouts).

    `pool` limits the draw to these episode indices (--held-out: the ones training held out).

    The result's `per_task` splits the same chunks by instruction (one row per task: its chunks, the policy's and the mean
    action's mean error, and with `other_instructions` the wrong-instruction error): whether a task the closed
    loop never solves is also imitated worse open loop."""
    rng = np.random.default_rng(seed)
    pool = np.arange(len(data.episodes)) if pool is None else np.asarray(pool)
    if not len(pool):
        raise ValueError("no episode to sample from (the held-out split is empty: trained with --val-episodes 0?)")
    pick = rng.choice(pool, min(episodes, len(pool)), replace=False)
    mean = np.concatenate([data.read(i, "actions") for i in range(len(data.episodes))]).mean(0)   # (7,)
    l_a = getattr(policy, "l_a", 10)
    instructions = sorted({e.instruction for e in data.episodes})
    if other_instructions and len(instructions) < 2:
        raise ValueError(f"the data has one instruction only ({instructions[0]!r}); other_instructions needs two")
    err, base, other, task = [], [], [], []   # task: the instruction of each chunk, for per_task
    for i in pick:
        ep, actions = data.episodes[i], data.read(i, "actions")
        for s in range(0, ep.length - l_a + 1, every):
            obs = {"agentview_image": data.images(i, "agentview", [s])[0][::-1, ::-1],     # env format:
                   "robot0_eye_in_hand_image": data.images(i, "wrist", [s])[0][::-1, ::-1],  # upside down
                   "proprio": data.proprio(i, [s])[0]}                                        # (8,) recorded
            target = actions[s: s + l_a]

            def error(instruction):
                policy.reset()
                chunk = np.asarray(policy.predict_action_chunk(obs, instruction))[:l_a]      # (l_a, 7)
                return np.abs(chunk - target).mean(0)                                          # (7,)
            err.append(error(ep.instruction))
            base.append(np.abs(mean - target).mean(0))
            task.append(ep.instruction)
            if other_instructions:
                other.append(np.mean([error(k) for k in instructions if k != ep.instruction], 0))
    if not err:
        raise ValueError(f"no sampled episode is at least l_a = {l_a} steps long")
    per_task = []
    for k in instructions:   # sorted by instruction; a task none of whose episodes was drawn has no row
        rows = [n for n, t in enumerate(task) if t == k]
        if rows:
            per_task.append({"instruction": k, "chunks": len(rows),
                             "policy": float(np.mean([err[n] for n in rows])),          # mean over rows and dims
                             "mean_action": float(np.mean([base[n] for n in rows])),
                             "other_instructions": float(np.mean([other[n] for n in rows])) if other else None})
    return {"policy": np.mean(err, 0).tolist(), "mean_action": np.mean(base, 0).tolist(), "chunks": len(err),
            "episodes": [int(i) for i in pick], "other_instructions": np.mean(other, 0).tolist() if other else None,
            "per_task": per_task}


def per_task_table(r: dict) -> list[str]:
    """The per-task split of offline_errors' chunks as markdown lines (task = the data's sorted instructions)."""
    other = r["per_task"] and r["per_task"][0]["other_instructions"] is not None
    lines = ["| task (instruction) | chunks | policy | mean action | policy / mean action |"
             + (" another task's instruction |" if other else ""),
             "|---|---|---|---|---|" + ("---|" if other else "")]
    for t in r["per_task"]:
        lines.append(f"| {t['instruction']} | {t['chunks']} | {t['policy']:.4f} | {t['mean_action']:.4f} | "
                     f"{t['policy'] / max(t['mean_action'], 1e-12):.3f} |"
                     + (f" {t['other_instructions']:.4f} |" if other else ""))
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(prog="experiments/offline.py", description=offline_errors.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", default="runs/cofinetune", help="co-fine-tuned run directory")
    p.add_argument("--data", required=True, help="LIBERO-format demonstrations (e.g. the training data)")
    p.add_argument("--episodes", type=int, default=12, help="episodes sampled")
    p.add_argument("--every", type=int, default=30, help="steps between sampled start steps")
    p.add_argument("--seed", type=int, default=0, help="seed of the episode sample")
    p.add_argument("--other-instructions", action="store_true",
                   help="also give each observation every other instruction in the data and report the error "
                        "of those chunks (does the policy read the instruction?)")
    p.add_argument("--held-out", action="store_true",
                   help="sample only the episodes the VLA stages held out for validation (every --val-episodes-th "
                        "of --data, read from its config.json args; pass the data it was trained on)")
    p.add_argument("--out", help="also write the table (and the raw numbers as JSON) to this markdown file")
    args = p.parse_args(argv)
    import cofinetune
    import data as D
    import training as TR
    if not (Path(args.policy) / "config.json").exists():
        sys.exit(f"error: {args.policy}/config.json not found — train a policy with cofinetune.py first")
    try:
        demos = D.open_data(args.data)
    except D.DataError as e:
        sys.exit(f"error: {e}")
    policy = cofinetune.Policy.load(args.policy)
    # --held-out: the split pretrain_vla.heldout_split made, every val_episodes-th episode
    pool = D.heldout_episodes(len(demos.episodes), policy.config["args"].get("val_episodes", D.VAL_EVERY)) \
        if args.held_out else None
    try:
        r = offline_errors(policy, demos, args.episodes, args.every, args.seed, args.other_instructions, pool)
    except ValueError as e:
        sys.exit(f"error: {e}")
    row = lambda name, v: f"| {name} | " + " | ".join(f"{x:.4f}" for x in v) + f" | {np.mean(v):.4f} |"
    which = "held-out " if args.held_out else ""
    lines = [f"mean |action error| over {r['chunks']} chunks of {len(r['episodes'])} {which}episodes of {args.data}",
             "| | " + " | ".join(ACTION_NAMES) + " | mean |", "|---|" + "---|" * (len(ACTION_NAMES) + 1),
             row(f"policy {args.policy}", r["policy"]), row("mean action (baseline)", r["mean_action"])]
    if r["other_instructions"] is not None:
        lines.append(row("policy, given another task's instruction", r["other_instructions"]))
    lines += ["", "per task (the same chunks; mean over the 7 dimensions):", *per_task_table(r)]
    print("\n".join(lines))
    if args.out:   # the table and the raw numbers, written whole so a stopped run leaves none
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        TR.atomic_write(out, lambda f: f.write_text("\n".join(lines) + "\n\n```json\n" + json.dumps(r, indent=1) + "\n```\n"))


if __name__ == "__main__":
    main()
