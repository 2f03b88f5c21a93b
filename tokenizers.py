"""The three frozen tokenizers of CoWVLA: FAST actions, instruction text, VQGAN keyframes.

The VLA decoder (Sec. 3.3-3.4) predicts one token sequence mixing instruction tokens T, keyframe
tokens v_q and action tokens A_q. As in the paper these tokenizers are trained before any VLA
training and then frozen:

    FASTTokenizer   action chunk (l_a, D) -> DCT-II per dim -> x scale, round -> low frequencies
                    first -> BPE  (Pertsch et al. 2025, arXiv 2501.09747)
    TextTokenizer   SentencePiece BPE over the dataset's instructions, byte fallback
    VQGAN           taming-style conv encoder/decoder + FSQ (default) or l2-normalised VQ
                    (Esser et al. 2021; Mentzer et al. 2024), one model for both cameras; the network is
                    in vqgan.py, its training, scoring, loading and keyframe cache here

Commands (tiny = CPU minutes; drop --tiny on a GPU for the default 128² config):
    python tokenizers.py fit --data DATA --out runs/tokenizers            # FAST + text (+ stats.json)
    python tokenizers.py train-vqgan --data DATA --out runs/vqgan --tiny  # image tokenizer
    python tokenizers.py cache --data DATA --vqgan runs/vqgan             # keyframe ids, once
    python experiments/tokenizer_report.py --data DATA --tokenizers runs/tokenizers --vqgan runs/vqgan

Note: this module's name shadows the Hugging Face `tokenizers` package for scripts run from the
repository root (SPEC §3); nothing here imports transformers.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F

import data as D
import training as TR
from vqgan import VQGAN, PatchDiscriminator, VQGANConfig  # the keyframe tokenizer's network (vqgan.py)

_BASE = 0x4E00  # integers are written as CJK characters for SentencePiece: no whitespace, no control chars


def _train_sentencepiece(sentences: list[str], vocab_size: int, byte_fallback=True, **kw) -> bytes:
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=model, vocab_size=vocab_size, model_type="bpe",
        character_coverage=1.0, byte_fallback=byte_fallback, hard_vocab_limit=False, minloglevel=2,
        unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, **kw)
    return model.getvalue()


# ----------------------------------------------------------------------------------------------
# FAST action tokenizer (SPEC §2)

def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix C (n, n): coefficients = C @ x along time, inverse x = C.T @ coeffs."""
    k, t = np.arange(n)[:, None], np.arange(n)[None, :]
    C = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * t + 1) * k / (2 * n))
    C[0] /= np.sqrt(2.0)
    return C


