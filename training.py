"""The one training skeleton the VQGAN, extractor and VLA trainers share (nanoGPT's loop, in pieces).

    loop = TrainLoop(out, opt, steps, lr, min_lr, warmup, desc, step)   # step > 0 after --resume
    while loop.running():               # sets the warm-up + cosine learning rate of this step
        batch = next(batches)           # Batches: an endless, device-placed iterator over a DataLoader
        loss = ...; optimizer_step(loss, model, opt, clip)
        loop.advance()
        if loop.due(log_every): loop.log(loss=loss, ...)        # console line + log.jsonl
        if loop.due(ckpt_every): save_checkpoint(out, model, config, train_state(loop.step, opt, extras))
    loop.close()

Run layout (STYLE.md): runs/<stage>/model.safetensors + config.json (what later stages load) and
train_state.pt (model + optimiser + step + extra modules such as a discriminator, what --resume loads).
Every file is written to a temporary name and renamed, and train_state.pt is written first, so a crash
never leaves a half checkpoint and resuming always sees a consistent state.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from envs.common import at_least, in_range  # noqa: F401  argparse types, shared with the torch-free env CLIs


def pick_device(name: str = "auto") -> torch.device:
    """cuda -> mps -> cpu unless told."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def loader_workers(workers: int | None, device: torch.device) -> int:
    """DataLoader workers: the flag if given, else 0 on CPU (the cores train) and 4 on an accelerator.
    On CPU the main process then gets the cores the workers leave: with 2 cores, 2 intra-op threads
    beside 1 busy worker made a tiny VQGAN step 23x slower (8.1 s vs 0.35 s) through thread contention."""
    workers = (0 if device.type == "cpu" else 4) if workers is None else workers
    if device.type == "cpu":
        if "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(max(1, free_cores() - workers))
        print(threads_line(torch.get_num_threads()), flush=True)
    return workers


def free_cores(sample_s: float = 0.5) -> int:
    """The cores idle right now: the idle share of /proc/stat's CPU time over `sample_s`, times the core
    count (at least 1; every core where /proc/stat is unreadable). A run that starts beside a busy process
    takes the cores it leaves instead of contending for all of them (experiments/load_bench.py: a training
    step beside a competitor on every core cost 3.6x, on the cores it left 1.5x)."""
    cores = os.cpu_count() or 1

    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)  # idle + iowait, all

    try:
        i0, t0 = snap()
        time.sleep(sample_s)
        i1, t1 = snap()
    except (OSError, ValueError, IndexError):
        return cores
    return max(1, min(cores, round(cores * (i1 - i0) / max(1, t1 - t0))))


