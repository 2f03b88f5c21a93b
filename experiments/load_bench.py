"""What a busy machine costs a CPU training step, measured in one run (issue: bad input and faults, load).

    python experiments/load_bench.py [--steps 30] [--width 128]

Times forward + backward + AdamW steps of a small VLA (the tiny config at --width) in this process:
alone with every core, then beside a competing process that runs the same loop, once with every core
in both (what two default runs do) and once with the cores split between them (OMP_NUM_THREADS=cores/2,
what `training.threads_line` advises), and once with this run on the cores `training.free_cores` finds
idle beside a competitor on every core (what a run does by default when OMP_NUM_THREADS is unset). Prints
ms per step and the ratio to the step alone.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def step_ms(steps: int, width: int, threads: int) -> float:
    """ms per training step of a small VLA on random tokens, with `threads` intra-op threads."""
    import torch
    import model as M
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = M.VLA(M.VLAConfig.tiny(vocab_size=512, D_m=8, d=width, layers=4, heads=4))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    ids = torch.randint(0, 512, (16, 96))
    seg = torch.zeros_like(ids)

    def one():
        h = net(ids, seg)
        loss = h.float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up
        one()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    return 1000 * (time.perf_counter() - t0) / steps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    p.add_argument("--width", type=int, default=128, help="model width")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)  # the competitor: its thread count
    args = p.parse_args(argv)
    if args.child is not None:   # the competing process: the same loop until it is killed
        while True:
            step_ms(args.steps, args.width, args.child)
    cores = os.cpu_count() or 1
    half = max(1, cores // 2)
    # "free": this run's threads are what training.free_cores() sees once the competitor runs (the default)
    rows = [("alone, every core", cores, None), ("beside a competitor, both every core", cores, cores),
            ("beside a competitor, cores split", half, half),
            ("beside a competitor on every core, this run on the free cores", "free", cores)]
    results = []
    for label, mine, theirs in rows:
        child = None
        if theirs is not None:
            env = {**os.environ, "OMP_NUM_THREADS": str(theirs)}
            child = subprocess.Popen([sys.executable, __file__, "--steps", str(args.steps), "--width", str(args.width),
                                      "--child", str(theirs)], env=env, stdout=subprocess.DEVNULL)
            time.sleep(5)   # let it reach its loop
        if mine == "free":
            import training as TR
            mine = TR.free_cores()
        try:
            results.append((label, mine, step_ms(args.steps, args.width, mine)))
        finally:
            if child is not None:
                child.kill()
                child.wait()
    base = results[0][2]
    print(f"{'setting':62s} {'threads':>7s} {'ms/step':>9s} {'vs alone':>9s}")
    for label, threads, ms in results:
        print(f"{label:62s} {threads:7d} {ms:9.1f} {ms / base:8.2f}x")


if __name__ == "__main__":
    main()