class FASTTokenizer:
    """FAST: frequency-space action sequence tokenisation.

    encode: normalised chunk (l_a, D) in [-1, 1] -> DCT-II (norm='ortho') along time per dim ->
            round(scale * coeffs) -> flatten row-major (frequency 0 of every dim, then frequency 1, ...)
            -> shift by the minimum coefficient seen at fit time -> BPE ids.
    decode: never raises. Unknown / out-of-range ids are dropped, the coefficient sequence is
            truncated or zero-padded to l_a * D (missing high frequencies = 0), then un-shifted,
            reshaped, divided by scale and inverse-DCT'd; the result is clipped to [-1, 1].
    Rounding bound: each coefficient is off by at most 0.5 / scale, so each action value by at most
    0.5 * sqrt(l_a) / scale (orthonormal inverse) in normalised units; coefficients outside the fit
    range are clipped to it.
    """

    def __init__(self, l_a=10, D=7, scale=10.0, vocab_size=1024, min_coeff=0, max_coeff=0, sp_model=b"",
                 coeff_lo=None, coeff_hi=None):
        self.l_a, self.D, self.scale, self.vocab_size = l_a, D, float(scale), vocab_size
        self.min_coeff, self.max_coeff = int(min_coeff), int(max_coeff)
        # per flat position, the range of coefficients the training chunks span (constrained decoding)
        self.coeff_lo, self.coeff_hi = coeff_lo, coeff_hi
        self.C = dct_matrix(l_a)  # (l_a, l_a)
        self.sp = spm.SentencePieceProcessor(model_proto=sp_model) if sp_model else None
        self._sp_model = sp_model

    def coefficients(self, chunks: np.ndarray) -> np.ndarray:
        """(..., l_a, D) normalised -> (..., l_a * D) integer DCT coefficients, low frequencies first."""
        c = np.einsum("kt,...td->...kd", self.C, np.asarray(chunks, np.float64))  # (..., l_a, D)
        return np.round(c * self.scale).astype(np.int64).reshape(*c.shape[:-2], -1)

    def _to_text(self, coeffs: np.ndarray) -> str:
        # Deviation [fast-clip]: coefficients outside the range seen at fit time are clipped to it at
        # encode (the reference would need new base symbols); a far outlier chunk decodes clipped.
        c = np.clip(coeffs, self.min_coeff, self.max_coeff) - self.min_coeff
        return "".join(chr(_BASE + int(v)) for v in c)

    def _from_text(self, text: str) -> list[int]:
        """Inverse of _to_text; characters that are no coefficient symbol (e.g. <unk>'s) are dropped."""
        n_sym = self.max_coeff - self.min_coeff + 1
        return [ord(ch) - _BASE + self.min_coeff for ch in text if 0 <= ord(ch) - _BASE < n_sym]

    def fit(self, chunks: np.ndarray) -> "FASTTokenizer":
        """chunks: (n, l_a, D) normalised training chunks."""
        coeffs = self.coefficients(chunks)  # (n, l_a D)
        self.min_coeff, self.max_coeff = int(coeffs.min()), int(coeffs.max())
        # every integer in the fit range is a base symbol (one extra sentence lists them all, so a value
        # unseen in training still encodes; encode clips to the range, so no byte fallback is needed)
        # Deviation [fast-sentencepiece]: BPE merges are learned by SentencePiece, which has no minimum
        # pair frequency (the reference uses 2).
        n_sym = self.max_coeff - self.min_coeff + 1
        self._sp_model = _train_sentencepiece(
            [self._to_text(c) for c in coeffs] + [self._to_text(np.arange(self.min_coeff, self.max_coeff + 1))],
            max(self.vocab_size, n_sym + 1), byte_fallback=False,
            split_by_unicode_script=False,
            split_by_whitespace=False, add_dummy_prefix=False, remove_extra_whitespaces=False,
            normalization_rule_name="identity", max_sentencepiece_length=16)
        self.sp = spm.SentencePieceProcessor(model_proto=self._sp_model)
        self.vocab_size = self.sp.get_piece_size()
        return self

    def fit_ranges(self, chunks: np.ndarray) -> "FASTTokenizer":
        """Per flat position (frequency-major), the range of the coefficients of `chunks` (n, l_a, D):
        constrained decoding keeps every generated coefficient inside it. Fit on every chunk the VLA
        trains on (stride 1)."""
        c = np.clip(self.coefficients(chunks), self.min_coeff, self.max_coeff)     # (n, l_a D)
        self.coeff_lo, self.coeff_hi = c.min(0).tolist(), c.max(0).tolist()
        return self

    def encode(self, chunk: np.ndarray) -> list[int]:
        """(l_a, D) normalised chunk -> BPE ids in [0, vocab_size)."""
        return self.sp.encode(self._to_text(self.coefficients(chunk)))

    def decode(self, ids, l_a: int | None = None, D: int | None = None) -> np.ndarray:
        """ids -> (l_a, D) normalised chunk in [-1, 1]; any id sequence is accepted (see class doc)."""
        l_a, D = l_a or self.l_a, D or self.D
        ids = [int(i) for i in ids if 0 <= int(i) < self.vocab_size]
        coeffs = self._from_text(self.sp.decode(ids) if ids else "")
        flat = np.zeros(l_a * D)
        flat[: min(len(coeffs), l_a * D)] = coeffs[: l_a * D]
        c = flat.reshape(l_a, D) / self.scale  # (l_a, D) frequency x dim
        C = self.C if l_a == self.l_a else dct_matrix(l_a)
        return np.clip(C.T @ c, -1, 1)

    def piece_values(self) -> np.ndarray:
        """(vocab_size, P) the integer DCT coefficients each id decodes to, NaN-padded to the longest
        piece P (a row of NaN for SentencePiece's control pieces). A valid chunk's ids hold exactly
        l_a * D coefficients: the grammar of constrained decoding (cofinetune.Policy.action_grammar)."""
        vals = [self._from_text(self.sp.decode([i])) for i in range(self.vocab_size)]
        out = np.full((self.vocab_size, max(map(len, vals))), np.nan)
        for i, v in enumerate(vals):
            out[i, :len(v)] = v
        return out

    def save(self, out: Path):
        out.mkdir(parents=True, exist_ok=True)
        (out / "fast.model").write_bytes(self._sp_model)
        cfg = {k: getattr(self, k) for k in ("l_a", "D", "scale", "vocab_size", "min_coeff", "max_coeff")}
        if self.coeff_lo is not None:
            cfg.update(coeff_lo=[int(v) for v in self.coeff_lo], coeff_hi=[int(v) for v in self.coeff_hi])
        (out / "fast.json").write_text(json.dumps(cfg, indent=1))

    @classmethod
    def load(cls, out: Path) -> "FASTTokenizer":
        out = Path(out)
        try:
            cfg = json.loads((out / "fast.json").read_text())
            return cls(**cfg, sp_model=(out / "fast.model").read_bytes())
        except FileNotFoundError as e:
            raise D.DataError(f"{e.filename}: FAST tokenizer not found (run `python tokenizers.py fit "
                              f"--data DATA --out {out}`)") from None