def threads_line(threads: int, per: str = "") -> str:
    """The one line a CPU run starts with: how many intra-op threads it uses, the machine's load, how to change it."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"torch: {threads} intra-op thread(s){per} on {os.cpu_count()} cores (load {load:.1f}; the cores "
            f"idle at start unless OMP_NUM_THREADS is set); set OMP_NUM_THREADS to change it")


def seed_everything(seed: int):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def atomic_write(path: Path, write):
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(out, model: torch.nn.Module, config: dict, train_state: dict | None = None,
                    export: dict | None = None):
    """Write train_state.pt (if given; it holds the model's own weights), then model.safetensors (the
    model's weights, or `export` instead: the --ema average) and config.json, each atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if train_state is not None:
        atomic_write(out / "train_state.pt", lambda p: torch.save({**train_state, "model": weights}, p))
    if export is not None:
        weights = {k: v.detach().contiguous().cpu() for k, v in export.items()}
    atomic_write(out / "model.safetensors", lambda p: save_file(weights, str(p)))
    atomic_write(out / "config.json", lambda p: p.write_text(json.dumps(config, indent=1, default=str)))


class ArtefactError(ValueError):
    """A saved file a stage reads is missing, unreadable or does not fit: the message names the file, what
    was expected and what to do. Entry points end with it as one line (`fail`)."""


def fail(message) -> None:
    """How an entry point stops on bad input: one line `error: ...` on stderr, exit status 2 (argparse's)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def run_cli(main, argv=None):
    """Run an entry point so that bad input anywhere in it (a DataError, an ArtefactError, a missing file)
    ends as one line and exit status 2, never a traceback."""
    from data import DataError
    try:
        return main(argv)
    except (ArtefactError, DataError, FileNotFoundError) as e:
        fail(e)


def read_json(path, remedy: str) -> dict:
    """A JSON file a stage wrote -> its object; ArtefactError naming the file when missing or unreadable."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtefactError(f"{path}: not found — {remedy}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtefactError(f"{path}: not valid JSON ({e}) — {remedy}") from None


def read_weights(path, device="cpu", remedy: str = "train this stage again") -> dict:
    """A model.safetensors -> {name: tensor}; ArtefactError naming the file when missing, truncated or
    not a safetensors file."""
    path = Path(path)
    if not path.exists():
        raise ArtefactError(f"{path}: not found — {remedy}")
    try:
        return load_file(str(path), device=str(device))
    except Exception as e:  # safetensors raises its own (Rust) error type for a cut or foreign file
        raise ArtefactError(f"{path}: unreadable weights ({str(e).splitlines()[0]}) — {remedy}") from None


def load_config(run_dir) -> dict:
    path = Path(run_dir) / "config.json"
    return read_json(path, f"is {run_dir} the output directory of a finished run? (train it again; "
                           f"--resume continues from its train_state.pt if that is intact)")


def load_weights(run_dir, model: torch.nn.Module, device="cpu", new=()) -> torch.nn.Module:
    """Load run_dir's weights; parameters under the prefixes in `new` may be absent (they keep their
    initialisation: e.g. the proprio projection when co-fine-tuning with --proprio from a pre-training
    without it). Any other mismatch is an error naming the file."""
    path = Path(run_dir) / "model.safetensors"
    weights = read_weights(path, device, "train this stage again (--resume continues from its train_state.pt "
                                         "if that is intact)")
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError as e:  # a tensor of another shape
        raise ArtefactError(f"{path}: weights do not fit the model its config.json describes "
                            f"({str(e).splitlines()[-1].strip()})") from None
    missing = [k for k in missing if not (new and k.startswith(tuple(new)))]
    if missing or unexpected:
        raise ArtefactError(f"{path}: weights do not fit the model (missing {missing[:5]}, unexpected "
                            f"{unexpected[:5]})")
    return model


def load_train_state(run_dir):
    """The resume state of an interrupted run, or None when there is none; ArtefactError when unreadable."""
    path = Path(run_dir) / "train_state.pt"
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises EOFError, RuntimeError or UnpicklingError for a cut file
        raise ArtefactError(f"{path}: unreadable resume state ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}) "
                            f"— delete it to start the run over, or drop --resume") from None


def resume(out, model: torch.nn.Module, opt, enabled: bool, extras: dict | None = None):
    """--resume: load model + optimiser (+ `extras`, name -> module or optimiser, e.g. a discriminator and
    its optimiser) from OUT/train_state.pt -> (step, state); (0, None) otherwise. An extra the state does
    not hold is an error naming it: the run was trained with other flags."""
    state = load_train_state(out) if enabled else None
    if not state:
        return 0, None
    missing = [k for k in (extras or {}) if k not in state]
    if missing:
        raise ArtefactError(f"{Path(out) / 'train_state.pt'} holds no {', '.join(missing)} (it was trained with "
                            f"other flags); resume with the same flags or start a new --out")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    for k, obj in (extras or {}).items():
        obj.load_state_dict(state[k])
    print(f"resumed from {Path(out) / 'train_state.pt'} at step {state['step']}")
    return state["step"], state


def train_state(step: int, opt, extras: dict | None = None, batches: "Batches | None" = None) -> dict:
    """What train_state.pt holds besides the model: step, optimiser, each extra's state_dict(), and (with
    `batches`) where the data order stands and every random generator's state, so that a resumed run
    takes the same steps an uninterrupted one would."""
    state = {"step": step, "optimizer": opt.state_dict(), **{k: v.state_dict() for k, v in (extras or {}).items()}}
    if batches is not None:
        state["batches"] = batches.state()
        state["rng"] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
    return state


def restore_order(state: dict | None, batches: "Batches"):
    """After --resume: put the data order and the random generators where train_state() found them (a
    state written before they were saved resumes with a fresh order, as it always did)."""
    if not state or "batches" not in state:
        return
    batches.restore(state["batches"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def adamw(model: torch.nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.95)) -> torch.optim.AdamW:
    """AdamW with two parameter groups (nanoGPT's configure_optimizers, UniVLA's trainer): weight decay
    only on the weight matrices of linear, convolution and attention projections; none on norms, biases,
    embeddings (the VLA's token table, which holds Q's row), learned queries and frame embeddings."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            matrix = (isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and name == "weight") or \
                     (isinstance(module, nn.MultiheadAttention) and name.endswith("proj_weight"))
            (decay if matrix else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


# Deviation [ema]: --ema, off by default, is an option the paper does not describe.
class WeightEMA:
    """--ema (not in the paper): an exponential moving average of the weights, updated after every
    optimiser step, w_ema <- d w_ema + (1 - d) w with d = min(decay, (1 + n) / (10 + n)) after n updates
    (the warm-up keeps early averages from holding on to the initial weights); integer buffers are copied.
    The average is what model.safetensors exports; training itself always continues from the raw weights."""

    def __init__(self, model: torch.nn.Module, decay: float, state: dict | None = None):
        if not 0 < decay < 1:
            raise ValueError(f"--ema {decay}: expected a decay in (0, 1), e.g. 0.999 (0 turns it off)")
        self.decay, self.n = decay, 0
        self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if state is not None:                                         # resume: continue the same average
            self.n = state["n"]
            for k, v in state["weights"].items():
                self.weights[k].copy_(v)

    @torch.no_grad()
    def update(self, model: torch.nn.Module):
        self.n += 1
        d = min(self.decay, (1 + self.n) / (10 + self.n))
        for k, v in model.state_dict().items():
            e = self.weights[k]
            e.lerp_(v.detach(), 1 - d) if e.is_floating_point() else e.copy_(v)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "n": self.n, "weights": {k: v.cpu() for k, v in self.weights.items()}}


def cosine_lr(step: int, total: int, lr: float, min_lr: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to min_lr (UniVLA's schedule)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (lr - min_lr) * (1 + np.cos(np.pi * progress))


def writable_dir(out, min_free_mb: int = 100) -> Path:
    """Create `out` and check, before any training step, that files can be written there and that the disk
    has room for checkpoints; ArtefactError naming the folder otherwise."""
    import shutil
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_probe"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise ArtefactError(f"{out}: cannot write here ({e.strerror or e}) — choose another --out") from None
    free = shutil.disk_usage(out).free / 2**20
    if free < min_free_mb:
        raise ArtefactError(f"{out}: only {free:.0f} MB free on its disk (checkpoints need more) — free space "
                            f"or choose another --out")
    return out


def fresh_out(out, resume: bool, force: bool) -> None:
    """A training run without --resume never replaces another run's weights in the same folder: ArtefactError
    naming what is there and the two flags that say what to do, unless --force."""
    out = Path(out)
    found = [n for n in ("model.safetensors", "train_state.pt") if (out / n).exists()]
    if found and not resume and not force:
        step = ""
        cfg = out / "config.json"
        if cfg.exists():
            try:
                step = f", step {json.loads(cfg.read_text())['step']}"
            except (ValueError, KeyError, TypeError):
                pass
        raise ArtefactError(f"{out} holds an earlier run ({', '.join(found)}{step}); pass --resume to continue it, "
                            f"--force to train a new one over it, or choose another --out")
    if force and not resume:  # the new run's log and resume state start afresh (weights: at its first checkpoint)
        for name in ("log.jsonl", "train_state.pt"):
            (out / name).unlink(missing_ok=True)


class RunLog:
    """One console line per log step and the same record appended to log.jsonl."""

    def __init__(self, out):
        writable_dir(out)
        self.path = Path(out) / "log.jsonl"
        self.t = time.perf_counter()

    def __call__(self, step: int, total: int, steps_since: int, **metrics):
        now = time.perf_counter()
        ms = 1000 * (now - self.t) / max(1, steps_since)
        self.t = now
        rec = {"step": step, "ms_per_step": round(ms, 1), **{k: float(v) for k, v in metrics.items()}}
        if torch.cuda.is_available() and torch.cuda.is_initialized():  # this process's peak so far
            rec["peak_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        parts = " | ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        print(f"step {step}/{total} | {parts} | {ms:.0f} ms/step", flush=True)


def setup_run(seed: int, device: str = "auto"):
    """A VLA stage's process: torchrun's process group (if any), seeds (offset by rank) and its device
    -> ((rank, world, local_rank), device)."""
    rank, world, local = setup_distributed()
    seed_everything(seed + rank)
    dev = torch.device(f"cuda:{local % torch.cuda.device_count()}") if world > 1 and torch.cuda.is_available() \
        else pick_device(device)
    return (rank, world, local), dev


def setup_distributed():
    """torchrun -> (rank, world, local_rank) with the process group up; plain python -> (0, 1, 0)."""
    import torch.distributed as dist
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    local = int(os.environ.get("LOCAL_RANK", "0"))
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus:
        torch.cuda.set_device(local % gpus)
    # NCCL refuses two ranks on one GPU ("Duplicate GPU detected"): more processes on a node than its GPUs
    # (the one-GPU DDP check of experiments/gpu_check.py) share the devices over gloo, which reduces CUDA
    # tensors too.
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    dist.init_process_group("nccl" if gpus >= per_node else "gloo")
    return dist.get_rank(), world, local


def autocast(device: torch.device):
    """bf16 autocast on CUDA only (STYLE.md); a disabled context elsewhere."""
    return torch.autocast("cuda", torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)


def psnr(x, y) -> torch.Tensor:
    """Per-image PSNR in dB of images (n, ...) in [-1, 1] (peak-to-peak 2) -> (n,)."""
    mse = ((x - y) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(4.0 / mse)


class Batches:
    """An endless iterator over a DataLoader: a new epoch when one ends (the sampler told its epoch, so a
    DistributedSampler reshuffles), every tensor moved to `device` (a batch is a tensor or a dict).
    `state()` / `restore()` record and replay where the order stands: the epoch, the batches already
    taken from it and the loader's shuffling generator as it was when the epoch began."""

    def __init__(self, loader, device: torch.device, sampler=None):
        self.loader, self.device, self.sampler, self.epoch = loader, device, sampler, 0
        self.it = None   # the epoch's iterator, made at the first batch (restore() may come first)

    def _start_epoch(self):
        g = getattr(self.loader, "generator", None)
        self.epoch_generator = None if g is None else g.get_state()
        self.taken = 0
        if self.sampler is not None:
            self.sampler.set_epoch(self.epoch)
        self.it = iter(self.loader)

    def state(self) -> dict:
        return {"epoch": self.epoch, "taken": self.taken, "generator": self.epoch_generator}

    def restore(self, state: dict):
        """Resume the order at `state`: re-draw the epoch's shuffle from the generator state it began with,
        then take (and drop) the batches already used — loading them again costs up to one epoch of data."""
        self.epoch = state["epoch"]
        g = getattr(self.loader, "generator", None)
        if g is not None and state["generator"] is not None:
            g.set_state(state["generator"])
        self._start_epoch()
        for _ in range(state["taken"]):
            next(self.it)
        self.taken = state["taken"]

    def __iter__(self):
        return self

    def __next__(self):
        if self.it is None:
            self._start_epoch()
        try:
            batch = next(self.it)
        except StopIteration:
            self.epoch += 1
            self._start_epoch()
            batch = next(self.it)
        self.taken += 1
        if isinstance(batch, dict):
            return {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        return batch.to(self.device, non_blocking=True)


def optimizer_step(loss, model: torch.nn.Module, opt, clip: float = 1.0) -> torch.Tensor:
    """zero_grad -> backward -> clip the gradient norm -> step; -> the norm before clipping."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return norm


def discriminator_step(disc: torch.nn.Module, opt_d, real, fake) -> torch.Tensor:
    """One hinge-loss step of a GAN discriminator (taming's): relu(1 - D(x)) + relu(1 + D(x̂))."""
    d_loss = F.relu(1 - disc(real)).mean() + F.relu(1 + disc(fake.detach())).mean()
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    return d_loss.detach()


class TrainLoop:
    """Step counter, learning-rate schedule, progress bar and log cadence of a training run (the module
    docstring shows the loop). `show=False` (DDP ranks > 0) silences the bar and the log lines."""

    def __init__(self, out, opt, total: int, lr: float, min_lr: float, warmup: int, desc: str, step: int = 0,
                 show: bool = True, stop_after: int | None = None, minutes: float | None = None):
        """`stop_after`: end this invocation (with a checkpoint: `due` is true there) after that many steps;
        the schedule still spans `total`, and --resume continues (a time-boxed session).
        `minutes`: fit the run to a wall-clock budget — after PROBE warm-up and PROBE timed steps the total
        becomes the steps the measured speed allows in what is left of the budget (never more than `total`), so the warm-up + cosine schedule
        still ends at its floor and the last step still checkpoints (experiments/gpu_check.py)."""
        self.opt, self.total, self.step, self.show = opt, total, step, show
        self.stop_at = min(total, step + stop_after) if stop_after else total
        self.budget = (minutes * 60, time.perf_counter(), step) if minutes else None
        self.schedule = (lr, min_lr, warmup)
        self.lr, self.since = lr, 0
        self.runlog = RunLog(out) if show else None
        self.bar = tqdm(total=total, initial=step, desc=desc, unit="step", disable=not show or not sys.stderr.isatty())

    def running(self) -> bool:
        """True while steps remain; sets this step's learning rate (warm-up + cosine) on every group."""
        if self.step >= self.stop_at:
            return False
        self.lr = cosine_lr(self.step, self.total, *self.schedule)
        for group in self.opt.param_groups:
            group["lr"] = self.lr
        return True

    PROBE = 20  # warm-up steps, then as many timed, before a --minutes budget sets the total

    def advance(self):
        self.step += 1
        self.since += 1
        self.bar.update(1)
        if self.budget and self.step - self.budget[2] == self.PROBE:   # warm-up (workers, kernels) done
            self.budget = (*self.budget[:3], time.perf_counter())
        elif self.budget and self.step - self.budget[2] == 2 * self.PROBE:
            seconds, t0, first, t_warm = self.budget
            now = time.perf_counter()
            elapsed, rate = now - t0, self.PROBE / (now - t_warm)   # steps/s after the warm-up
            fit = self.step + int((seconds - elapsed) * rate)
            if fit < self.total:
                self.total = max(self.step, fit)
                self.stop_at = min(self.stop_at, self.total)
                self.bar.total = self.total
                self.bar.refresh()
                if self.show:
                    print(f"budget {seconds / 60:g} min: {rate:.2f} steps/s after {self.PROBE} warm-up steps, so this "
                          f"run ends at step {self.total} (schedule fitted to it)", flush=True)
            self.budget = None

    def due(self, every: int) -> bool:
        """Every `every` steps, and at the last one (of the run, or of this invocation)."""
        return self.show and (self.step % every == 0 or self.step in (self.total, self.stop_at))

    def seconds_since_log(self) -> float:
        return (time.perf_counter() - self.runlog.t) or 1e-9

    def log(self, **metrics):
        self.runlog(self.step, self.total, self.since, **metrics, lr=self.lr)
        self.since = 0

    def close(self):
        self.bar.close()
