"""CoWVLA networks and the run utilities every stage shares.

Axis legend used in shape comments across the project:
    B batch   f frames of a clip   C channels   H W image size   h w latent / token grid
    L sequence length   d model width   K code dim   N keyframes / chunks   l_a chunk length

Run layout (STYLE.md): runs/<stage>/model.safetensors + config.json (what later stages load) and
train_state.pt (model + optimiser + step, what --resume loads). Every file is written to a temporary
name and renamed, and train_state.pt is written first, so a crash never leaves a half checkpoint and
resuming always sees a consistent state.
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file


# ----------------------------------------------------------------------------------------------
# Run utilities: device, seeds, checkpoints, learning-rate schedule, logging

def pick_device(name: str = "auto") -> torch.device:
    """cuda -> mps -> cpu unless told."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _atomic(path: Path, write):
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(out, model: torch.nn.Module, config: dict, train_state: dict | None = None):
    """Write train_state.pt (if given), then model.safetensors and config.json, each atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if train_state is not None:
        _atomic(out / "train_state.pt", lambda p: torch.save({**train_state, "model": weights}, p))
    _atomic(out / "model.safetensors", lambda p: save_file(weights, str(p)))
    _atomic(out / "config.json", lambda p: p.write_text(json.dumps(config, indent=1, default=str)))


def load_config(run_dir) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no config.json — is {run_dir} the output directory of a "
                                f"finished run?")
    return json.loads(path.read_text())


def load_weights(run_dir, model: torch.nn.Module, device="cpu") -> torch.nn.Module:
    path = Path(run_dir) / "model.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no model.safetensors — train this stage first")
    model.load_state_dict(load_file(str(path), device=str(device)))
    return model


def load_train_state(run_dir):
    """The resume state of an interrupted run, or None when there is none."""
    path = Path(run_dir) / "train_state.pt"
    return torch.load(path, map_location="cpu", weights_only=False) if path.exists() else None


def cosine_lr(step: int, total: int, lr: float, min_lr: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to min_lr (UniVLA's schedule)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (lr - min_lr) * (1 + np.cos(np.pi * progress))


class RunLog:
    """One console line per log step and the same record appended to log.jsonl."""

    def __init__(self, out):
        Path(out).mkdir(parents=True, exist_ok=True)
        self.path = Path(out) / "log.jsonl"
        self.t = time.perf_counter()

    def __call__(self, step: int, total: int, steps_since: int, **metrics):
        now = time.perf_counter()
        ms = 1000 * (now - self.t) / max(1, steps_since)
        self.t = now
        rec = {"step": step, "ms_per_step": round(ms, 1), **{k: float(v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        parts = " | ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        print(f"step {step}/{total} | {parts} | {ms:.0f} ms/step", flush=True)