def naive_bins(chunks: np.ndarray, bins: int = 256) -> np.ndarray:
    """Baseline: each normalised value -> one of `bins` uniform bins on [-1, 1] -> its centre (l_a D tokens)."""
    idx = np.clip(np.floor((np.asarray(chunks) + 1) / 2 * bins), 0, bins - 1)
    return (idx + 0.5) / bins * 2 - 1


def action_chunks(data: D.Demonstrations, stats, l_a: int, stride: int | None = None, episodes=None) -> np.ndarray:
    """All normalised (l_a, 7) chunks of the dataset (or of `episodes`), non-overlapping by default
    -> (n, l_a, 7)."""
    out = []
    for i in (range(len(data)) if episodes is None else episodes):
        a = stats["actions"].normalize(data.read(i, "actions"))  # (T, 7)
        for s in range(0, len(a) - l_a + 1, stride or l_a):
            out.append(a[s: s + l_a])
    if not out:
        raise D.DataError(f"{data.files[0]}: no episode has {l_a} steps; cannot fit FAST with l_a={l_a}")
    return np.stack(out)


# ----------------------------------------------------------------------------------------------
# Text tokenizer

class TextTokenizer:
    """SentencePiece BPE trained on the instructions; byte fallback so unseen words still encode."""

    def __init__(self, sp_model: bytes):
        self._sp_model = sp_model
        self.sp = spm.SentencePieceProcessor(model_proto=sp_model)
        self.vocab_size = self.sp.get_piece_size()

    @classmethod
    def fit(cls, instructions: list[str], vocab_size: int = 512) -> "TextTokenizer":
        # The instructions of one benchmark are few; repeat them so BPE sees every merge often enough.
        return cls(_train_sentencepiece(sorted(set(instructions)) * 4, vocab_size))

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text.lower().strip())

    def decode(self, ids) -> str:
        return self.sp.decode([int(i) for i in ids if 0 <= int(i) < self.vocab_size])

    def save(self, out: Path):
        out.mkdir(parents=True, exist_ok=True)
        (out / "text.model").write_bytes(self._sp_model)

    @classmethod
    def load(cls, out: Path) -> "TextTokenizer":
        path = Path(out) / "text.model"
        if not path.exists():
            raise D.DataError(f"{path}: text tokenizer not found (run `python tokenizers.py fit`)")
        return cls(path.read_bytes())


# ----------------------------------------------------------------------------------------------
# VQGAN training, scoring and loading (the network itself: vqgan.py; SPEC §2)

class FrameView(torch.utils.data.Dataset):
    """Every (episode, step, camera) frame of the given episodes -> (3, S, S) in [-1, 1]."""

    def __init__(self, data: D.Demonstrations, episodes: list[int], image_size: int):
        self.data, self.image_size = data, image_size
        self.items = [(i, t, cam) for i in episodes for t in range(data.episodes[i].length) for cam in D.CAMERAS]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        i, t, cam = self.items[idx]
        return D.frames_to_tensor(self.data.images(i, cam, [t]), self.image_size)[0]


