"""Stage 2 — VLA pre-training in latent motion (paper Sec. 3.3, Eq. 2).

Sequence [T, v_q^1, Q, v_q^f]; the final hidden state at the motion query Q goes through an MLP to
ẑ_m, regressed onto the clip's (standardised) motion latent z_m from the extractor's export:

    L = ||ẑ_m - z_m||^2 + CE(v̂_q^1, v_q^1) + CE(v̂_q^f, v_q^f)                      (Eq. 2)

(the squared error is averaged over the D_m dims). --no-first-frame-ce drops CE(v^1) (the summary's
variant); --no-last-frame removes v^f from the sequence (the paper's "motion" ablation, Table 3).
Everything is read from cached artefacts: keyframe ids (tokenizers.py cache), z_m (train_extractor.py).

    python pretrain_vla.py --data DATA --tiny                                  # CPU, minutes
    torchrun --nproc_per_node=8 pretrain_vla.py --data DATA --batch-size 32    # GPUs, full config
    python pretrain_vla.py --bench                                             # tokens/s, tiny and full
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

import data as D
import model as M
import training as TR
import tokenizers as TK
from train_extractor import MotionCache


def load_artifacts(args, motion_span=None):
    """Tokenizers, keyframe-id cache and z_m export -> (text tokenizer, FAST, keyframe cache, motion cache, vocab).
    motion_span: a callable fast -> clip span of the z_m export to read (None: the extractor's training span)."""
    text = TK.TextTokenizer.load(args.tokenizers)
    fast = TK.FASTTokenizer.load(args.tokenizers)
    kf = TK.KeyframeCache(args.keyframe_cache or Path(args.vqgan) / "keyframe_ids.hdf5")
    motion = MotionCache(args.extractor, span=motion_span(fast) if motion_span else None)
    return text, fast, kf, motion, M.Vocab(text.vocab_size, kf.n_codes, fast.vocab_size)


def check_artifacts(data, kf, motion):
    """Every episode must have cached keyframe ids and z_m, checked before the first step."""
    try:
        kf.check_covers(data)
        motion.check_covers(data, D.episode_key)
    except KeyError as e:
        raise D.DataError(e.args[0]) from None


# Deviation [pretrain-data]: the paper pre-trains on large-scale robot video; here pre-training reads the
# same LIBERO-format demonstrations as co-fine-tuning (any LIBERO-format data can be passed with --data).
class PretrainTokens(Dataset):
    """(episode, start) windows of data.PretrainView -> token sequence [BOS T][BOI v^1 EOI][Q][BOI v^f EOI] + z_m."""

    def __init__(self, data, text, kf, motion, vocab, stride=1, last_frame=True):
        self.view = D.PretrainView(data, motion.frames, motion.span, stride=stride)  # images never loaded here
        self.data, self.text, self.kf, self.motion, self.vocab = data, text, kf, motion, vocab
        self.last_frame = last_frame

    @property
    def items(self):                                            # (episode, start) per window
        return self.view.items

    def __len__(self):
        return len(self.view)

    def __getitem__(self, idx):
        i, s = self.view.items[idx]
        ep = self.data.episodes[i]
        ends = D.clip_indices(s, ep.length, self.motion.frames, self.motion.span)[[0, -1]]
        codes = self.kf.ids(ep, ends)[:, 0]                       # (2, h, w) agentview v^1, v^f
        V = self.vocab
        parts = [(M.SEG_TEXT, [V.special("BOS")] + self.text.encode(ep.instruction), M.ROLE_NONE, 0)]
        parts += M.image_part(V, codes[0], M.ROLE_V1)
        parts += [(M.SEG_Q, [V.special("Q")], M.ROLE_NONE, 0)]
        if self.last_frame:
            parts += M.image_part(V, codes[1], M.ROLE_VF)
        seq = M.assemble(parts)
        seq["z_m"] = torch.from_numpy(self.motion(D.episode_key(ep), s)).float()  # (D_m,) standardised
        return seq


def collate(batch, vocab):
    out = M.pad_batch(batch, vocab)
    out["z_m"] = torch.stack([b["z_m"] for b in batch])
    return out


def pretrain_loss(model, h, batch, first_frame_ce=True, last_frame=True):
    """Eq. (2) from the hidden states h (B, L, d) -> (total, per-term dict of detached tensors)."""
    ids, seg, role = batch["ids"], batch["seg"], batch["role"]
    q_pos = (seg == M.SEG_Q).float().argmax(1)                              # (B,) one Q per sequence
    z_hat = model.motion_head(h[torch.arange(len(h)), q_pos]).float()       # ẑ_m (B, D_m), MLP at Q
    # Sec. 3.3, Eq. (2): ||ẑ_m - z_m||² + CE(v̂_q^1, v_q^1) + CE(v̂_q^f, v_q^f)
    # Deviation [zm-standardised]: z_m is standardised per dim and the squared error averaged over D_m.
    mse = F.mse_loss(z_hat, batch["z_m"])
    ce1, _, acc1 = M.next_token_ce(model, h, ids, role, M.ROLE_V1)          # CE(v̂_q^1, v_q^1)
    cef, _, accf = M.next_token_ce(model, h, ids, role, M.ROLE_VF)          # CE(v̂_q^f, v_q^f); 0 without v^f
    total = mse + cef + (ce1 if first_frame_ce else 0)
    terms = {"mse": mse.detach(), "ce_v1": ce1.detach(), "acc_v1": acc1}
    if last_frame:
        terms.update(ce_vf=cef.detach(), acc_vf=accf)
    return total, terms


def build_model(args, vocab, D_m, image_tokens=0):
    """VLAConfig from the flags; image_tokens = codes per keyframe image (h·w) for the grid-cell embedding."""
    base = M.VLAConfig.tiny() if args.tiny else M.VLAConfig()
    over = {k: v for k, v in (("d", args.width), ("layers", args.layers), ("heads", args.heads)) if v}
    grid = {} if args.no_grid_embedding else \
        {"image_tokens": image_tokens, "visual_range": (vocab.visual0, vocab.action0)}
    return M.VLAConfig(**{**asdict(base), **over, **grid, "vocab_size": vocab.size, "D_m": D_m})


def bench():
    """Training tokens/s of the tiny and full configs on synthetic sequences (this machine)."""
    dev = TR.pick_device()
    print(f"device {dev}; synthetic pre-training batches (text 16 + 2 images + Q)")
    print(f"{'config':<8} {'params':>9} {'batch x len':>12} {'ms/step':>9} {'tokens/s':>10}")
    for name, cfg, B, hw, steps in (("tiny", M.VLAConfig.tiny(vocab_size=2000, D_m=1024), 16, 8, 5),
                                    ("full", M.VLAConfig(vocab_size=4096, D_m=2048), 1, 16, 2)):
        model = M.VLA(cfg).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        L = 16 + 2 * (hw * hw + 2) + 1
        ids = torch.randint(0, 1000, (B, L), device=dev)
        seg = torch.full((B, L), M.SEG_IMAGE, device=dev)
        amp = torch.autocast("cuda", torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)
        for k in range(steps + 1):
            if k == 1:
                t0 = time.perf_counter()
            with amp:
                logits = model.lm_head(model(ids, seg))
                loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
        dt = (time.perf_counter() - t0) / steps
        print(f"{name:<8} {sum(p.numel() for p in model.parameters()) / 1e6:>8.1f}M {f'{B} x {L}':>12} "
              f"{1000 * dt:>9.0f} {B * L / dt:>10.0f}")


def add_vla_args(p, stage: str, steps: int, batch_help: str, bench_help: str):
    """The flags both VLA stages share (inputs, model size, UniVLA's optimiser, run control)."""
    g = p.add_argument_group("inputs / outputs")
    g.add_argument("--data", help="LIBERO-format data the tokenizers, cache and extractor were built from")
    g.add_argument("--tokenizers", default="runs/tokenizers", help="output of `tokenizers.py fit`")
    g.add_argument("--vqgan", default="runs/vqgan", help="VQGAN run (its keyframe_ids.hdf5 is read)")
    g.add_argument("--keyframe-cache", default=None, help="keyframe-id cache (default VQGAN/keyframe_ids.hdf5)")
    g.add_argument("--extractor", default="runs/extractor", help="extractor run with the z_m export")
    g.add_argument("--out", default=f"runs/{stage}", help="run directory")
    g = p.add_argument_group("model (co-fine-tuning keeps the pre-trained config unless --init-from none)")
    g.add_argument("--tiny", action="store_true", help="tiny CPU config (d 128, 4 layers)")
    g.add_argument("--width", type=int, default=None, help="model width d (default 1024, tiny 128)")
    g.add_argument("--layers", type=int, default=None, help="transformer blocks (default 16, tiny 4)")
    g.add_argument("--heads", type=int, default=None, help="attention heads (default 16, tiny 4)")
    g.add_argument("--no-grid-embedding", action="store_true",
                   help="no learned grid-cell embedding on image codes (the paper's 1-D RoPE only)")
    g = p.add_argument_group("optimisation (UniVLA's settings, SPEC §1)")
    g.add_argument("--steps", type=int, default=steps, help=f"optimisation steps (paper: {steps})")
    g.add_argument("--batch-size", type=int, default=32, help=batch_help)
    g.add_argument("--lr", type=TR.in_range(0, open_lo=True), default=None, help="peak AdamW lr (default 8e-5; tiny 1e-3)")
    g.add_argument("--min-lr", type=TR.in_range(0), default=5e-6, help="cosine floor")
    g.add_argument("--warmup", type=TR.at_least(0), default=50, help="linear warm-up steps")
    g.add_argument("--weight-decay", type=TR.in_range(0), default=0.1, help="AdamW weight decay")
    g.add_argument("--grad-clip", type=TR.in_range(0, open_lo=True), default=5.0, help="gradient-norm clip")
    g.add_argument("--grad-accum", type=int, default=1,
                   help="micro-batches per optimiser step: the effective batch is batch-size x grad-accum x "
                        "processes (the paper's 256 / 128 on one GPU)")
    g.add_argument("--stride", type=TR.at_least(1), default=1, help="step between window starts (1 = every window)")
    g.add_argument("--ema", type=TR.in_range(0, 1), default=0.0,
                   help="not in the paper: export an exponential moving average of the weights with this "
                        "per-step decay (e.g. 0.999) as model.safetensors; 0 = off (the paper's setting)")
    g = p.add_argument_group("run")
    g.add_argument("--log-every", type=int, default=25, help="steps between log lines")
    g.add_argument("--ckpt-every", type=int, default=500, help="steps between checkpoints")
    g.add_argument("--stop-after", type=TR.at_least(1), default=None,
                   help="end this invocation with a checkpoint after this many steps (the schedule still spans "
                        "--steps); --resume continues where it stopped, on the same data order")
    g.add_argument("--val-every", type=int, default=500,
                   help="steps between validation losses on the held-out episodes (in log.jsonl; 0 = none)")
    g.add_argument("--val-episodes", type=int, default=10,
                   help="hold out every N-th episode (i %% N == N-1, as the VQGAN and the extractor do) for the "
                        "validation loss; 0 = train on every episode")
    g.add_argument("--val-batches", type=int, default=8, help="batches per validation loss")
    g.add_argument("--workers", type=int, default=None, help="DataLoader workers (default 0 on CPU, 4 on GPU)")
    g.add_argument("--device", default="auto", help="auto (cuda -> mps -> cpu), cpu, cuda, ...")
    g.add_argument("--seed", type=int, default=0, help="random seed")
    g.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    g.add_argument("--force", action="store_true", help="train a new run over the one already in OUT (else refused)")
    g.add_argument("--bench", action="store_true", help=bench_help)


def parse_vla_args(p, argv):
    """Parse, then apply the rules both stages share: --data unless --bench; lr 8e-5 (tiny 1e-3)."""
    args = p.parse_args(argv)
    if not args.bench and not args.data:
        p.error("--data is required")
    if args.lr is None:
        args.lr = 1e-3 if args.tiny else 8e-5
    for flag in ("grad_accum", "steps", "batch_size", "log_every", "ckpt_every", "val_batches"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.val_every < 0 or args.val_episodes < 0:
        p.error("--val-every and --val-episodes must be >= 0 (0 turns validation off)")
    if not 0 <= args.ema < 1:
        p.error(f"--ema {args.ema}: expected a per-step decay in [0, 1), e.g. 0.999 (0 = off)")
    if not args.bench:
        try:   # an unwritable --out or a full disk is named before any data is read
            TR.writable_dir(args.out)
            TR.fresh_out(args.out, args.resume, args.force)
        except TR.ArtefactError as e:
            TR.fail(e)
    return args


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_vla_args(p, "pretrain", 10000, "sequences per step per process (paper: 256 in all)",
                 "print training tokens/s of the tiny and full configs and exit")
    g = p.add_argument_group("objective, Eq. (2), and ablations")
    g.add_argument("--no-first-frame-ce", action="store_true", help="drop CE(v^1) (summary's variant)")
    g.add_argument("--no-last-frame", action="store_true", help="no v^f segment: the paper's 'motion' ablation")
    args = parse_vla_args(p, argv)
    if args.bench:
        return bench()

    (rank, world, local), device = TR.setup_run(args.seed, args.device)
    try:
        data = D.open_data(args.data)
        text, fast, kf, motion, vocab = load_artifacts(args)
        check_artifacts(data, kf, motion)
    except (D.DataError, FileNotFoundError, TR.ArtefactError) as e:
        TR.fail(f"{e}")
    dataset = PretrainTokens(data, text, kf, motion, vocab, args.stride, not args.no_last_frame)
    cfg = build_model(args, vocab, motion.D_m, kf.codes_per_image)
    config = {"stage": "pretrain", "vla": asdict(cfg), "vocab": asdict(vocab), "args": vars(args),
              "frames": motion.frames, "span": motion.span, "world_size": world}
    if rank == 0:
        print(json.dumps(config, indent=1, default=str))
    model = M.VLA(cfg).to(device)
    first_frame_ce, last_frame = not args.no_first_frame_ce, not args.no_last_frame
    train_vla(args, model, dataset, functools.partial(collate, vocab=vocab),
              lambda m, h, b: pretrain_loss(m, h, b, first_frame_ce, last_frame), config, (rank, world, local),
              device, "pretrain")


class LossModule(torch.nn.Module):
    """batch -> (loss, terms): the decoder and its heads in one forward, so DDP sees every parameter."""

    def __init__(self, model, loss_fn):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch):
        return self.loss_fn(self.model, self.model(batch["ids"], batch["seg"], batch.get("state")), batch)


def heldout_split(dataset, every: int) -> tuple[list[int], list[int]]:
    """Indices of the dataset's items (episode, start) -> (train, validation): the episodes
    data.heldout_episodes names (every `every`-th, the ones the VQGAN and the extractor hold out too) are
    validation; every = 0 keeps all for training (no validation)."""
    # Deviation [val-holdout]: the VLA stages hold out every 10th episode (--val-episodes) for a validation
    # loss; the paper trains on every demonstration (--val-episodes 0 does too).
    held = set(D.heldout_episodes(1 + max((i for i, _ in dataset.items), default=-1), every))
    train = [k for k, (i, _) in enumerate(dataset.items) if i not in held]
    return (train, [k for k, (i, _) in enumerate(dataset.items) if i in held]) if train else (list(range(len(dataset))), [])


@torch.no_grad()
def validation_loss(net, loader, device, amp, max_batches: int) -> dict:
    """Mean loss and terms over up to max_batches batches of held-out episodes (eval mode, no grad)."""
    net.eval()
    sums, n = {}, 0
    for k, batch in enumerate(loader):
        if k == max_batches:
            break
        with amp:
            loss, terms = net({key: v.to(device) for key, v in batch.items()})
        for key, v in {"loss": loss, **terms}.items():
            sums[key] = sums.get(key, 0.0) + float(v)
        n += 1
    net.train()
    return {f"val_{key}": v / max(1, n) for key, v in sums.items()}


def train_vla(args, model, dataset, collate_fn, loss_fn, config, dist_info, device, stage):
    """The loop both VLA stages share (nanoGPT's shape): AdamW with UniVLA's settings and parameter groups,
    warm-up + cosine, --grad-accum micro-batches per step, gradient clip, torchrun DDP, bf16 autocast on
    CUDA; one log line per --log-every with tokens/s and the batch's sequence length (the only host syncs);
    validation loss on held-out episodes every --val-every; atomic resumable checkpoints; optional --ema.
    collate_fn must pickle (a module-level function or functools.partial) so DataLoader workers run under
    the spawn start method. loss_fn(model, h, batch) -> (loss, per-term dict of tensors)."""
    rank, world, local = dist_info
    out = Path(args.out)
    opt = TR.adamw(model, args.lr, args.weight_decay, betas=(0.9, 0.95))
    step, state = TR.resume(out, model, opt, args.resume)
    ema = None
    if args.ema:
        if state is not None and "ema" not in state:
            print(f"note: {out / 'train_state.pt'} holds no --ema average; it starts from the step-{step} weights")
        ema = TR.WeightEMA(model, args.ema, (state or {}).get("ema"))
    net = inner = LossModule(model, loss_fn)
    sampler = None
    train_idx, val_idx = heldout_split(dataset, args.val_episodes)
    train_set = torch.utils.data.Subset(dataset, train_idx)
    if world > 1:  # the heads run inside the wrapped forward; a zero λ leaves a head unused
        from torch.nn.parallel import DistributedDataParallel
        from torch.utils.data.distributed import DistributedSampler
        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None,
                                      find_unused_parameters=True)
        sampler = DistributedSampler(train_set, world, rank, shuffle=True, seed=args.seed)
    workers = TR.loader_workers(args.workers, device)
    loader = D.make_loader(train_set, args.batch_size, seed=args.seed, workers=workers, sampler=sampler,
                           drop_last=len(train_set) >= args.batch_size * world, collate_fn=collate_fn)
    val_loader = D.make_loader(torch.utils.data.Subset(dataset, val_idx), args.batch_size, shuffle=False,
                               collate_fn=collate_fn) if val_idx and args.val_every else None
    if rank == 0:
        v = config["vocab"]
        print(f"VLA: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params | vocab "
              f"{v['n_text'] + v['n_visual'] + v['n_action'] + len(M.SPECIALS)} (text {v['n_text']}, visual "
              f"{v['n_visual']}, action {v['n_action']}) | {len(train_set)} train / {len(val_idx)} held-out windows "
              f"| batch {args.batch_size} x {args.grad_accum} accum x {world} processes | device {device}")
    amp, batches = TR.autocast(device), TR.Batches(loader, device, sampler)
    TR.restore_order(state, batches)
    loop = TR.TrainLoop(out, opt, args.steps, args.lr, args.min_lr, args.warmup, stage, step, show=rank == 0,
                        stop_after=args.stop_after)
    tokens = torch.zeros((), dtype=torch.long, device=device)

    while loop.running():                                         # sets the warm-up + cosine lr
        # ---- forward / backward over --grad-accum micro-batches (DDP syncs gradients on the last only)
        for micro in range(args.grad_accum):
            batch = next(batches)
            sync = world == 1 or micro == args.grad_accum - 1
            with (contextlib.nullcontext() if sync else net.no_sync()), amp:
                loss, terms = net(batch)                          # through DDP when distributed
            (loss / args.grad_accum).backward()
            tokens += (batch["seg"] != M.SEG_PAD).sum() * world
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update(model)
        loop.advance()
        # ---- log / validate / checkpoint (rank 0; the only places that read values back from the device)
        if loop.due(args.log_every):
            loop.log(loss=loss.detach(), **terms, grad_norm=gnorm, seq_len=batch["ids"].shape[1],
                     tok_per_s=float(tokens) / loop.seconds_since_log())
            tokens.zero_()
        if val_loader is not None and loop.due(args.val_every):
            val = validation_loss(inner, val_loader, device, amp, args.val_batches)  # rank 0 alone: not via DDP
            with open(loop.runlog.path, "a") as f:
                f.write(json.dumps({"step": loop.step, **val}) + "\n")
            print(f"step {loop.step}/{args.steps} | " + " | ".join(f"{k} {v:.4g}" for k, v in val.items()), flush=True)
        if loop.due(args.ckpt_every):
            ts = {**TR.train_state(loop.step, opt, batches=batches), **({"ema": ema.state_dict()} if ema else {})}
            TR.save_checkpoint(out, model, {**config, "step": loop.step}, ts, export=ema and ema.weights)
    loop.close()
    if rank == 0:
        print(f"saved {out} at step {loop.step}")
    if world > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(TR.run_cli(main))
