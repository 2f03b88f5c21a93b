"""Stage 1 — train the Latent Motion Extractor (paper Sec. 3.2, Eq. 1) and export z_m for later stages.

    L = L_rec + lambda_p L_p + lambda_GAN L_GAN + lambda_KL L_KL          (Eq. 1)

L_rec is the MSE averaged over all elements of the clip; L_KL (lambda_KL = 1e-6) regularises the
Gaussian posteriors of z_s, z_m^h and z_m^w; L_GAN is an optional per-frame PatchGAN hinge term
(--gan-weight, off by default); L_p (LPIPS) is omitted: no VGG weights are available offline.
After training, z_m (posterior mean) of every clip start is exported to OUT/z_m.hdf5 with per-dim
mean/std in OUT/z_m_stats.json (clips over --span steps: pre-training's target) and, for each of
--export-spans, to OUT/z_m_span<S>.hdf5 (20 = co-fine-tuning's window N·l_a: Eq. 3's z_m(V_{1:f})), so
pre-training and co-fine-tuning never run the extractor. --latent plain trains appendix Table 4's
plain video VAE (no z_s / z_m split) whose latent of the same size D_m is exported the same way.

    python train_extractor.py --data DATA --tiny                      # CPU, minutes (32², f = 16)
    python train_extractor.py --data DATA --steps 20000 --batch-size 16   # one GPU, the paper's 224² layout
    python train_extractor.py --data DATA --out runs/extractor --export-only   # re-export z_m
    python train_extractor.py --data DATA --out runs/extractor --tiny --validate-only  # metrics + figure again
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Subset

import data as D
import model as M
import training as TR


def ssim(x, y):
    """Mean SSIM (11x11 Gaussian window, sigma 1.5) of images (n, 3, H, W) in [-1, 1], on [0, 1] scale."""
    x, y = (x + 1) / 2, (y + 1) / 2
    g = torch.exp(-((torch.arange(11) - 5.0) ** 2) / (2 * 1.5 ** 2))
    w = (g[:, None] * g[None]) / g.sum() ** 2
    w = w.expand(3, 1, 11, 11).to(x)
    blur = lambda t: F.conv2d(t, w, padding=5, groups=3)
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return (((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))).mean()


def simulator_masks(data: D.Demonstrations, items, frames: int, span: int, size: int):
    """(n, f, size, size) bool masks of the bodies that move in each clip (i, s), from the simulator
    (envs.mini.motion_masks on the demo's states and model_file) — or None where the data's simulator cannot
    be rebuilt here (real LIBERO's robosuite XML, synthetic data): validate then uses pixel change."""
    from envs import mini as sim
    try:
        masks = [sim.motion_masks(data.model_file(i), data.read(i, "states",
                                  D.clip_indices(s, data.episodes[i].length, frames, span)), size) for i, s in items]
    except Exception as e:  # noqa: BLE001 - any failure to rebuild the scene means: no ground truth
        print(f"[validate] no simulator masks ({type(e).__name__}: {str(e)[:80]}); the factorisation ratio "
              f"uses pixel change")
        return None
    return torch.from_numpy(np.stack(masks))


@torch.no_grad()
def validate(model, clips_a, clips_b, masks_a, out: Path, step: int) -> dict:
    """PSNR/SSIM of posterior-mean reconstructions; the Fig. 3-4 style figure; the factorisation ratio:
    decoding z_s(A) with z_m(B) should change A's moving pixels far more than its static ones. The
    moving pixels are the simulator's (masks_a (n, f, H, W): bodies that move in A) when given, else
    the pixels that differ from A's first frame by more than 0.1."""
    model.eval()
    rec_a, _, zs_a, zm_a = model(clips_a, sample=False)                   # (n, f, 3, H, W)
    flat = lambda v: v.flatten(0, 1).clamp(-1, 1)
    psnr = lambda x, y: TR.psnr(x, y).mean()
    if model.cfg.latent == "plain":  # appendix Table 4's latent: nothing to swap, reconstruction only
        from tokenizers import save_png
        t = np.linspace(0, model.cfg.frames - 1, min(6, model.cfg.frames)).round().astype(int)
        save_png(out / "figure.png", [clips_a[0][t].float().cpu(), rec_a[0][t].float().cpu()])
        model.train()
        return {"psnr": psnr(flat(rec_a), flat(clips_a)).item(), "ssim": ssim(flat(rec_a), flat(clips_a)).item(),
                "factorisation_ratio": float("nan"), "moving_mask": "none (plain latent)"}
    _, _, zs_b, zm_b = model(clips_b, sample=False)
    cross = model.decode(zs_a, zm_b)                                      # structure of A, motion of B
    if masks_a is not None:
        moving = masks_a.to(clips_a.device)[:, :, None].expand_as(clips_a)
    else:
        moving = ((clips_a - clips_a[:, :1]).abs().amax(2, keepdim=True) > 0.1).expand_as(clips_a)
    change = (cross - rec_a).abs()
    inside, outside = change[moving].mean().item(), change[~moving].mean().item()
    metrics = {"psnr": psnr(flat(rec_a), flat(clips_a)).item(), "ssim": ssim(flat(rec_a), flat(clips_a)).item(),
               "cross_change_moving": inside, "cross_change_static": outside,
               "factorisation_ratio": inside / max(outside, 1e-8), "moving_fraction": moving.float().mean().item(),
               "moving_mask": "simulator" if masks_a is not None else "pixel change"}
    # figure: rows = A, reconstruction, structure only (z_m = 0), motion only (z_s = 0), B, cross, |cross - rec A|
    f = model.cfg.frames
    t = np.linspace(0, f - 1, min(6, f)).round().astype(int)
    rows = [clips_a[0], rec_a[0], model.decode(zs_a[:1], torch.zeros_like(zm_a[:1]))[0],
            model.decode(torch.zeros_like(zs_a[:1]), zm_a[:1])[0], clips_b[0], cross[0],
            (change[0] * 4 - 1).clamp(-1, 1)]
    from tokenizers import save_png
    save_png(out / "figure.png", [r[t].float().cpu() for r in rows])
    model.train()
    return metrics


# ----------------------------------------------------------------------------------------------
# The z_m export (what the VLA stages read) and its reader

def motion_export_name(span: int, train_span: int) -> str:
    """File stem of the z_m export for clips over `span` steps: z_m (the extractor's own training span,
    pre-training's target) or z_m_span<S> (e.g. co-fine-tuning's window span N·l_a = 20)."""
    return "z_m" if span == train_span else f"z_m_span{span}"


class MotionCache:
    """Reads the extractor's export: z_m (posterior mean) of the clip starting at step s of an episode,
    standardised per dimension with the saved statistics (the regression target of Eq. 2 and 3).
    Starts between exported ones (export stride > 1) use the nearest earlier exported start.
    span=None reads the export over the extractor's training span (z_m.hdf5); span=S the export of
    clips of f frames over S steps (z_m_span<S>.hdf5, or z_m.hdf5 where S is the training span)."""

    def __init__(self, run_dir, span: int | None = None):
        import h5py
        run_dir = Path(run_dir)
        train_span = json.loads((run_dir / "config.json").read_text()).get("span") \
            if (run_dir / "config.json").exists() else None
        stem = "z_m" if span is None or train_span is None else motion_export_name(span, train_span)
        self.path = run_dir / f"{stem}.hdf5"
        if not self.path.exists():
            again = f" --export-spans {span}" if stem != "z_m" else ""
            raise FileNotFoundError(f"{self.path}: no exported z_m{'' if stem == 'z_m' else f' over {span} steps'} "
                                    f"(run `python train_extractor.py --data DATA --out {run_dir} --export-only{again}`)")
        stats = json.loads((run_dir / f"{stem}_stats.json").read_text())
        self.mean, self.std = np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)
        with h5py.File(self.path, "r") as f:
            self.stride, self.D_m = int(f.attrs["stride"]), int(f.attrs["D_m"])
            self.frames, self.span = int(f.attrs["frames"]), int(f.attrs["span"])
        self._f = None

    def __getstate__(self):
        return {**self.__dict__, "_f": None}

    def check_covers(self, data, key_fn):
        """Fail before training, not mid-epoch, when the export was made from other data."""
        import h5py
        with h5py.File(self.path, "r") as f:
            for ep in data.episodes:
                key, rows = key_fn(ep), -(-ep.length // self.stride)
                if key not in f or f[key].shape != (rows, self.D_m):
                    raise KeyError(f"{self.path}: expected z_m of shape ({rows}, {self.D_m}) for {key}, found "
                                   f"{f[key].shape if key in f else 'nothing'}; export from this data with "
                                   f"`python train_extractor.py --data DATA --out RUN --export-only`")

    def __call__(self, key: str, start: int, standardize: bool = True) -> np.ndarray:
        import h5py
        if self._f is None:
            self._f = h5py.File(self.path, "r")
        if key not in self._f:
            raise KeyError(f"{self.path}: no z_m for episode {key}; export from the same data "
                           f"(`python train_extractor.py --export-only`)")
        z = self._f[key][start // self.stride]                                      # (D_m,)
        return (z - self.mean) / self.std if standardize else z


def export_motion(model, data: D.Demonstrations, out: Path, span: int, stride: int, device, batch_size=64,
                  name: str = "z_m"):
    """z_m (posterior mean) of the clip of f frames over `span` steps starting at every s = 0, stride, ...
    < T, for every episode -> OUT/<name>.hdf5 + OUT/<name>_stats.json (motion_export_name).
    Per-frame encoder features are computed once per episode and shared by its overlapping clips."""
    cfg = model.cfg
    model.eval()
    tmp = out / f".{name}.hdf5.tmp"
    sums, sq, n = np.zeros(cfg.D_m), np.zeros(cfg.D_m), 0
    with torch.no_grad(), h5py.File(tmp, "w") as h:
        h.attrs.update(frames=cfg.frames, span=span, stride=stride, D_m=cfg.D_m)
        for i in D.progress_bar(range(len(data)), desc="exporting z_m", unit="episode"):
            T = data.episodes[i].length
            frames = D.frames_to_tensor(data.images(i, "agentview"), cfg.hw)        # (T, 3, H, W)
            feats = torch.cat([model.encode_frames(b.to(device).contiguous(memory_format=torch.channels_last))
                               for b in frames.split(batch_size)])                  # (T, d_z, h, w)
            rows = []
            for starts in np.array_split(np.arange(0, T, stride), max(1, T // (stride * 16))):
                idx = np.stack([D.clip_indices(s, T, cfg.frames, span) for s in starts])  # (n, f)
                z = model.mix(feats[torch.from_numpy(idx).to(device)])                    # (n, d_z, f, h, w)
                rows.append(model.motion_target(z).float().cpu())                          # (n, D_m)
            z_m = torch.cat(rows).numpy()                                                 # (ceil(T / stride), D_m)
            h.create_dataset(D.episode_key(data.episodes[i]), data=z_m.astype(np.float32))
            sums, sq, n = sums + z_m.sum(0), sq + (z_m.astype(np.float64) ** 2).sum(0), n + len(z_m)
    tmp.replace(out / f"{name}.hdf5")
    mean = sums / n
    std = np.sqrt(np.maximum(sq / n - mean ** 2, 0)) + 1e-6
    stats = json.dumps({"mean": mean.tolist(), "std": std.tolist(), "count": n, "span": span})
    TR.atomic_write(out / f"{name}_stats.json", lambda p: p.write_text(stats))
    model.train()
    print(f"exported z_m of {n} clips (f = {cfg.frames} frames over {span} steps, D_m = {cfg.D_m}, stride {stride}) "
          f"to {out / (name + '.hdf5')}")


def export_all(model, data, out: Path, train_span: int, spans, stride: int, device):
    """The training span's export (z_m.hdf5: pre-training's target) and one per extra span (co-fine-tuning's
    window span N·l_a: z_m_span<S>.hdf5)."""
    for span in dict.fromkeys([train_span, *spans]):
        export_motion(model, data, out, span, stride, device, name=motion_export_name(span, train_span))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    # data
    p.add_argument("--data", required=True, help="LIBERO-format training data (root, suite folder or file) "
                   "or a LeRobot dataset folder")
    p.add_argument("--out", default="runs/extractor", help="run directory")
    p.add_argument("--span", type=int, default=100, help="steps a clip spans (100 = 5 s at 20 Hz, 6 keyframes 1 s apart)")
    # model
    p.add_argument("--tiny", action="store_true", help="tiny CPU config (32², 0.1M params, D_m = 1024)")
    p.add_argument("--frames", type=int, default=16, help="f, frames per clip")
    p.add_argument("--image-size", type=int, default=None, help="square clip resolution (default 224, the paper's; tiny 32)")
    p.add_argument("--image-width", type=int, default=0, help="clip width W for non-square frames (0: W = H)")
    p.add_argument("--motion-input", choices=["frames", "diff"], default="frames",
                   help="motion branch input: the per-frame reduced features z' (paper) or their temporal "
                        "differences z'[t] - z'[t-1] (summary)")
    p.add_argument("--latent", choices=["split", "plain"], default="split",
                   help="split: structure z_s + motion z_m (paper); plain: one video-VAE latent of the same size "
                        "D_m without the split, as the supervision of Q (appendix Table 4's ablation)")
    # optimisation
    p.add_argument("--steps", type=TR.at_least(1), default=3000, help="optimisation steps")
    p.add_argument("--minutes", type=TR.in_range(0, open_lo=True), default=None,
                   help="wall-clock budget: after 20 warm-up + 20 timed steps, --steps becomes what the speed allows in it "
                        "(the schedule is fitted to it; for time-boxed checks, not with --resume)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per step")
    p.add_argument("--lr", type=TR.in_range(0, open_lo=True), default=1e-3, help="peak AdamW learning rate")
    p.add_argument("--min-lr", type=float, default=1e-4, help="final learning rate of the cosine schedule")
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    p.add_argument("--weight-decay", type=TR.in_range(0), default=0.01, help="AdamW weight decay")
    p.add_argument("--kl-weight", type=TR.in_range(0), default=1e-6, help="lambda_KL of Eq. (1)")
    p.add_argument("--gan-weight", type=TR.in_range(0), default=0.0, help="lambda_GAN of Eq. (1): per-frame PatchGAN hinge (0 = off)")
    p.add_argument("--gan-start", type=int, default=0, help="step at which the GAN term starts")
    # run
    p.add_argument("--log-every", type=int, default=50, help="steps between log lines")
    p.add_argument("--val-every", type=int, default=500, help="steps between validation + checkpoint + figure")
    p.add_argument("--val-clips", type=int, default=16, help="held-out clips for validation")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default 0 on CPU, 4 on GPU)")
    p.add_argument("--device", default="auto", help="auto (cuda -> mps -> cpu), cpu, cuda, ...")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    p.add_argument("--force", action="store_true", help="train a new run over the one already in OUT (else refused)")
    p.add_argument("--export-stride", type=int, default=1, help="export z_m for clip starts 0, stride, 2 stride, ...")
    p.add_argument("--export-spans", default="20",
                   help="comma-separated extra clip spans to export besides --span (z_m_span<S>.hdf5); 20 = "
                        "co-fine-tuning's window N·l_a in the LIBERO setting (Eq. 3's z_m(V_{1:f})); '' = none")
    p.add_argument("--no-export", action="store_true", help="skip the z_m export after training")
    p.add_argument("--export-only", action="store_true", help="load OUT's model and only export z_m")
    p.add_argument("--validate-only", action="store_true",
                   help="load OUT's model, validate it on the held-out clips (metrics + figure.png) and exit")
    args = p.parse_args(argv)
    try:
        args.spans = [int(x) for x in args.export_spans.split(",") if x.strip()]
    except ValueError:
        p.error(f"--export-spans {args.export_spans!r}: expected comma-separated step counts, e.g. 20 or 20,40")
    if any(s < args.frames - 1 for s in args.spans):
        p.error(f"--export-spans {args.export_spans}: every span must be >= frames - 1 = {args.frames - 1}")
    try:   # an unwritable --out or a full disk is named before any data is read
        TR.writable_dir(args.out)
        if not (args.export_only or args.validate_only):
            TR.fresh_out(args.out, args.resume, args.force)
    except TR.ArtefactError as e:
        TR.fail(e)
    return args


def extractor_config(args, out: Path) -> M.ExtractorConfig:
    """--tiny or the full config with the flags applied; --validate-only: the trained run's own config."""
    if args.validate_only:
        saved = TR.load_config(out)
        args.span = saved["span"]
        return M.ExtractorConfig(**saved["extractor"])
    base = M.ExtractorConfig.tiny() if args.tiny else M.ExtractorConfig()
    over = {"frames": args.frames, "motion_input": args.motion_input, "latent": args.latent,
            "image_width": args.image_width}
    if args.image_size:
        over["image_size"] = args.image_size
    return M.ExtractorConfig(**{**asdict(base), **over})


def validation_clips(data, view, held, cfg, args, device):
    """Fixed pairs (A, B) of held-out clips, B = A rolled by one, and A's simulator masks (or None)."""
    val_idx = [k for k, (i, _) in enumerate(view.items) if i in held]
    pick = np.random.default_rng(0).permutation(len(val_idx))[: 2 * args.val_clips]
    val = torch.stack([view[val_idx[k]]["clip"] for k in pick]).to(device)      # (2n, f, 3, H, W)
    half = len(val) // 2 or 1
    clips_a, clips_b = val[:half], val[-half:].roll(1, 0) if len(val) > 1 else val
    masks_a = simulator_masks(data, [view.items[val_idx[k]] for k in pick[:half]], cfg.frames, args.span,
                              cfg.image_size) if cfg.hw[0] == cfg.hw[1] else None  # the masks render square
    return clips_a, clips_b, masks_a, len(val_idx)


def train(args, model, loader, val, out: Path, config: dict, device):
    """Eq. (1) by AdamW (parameter groups) with warm-up + cosine; validation, figure and checkpoint
    every --val-every; the optional GAN term's discriminator trains (and resumes) beside the model."""
    opt = TR.adamw(model, args.lr, args.weight_decay, betas=(0.9, 0.95))
    disc = opt_d = None
    if args.gan_weight > 0:
        from tokenizers import PatchDiscriminator
        disc = PatchDiscriminator(32, n_layers=2).to(device)
        opt_d = torch.optim.AdamW(disc.parameters(), lr=args.lr, betas=(0.5, 0.9))
    extras = {"disc": disc, "optimizer_d": opt_d} if disc is not None else {}
    step, state = TR.resume(out, model, opt, args.resume, extras)
    amp, batches = TR.autocast(device), TR.Batches(loader, device)
    TR.restore_order(state, batches)
    loop = TR.TrainLoop(out, opt, args.steps, args.lr, args.min_lr, args.warmup, "extractor", step,
                        minutes=args.minutes)

    def checkpoint():
        metrics = validate(model, *val, out, loop.step)
        TR.save_checkpoint(out, model, {**config, "step": loop.step, "val": metrics}, TR.train_state(loop.step, opt, extras, batches))
        print(f"step {loop.step}: val PSNR {metrics['psnr']:.2f} dB | SSIM {metrics['ssim']:.3f} | cross-reconstruction "
              f"change moving/static {metrics['factorisation_ratio']:.1f}x ({metrics['moving_mask']} mask) | saved {out}",
              flush=True)

    model.train()
    while loop.running():                                                # sets the warm-up + cosine lr
        clip = next(batches)["clip"]                                     # V_{1:f} (B, f, 3, H, W)
        # ---- forward / backward
        with amp:
            rec, kl, _, _ = model(clip)                                  # V̂ (B, f, 3, H, W)
        rec = rec.float()
        # Sec. 3.2, Eq. (1): L = L_rec + λ_p L_p + λ_GAN L_GAN + λ_KL L_KL
        # Deviation [no-lpips]: no L_p (LPIPS needs VGG weights no package registry here ships).
        l_rec = F.mse_loss(rec, clip)                                    # L_rec, averaged over all elements
        loss = l_rec + args.kl_weight * kl                               # + λ_KL L_KL
        parts = {"rec": l_rec.detach(), "kl": kl.detach()}               # tensors: synced only at log steps
        use_gan = disc is not None and loop.step >= args.gan_start
        if use_gan:
            l_gan = -disc(rec.flatten(0, 1)).mean()                      # hinge generator loss, per frame
            loss = loss + args.gan_weight * l_gan                        # + λ_GAN L_GAN
            parts["gan"] = l_gan.detach()
        TR.optimizer_step(loss, model, opt)
        if use_gan:
            parts["d"] = TR.discriminator_step(disc, opt_d, clip.flatten(0, 1), rec.flatten(0, 1))
        loop.advance()
        # ---- log / validate + checkpoint
        if loop.due(args.log_every):
            loop.log(loss=loss.detach(), **parts)
        if loop.due(args.val_every):
            checkpoint()
    loop.close()
    if state and state["step"] >= args.steps:
        print(f"{out} is already trained to step {state['step']}")


def main(argv=None):
    args = parse_args(argv)
    TR.seed_everything(args.seed)
    device = TR.pick_device(args.device)
    out = Path(args.out)
    try:
        data = D.open_data(args.data, progress=True)
    except (D.DataError, TR.ArtefactError) as e:
        TR.fail(f"{e}")
    if args.export_only:
        cfg = TR.load_config(out)
        model = M.LatentMotionExtractor(M.ExtractorConfig(**cfg["extractor"]))
        model = TR.load_weights(out, model, device).to(device).to(memory_format=torch.channels_last)
        export_all(model, data, out, cfg["span"], args.spans, args.export_stride, device)
        return
    cfg = extractor_config(args, out)
    held = D.heldout_episodes(len(data))
    config = {"stage": "extractor", "extractor": asdict(cfg), "span": args.span, "args": vars(args),
              "heldout_episodes": held, "data": str(args.data), "D_m": cfg.D_m}
    print(json.dumps(config, indent=1, default=str))

    # ---- data: clips of training episodes; fixed validation clip pairs from held-out episodes
    view = D.ClipView(data, cfg.frames, args.span, cfg.hw)
    train_idx = [k for k, (i, _) in enumerate(view.items) if i not in held] or list(range(len(view)))
    loader = D.make_loader(Subset(view, train_idx), args.batch_size, seed=args.seed,
                           workers=TR.loader_workers(args.workers, device),
                           drop_last=len(train_idx) >= args.batch_size)
    *val, n_val = validation_clips(data, view, held, cfg, args, device)

    model = M.LatentMotionExtractor(cfg).to(device).to(memory_format=torch.channels_last)
    latents = (f"z_v {cfg.D_m // cfg.frames}x{cfg.frames} (plain)" if cfg.latent == "plain" else
               f"z_s {cfg.d_s}x{cfg.n_q}x{cfg.h_s}x{cfg.w_s} | z_m^h {cfg.d_m}x{cfg.frames}x{cfg.w_m}, "
               f"z_m^w {cfg.d_m}x{cfg.frames}x{cfg.h_m}")
    print(f"extractor: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params | {latents} | D_m {cfg.D_m} | "
          f"{len(train_idx)} train clips, {n_val} held-out | device {device}")
    if args.validate_only:
        model = TR.load_weights(out, model, device)
        print(json.dumps(validate(model, *val, out, TR.load_config(out).get("step", 0)), indent=1))
        return
    train(args, model, loader, val, out, config, device)
    if not args.no_export:
        export_all(model, data, out, args.span, args.spans, args.export_stride, device)


if __name__ == "__main__":
    sys.exit(TR.run_cli(main))