@torch.no_grad()
def evaluate_vqgan(model: VQGAN, frames: torch.Tensor, batch_size=32) -> dict:
    """PSNR, codebook usage and perplexity on a tensor of frames (n, 3, S, S)."""
    model.eval()
    dev = next(model.parameters()).device
    scores, counts = [], torch.zeros(model.cfg.n_codes)
    for b in frames.split(batch_size):
        ids = model.encode(b.to(dev))
        scores.append(TR.psnr(model.decode(ids).float().cpu(), b))
        counts += torch.bincount(ids.flatten().cpu(), minlength=model.cfg.n_codes)
    p = counts / counts.sum()
    return {"psnr": torch.cat(scores).mean().item(), "usage": (counts > 0).float().mean().item(),
            "perplexity": torch.exp(-(p[p > 0] * p[p > 0].log()).sum()).item()}


def save_png(path: Path, rows: list[torch.Tensor]):
    """rows of (n, 3, S, S) images in [-1, 1] -> one PNG grid (originals above reconstructions)."""
    from PIL import Image
    grid = torch.cat([torch.cat(list(r), -1) for r in rows], -2)             # (3, rows S, n S)
    arr = ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(arr).save(path)


def load_vqgan(run_dir, device="cpu") -> VQGAN:
    from training import load_config, load_weights
    cfg = load_config(run_dir)["vqgan"]
    model = VQGAN(VQGANConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}))
    return load_weights(run_dir, model, device).to(device).eval()


def vqgan_config(args) -> VQGANConfig:
    base = VQGANConfig.tiny() if args.tiny else VQGANConfig()
    over = {"image_size": args.image_size, "quantizer": args.quantizer,
            "levels": tuple(args.levels) if args.levels else None, "codebook_size": args.codebook_size}
    if args.downsample:  # one level per factor of 2: drop levels, or repeat the widest one
        n = int(math.log2(args.downsample)) + 1
        over["ch_mult"] = (base.ch_mult + (base.ch_mult[-1],) * n)[:n]
    return VQGANConfig(**{**asdict(base), **{k: v for k, v in over.items() if v is not None}})


def vqgan_loss(model, disc, x, x_hat, q_loss, args, use_gan: bool):
    """L1 (+ MSE) reconstruction + the quantiser's loss (+ the hinge generator loss at taming's adaptive
    weight) -> (loss, per-term dict of detached tensors)."""
    # Deviation [no-lpips]: no perceptual (LPIPS) term, its VGG weights are not available offline.
    # Deviation [vqgan-mse]: an MSE term is added to taming's L1 reconstruction loss (--mse-weight).
    rec = F.l1_loss(x_hat, x) + args.mse_weight * F.mse_loss(x_hat, x)
    loss, metrics = rec + q_loss, {"rec": rec.detach(), "q": q_loss.detach()}  # read at log steps
    if use_gan:
        g_loss = -disc(x_hat).mean()  # hinge generator loss
        last = model.decoder.net[-1].weight
        g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0]
        g_gan = torch.autograd.grad(g_loss, last, retain_graph=True)[0]
        w = (g_rec.norm() / (g_gan.norm() + 1e-4)).clamp(0, 1e4).detach()  # adaptive weight (taming)
        loss = loss + args.gan_weight * w * g_loss
        metrics["g"] = g_loss.detach()
    return loss, metrics


def train_vqgan(args):
    TR.seed_everything(args.seed)
    device = TR.pick_device(args.device)
    out = Path(args.out)
    cfg = vqgan_config(args)
    data = D.open_data(args.data, progress=True)
    held = D.heldout_episodes(len(data))
    train_eps = [i for i in range(len(data)) if i not in held] or held
    config = {"stage": "vqgan", "vqgan": asdict(cfg), "args": vars(args), "heldout_episodes": held,
              "data": str(args.data)}
    print(json.dumps(config, indent=1, default=str))
    model = VQGAN(cfg).to(device).to(memory_format=torch.channels_last)  # ~2x faster convs on CPU
    disc = PatchDiscriminator(cfg.ch).to(device) if args.gan_start >= 0 else None
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.5, 0.9), weight_decay=0.0)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=args.lr, betas=(0.5, 0.9)) if disc else None
    extras = {"disc": disc, "optimizer_d": opt_d} if disc else {}
    print(f"VQGAN: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params, factor {cfg.factor} "
          f"({cfg.image_size // cfg.factor}x{cfg.image_size // cfg.factor} tokens), {cfg.quantizer} "
          f"with {cfg.n_codes} codes, {len(train_eps)} train / {len(held)} held-out episodes, device {device}")
    step, state = TR.resume(out, model, opt, args.resume, extras)
    loader = D.make_loader(FrameView(data, train_eps, cfg.image_size), args.batch_size, seed=args.seed + step,
                           workers=TR.loader_workers(args.workers, device), drop_last=True)
    eval_view = FrameView(data, held, cfg.image_size)
    eval_idx = torch.randperm(len(eval_view), generator=torch.Generator().manual_seed(0))[: args.eval_frames]
    eval_frames = torch.stack([eval_view[i] for i in eval_idx.tolist()])         # (n, 3, S, S)
    amp, batches = TR.autocast(device), TR.Batches(loader, device)
    TR.restore_order(state, batches)
    loop = TR.TrainLoop(out, opt, args.steps, args.lr, args.lr * 0.1, args.warmup, "vqgan", step,
                        minutes=args.minutes)

    def checkpoint():
        metrics = evaluate_vqgan(model, eval_frames)
        model.train()
        with torch.no_grad():
            recon = model.decode(model.encode(eval_frames[:8].to(device))).float().cpu()
        save_png(out / "recon.png", [eval_frames[:8], recon])
        TR.save_checkpoint(out, model, {**config, "step": loop.step, "eval": metrics},
                           TR.train_state(loop.step, opt, extras, batches))
        print(f"step {loop.step}: held-out PSNR {metrics['psnr']:.2f} dB | code usage {metrics['usage']:.1%} | "
              f"perplexity {metrics['perplexity']:.0f} | saved {out}", flush=True)

    model.train()
    while loop.running():
        x = next(batches)                                                         # (B, 3, S, S)
        with amp:
            x_hat, _, q_loss = model(x)
        use_gan = disc is not None and loop.step >= args.gan_start
        loss, metrics = vqgan_loss(model, disc, x, x_hat.float(), q_loss, args, use_gan)
        TR.optimizer_step(loss, model, opt)
        if use_gan:
            metrics["d"] = TR.discriminator_step(disc, opt_d, x, x_hat.float())
        loop.advance()
        if loop.due(args.log_every):
            loop.log(loss=loss.detach(), **metrics)
        if loop.due(args.ckpt_every):
            checkpoint()
    loop.close()
    if state and state["step"] >= args.steps:
        print(f"{out} already trained to step {state['step']} (>= --steps {args.steps})")
        checkpoint()


# ----------------------------------------------------------------------------------------------
# Keyframe-id cache: run the VQGAN encoder once per frame, never per training step

@torch.no_grad()
def cache_keyframes(data: D.Demonstrations, vqgan_dir, out=None, batch_size=64, device="cpu") -> Path:
    """Encode every frame of every episode, both cameras -> HDF5 `<key>` (T, 2, h, w) int16."""
    import h5py
    model = load_vqgan(vqgan_dir, device)
    out = Path(out or Path(vqgan_dir) / "keyframe_ids.hdf5")
    tmp = out.with_name(f".{out.name}.tmp")
    S = model.cfg.image_size
    with h5py.File(tmp, "w") as f:
        f.attrs.update(image_size=S, n_codes=model.cfg.n_codes, vqgan=str(vqgan_dir),
                       cameras=json.dumps(list(D.CAMERAS)))
        for i in D.progress_bar(range(len(data)), desc="caching keyframe ids", unit="episode"):
            ids = []
            for cam in D.CAMERAS:
                frames = D.frames_to_tensor(data.images(i, cam), S)           # (T, 3, S, S)
                ids.append(torch.cat([model.encode(b.to(device)).cpu() for b in frames.split(batch_size)]))
            f.create_dataset(D.episode_key(data.episodes[i]), data=torch.stack(ids, 1).numpy().astype(np.int16))
    tmp.replace(out)
    return out


class KeyframeCache:
    """Read side of the cache: ids(episode, steps) -> (n, 2 cameras, h, w) int64."""

    def __init__(self, path):
        import h5py
        self.path = Path(path)
        if not self.path.exists():
            raise D.DataError(f"{self.path}: keyframe-id cache not found (run `python tokenizers.py "
                              f"cache --data DATA --vqgan RUN`)")
        self._h5py, self._f = h5py, None
        with h5py.File(self.path, "r") as f:
            self.image_size, self.n_codes = int(f.attrs["image_size"]), int(f.attrs["n_codes"])
            first = f.visititems(lambda name, obj: obj.shape if isinstance(obj, h5py.Dataset) else None)
            self.grid = tuple(first[-2:]) if first else (0, 0)                       # (h, w) codes per image

    @property
    def codes_per_image(self) -> int:
        return self.grid[0] * self.grid[1]

    def __getstate__(self):
        return {**self.__dict__, "_f": None, "_h5py": None}

    def check_covers(self, data: D.Demonstrations):
        """Fail before training, not mid-epoch, when the cache was built from other data."""
        import h5py
        with h5py.File(self.path, "r") as f:
            for ep in data.episodes:
                key = D.episode_key(ep)
                if key not in f or f[key].shape[0] != ep.length:
                    found = f[key].shape if key in f else "nothing"
                    raise D.DataError(f"{self.path}: expected ids of shape ({ep.length}, 2, h, w) for {key}, found "
                                      f"{found}; rebuild it from this data with `python tokenizers.py cache`")

    def ids(self, ep: D.Episode, steps) -> torch.Tensor:
        if self._f is None:
            import h5py
            self._f = h5py.File(self.path, "r")
        key = D.episode_key(ep)
        if key not in self._f:
            raise D.DataError(f"{self.path}: no ids for {key}; the cache was built from other data — "
                              f"rebuild it with `python tokenizers.py cache`")
        arr = self._f[key][()]
        return torch.from_numpy(arr[np.asarray(steps)].astype(np.int64))  # (n, 2, h, w)


# ----------------------------------------------------------------------------------------------
# fit / report

def fit(args):
    data = D.open_data(args.data, progress=True)
    out = Path(args.out)
    stats = D.compute_stats(data)
    D.save_stats(stats, out / "stats.json")
    chunks = action_chunks(data, stats, args.l_a, args.chunk_stride)
    fast = FASTTokenizer(args.l_a, D.ACTION_DIM, args.scale, args.action_vocab).fit(chunks)
    fast.fit_ranges(action_chunks(data, stats, args.l_a, stride=1))  # for constrained decoding
    fast.save(out)
    text = TextTokenizer.fit([e.instruction for e in data.episodes], args.text_vocab)
    text.save(out)
    (out / "config.json").write_text(json.dumps({"stage": "tokenizers", "args": vars(args), "data": str(args.data),
                                                 "fast_vocab": fast.vocab_size, "text_vocab": text.vocab_size},
                                                indent=1, default=str))
    print(f"FAST: {len(chunks)} chunks of ({args.l_a}, 7), scale {args.scale}, vocab {fast.vocab_size}, "
          f"coefficients in [{fast.min_coeff}, {fast.max_coeff}]")
    print(f"text: {len(data.instructions)} instructions, vocab {text.vocab_size}")
    print(f"wrote {out}/stats.json, fast.json, fast.model, text.model")


def main(argv=None):
    p = argparse.ArgumentParser(description="Fit, train and cache CoWVLA's tokenizers (measure them: experiments/tokenizer_report.py).")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("fit", help="fit FAST (actions) and the text tokenizer; writes stats.json too")
    s.add_argument("--data", required=True, help="LIBERO-format training data (root, suite folder or file) "
                   "or a LeRobot dataset folder")
    s.add_argument("--out", default="runs/tokenizers", help="output directory")
    s.add_argument("--l-a", type=int, default=10, help="action chunk length l_a (paper, LIBERO: 10)")
    s.add_argument("--scale", type=float, default=10.0, help="FAST DCT scale before rounding (FAST default 10)")
    s.add_argument("--action-vocab", type=int, default=1024, help="FAST BPE vocabulary size")
    s.add_argument("--text-vocab", type=int, default=512, help="text SentencePiece vocabulary size (upper bound)")
    s.add_argument("--chunk-stride", type=int, default=None, help="step between fitted chunks (default l_a)")
    s = sub.add_parser("train-vqgan", help="train the keyframe (image) tokenizer")
    s.add_argument("--data", required=True, help="LIBERO-format data or a LeRobot dataset folder (both cameras are used)")
    s.add_argument("--out", default="runs/vqgan", help="output directory (checkpoints, recon.png, log.jsonl)")
    s.add_argument("--tiny", action="store_true", help="tiny CPU config: 64², 32 channels, 3.0M params")
    s.add_argument("--image-size", type=int, default=None, help="square input size (default 128, tiny 64)")
    s.add_argument("--downsample", type=int, choices=[8, 16], default=None, help="spatial factor (default 8)")
    s.add_argument("--quantizer", choices=["fsq", "vq"], default=None, help="FSQ (default) or l2-normalised VQ")
    s.add_argument("--levels", type=int, nargs="+", default=None, help="FSQ levels (default 8 5 5 5 = 1000 codes)")
    s.add_argument("--codebook-size", type=int, default=None, help="VQ codebook size (default 1024)")
    s.add_argument("--steps", type=TR.at_least(1), default=2000, help="optimisation steps")
    s.add_argument("--minutes", type=TR.in_range(0, open_lo=True), default=None,
                   help="wall-clock budget: after 20 warm-up + 20 timed steps, --steps becomes what the speed allows in it "
                        "(the schedule is fitted to it; for time-boxed checks, not with --resume)")
    s.add_argument("--batch-size", type=int, default=16, help="frames per step")
    s.add_argument("--lr", type=TR.in_range(0, open_lo=True), default=4e-4, help="peak learning rate (cosine to lr/10)")
    s.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    s.add_argument("--mse-weight", type=TR.in_range(0), default=1.0, help="weight of the MSE term beside L1")
    s.add_argument("--gan-start", type=int, default=-1, help="step at which the PatchGAN loss starts (-1: off)")
    s.add_argument("--gan-weight", type=TR.in_range(0), default=0.1, help="PatchGAN weight (times taming's adaptive weight)")
    s.add_argument("--eval-frames", type=int, default=256, help="held-out frames for PSNR at each checkpoint")
    s.add_argument("--log-every", type=int, default=50, help="steps between log lines")
    s.add_argument("--ckpt-every", type=int, default=500, help="steps between checkpoints (+ recon.png)")
    s.add_argument("--workers", type=int, default=None, help="DataLoader workers (default 0 on CPU, 4 on GPU)")
    s.add_argument("--device", default="auto", help="auto (cuda -> mps -> cpu), cpu, cuda, ...")
    s.add_argument("--seed", type=int, default=0, help="random seed")
    s.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt if present")
    s.add_argument("--force", action="store_true", help="train a new run over the one already in OUT (else refused)")
    s = sub.add_parser("cache", help="encode every frame (both cameras) once; VLA training reads the ids")
    s.add_argument("--data", required=True, help="LIBERO-format data or a LeRobot dataset folder")
    s.add_argument("--vqgan", default="runs/vqgan", help="trained VQGAN run directory")
    s.add_argument("--out", default=None, help="output HDF5 (default VQGAN/keyframe_ids.hdf5)")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    args = p.parse_args(argv)
    try:
        if args.cmd in ("fit", "train-vqgan"):   # an unwritable --out or a full disk, named before any work
            TR.writable_dir(args.out)
        if args.cmd == "train-vqgan":
            TR.fresh_out(args.out, args.resume, args.force)
        if args.cmd == "fit":
            fit(args)
        elif args.cmd == "train-vqgan":
            train_vqgan(args)
        elif args.cmd == "cache":
            print(f"wrote {cache_keyframes(D.open_data(args.data), args.vqgan, args.out, device=TR.pick_device(args.device))}")
    except (D.DataError, FileNotFoundError, TR.ArtefactError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(TR.run_cli(main))
