"""CoWVLA networks: the Latent Motion Extractor (Sec. 3.2) and the VLA decoder (Sec. 3.3-3.4).

Axis legend used in shape comments across the project:
    B batch   f frames of a clip   C channels   H W image size   h w latent / token grid
    L sequence length   d model width   K code dim   N keyframes / chunks   l_a chunk length

The training skeleton every stage shares (device, seeds, schedule, logging, checkpoints, resume) is in
training.py.
"""
from __future__ import annotations


from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------------------------
# Latent Motion Extractor (Sec. 3.2): a video VAE whose latent splits into structure z_s and motion z_m

@dataclass
class ExtractorConfig:
    """The full default is the paper's VidTwin LME (SPEC §1 "The paper's scale"): 16 frames at 224²,
    z = 64 x 16 x 7 x 7, z_s 4 x 16 x 7 x 7 (n_q = 16), z_m^h, z_m^w 8 x 16 x 7 (D_m = 1792), and VidTwin's
    Q-Former (16 queries, hidden 64, 6 layers, 8 heads). `tiny` is a CPU-sized config."""
    frames: int = 16           # f
    image_size: int = 224      # H
    image_width: int = 0       # W (0: W = H, square frames)
    ch: int = 64               # per-frame conv encoder width
    down: int = 5              # stride-2 stages: h = H / 2**down (224 -> 7)
    d_z: int = 64              # channels of z
    n_q: int = 16              # Q-Former queries (<= f): z_s has n_q entries along time
    d_q: int = 64              # Q-Former width
    qformer_layers: int = 6    # cross-attention every other layer (BLIP-2)
    heads: int = 8
    d_s: int = 4               # channels of z_s
    s_down: int = 0            # stride-2 stages from z to z_s: h_s = h / 2**s_down
    d_m: int = 8               # channels of z_m^h, z_m^w
    m_down: int = 0            # stride-2 stages from z to z': h_m = h / 2**m_down
    motion_input: str = "frames"  # "frames" (paper: z') or "diff" (summary: z'[t] - z'[t-1])
    latent: str = "split"      # "split" (paper: z_s + z_m) or "plain" (appendix Table 4: one video-VAE latent)

    @property
    def hw(self) -> tuple:
        return self.image_size, self.image_width or self.image_size      # (H, W)

    @property
    def h(self):
        return self.hw[0] // 2 ** self.down

    @property
    def w(self):
        return self.hw[1] // 2 ** self.down

    @property
    def h_s(self):
        return self.h // 2 ** self.s_down

    @property
    def w_s(self):
        return self.w // 2 ** self.s_down

    @property
    def h_m(self):
        return self.h // 2 ** self.m_down

    @property
    def w_m(self):
        return self.w // 2 ** self.m_down

    @property
    def D_m(self):
        return self.frames * self.d_m * (self.h_m + self.w_m)  # Sec. 3.2: D_m = f * d_m * (h_m + w_m)

    @classmethod
    def tiny(cls, **kw):
        return cls(**{"image_size": 32, "ch": 16, "down": 2, "d_z": 32, "n_q": 2, "d_q": 32,
                      "qformer_layers": 2, "heads": 2, "d_s": 4, "s_down": 1, "d_m": 4, "m_down": 0, **kw})


def _gn(c):
    return nn.GroupNorm(min(8, c // 4) or 1, c)


class ConvBlock(nn.Module):
    """Residual GroupNorm -> SiLU -> conv block, 2-D (per frame) or 1-D along time."""

    def __init__(self, c, conv=nn.Conv2d, k=3, pad="zeros"):
        super().__init__()
        self.body = nn.Sequential(_gn(c), nn.SiLU(), conv(c, c, k, padding=k // 2, padding_mode=pad),
                                  _gn(c), nn.SiLU(), conv(c, c, k, padding=k // 2, padding_mode=pad))

    def forward(self, x):
        return x + self.body(x)


class TemporalMix(nn.Module):
    """A residual temporal conv (kernel 3 along f) at every spatial location: (B, C, f, h, w).
    Replicate padding keeps a static clip's features identical across frames (zero differences)."""

    def __init__(self, c):
        super().__init__()
        self.block = ConvBlock(c, nn.Conv1d, pad="replicate")

    def forward(self, x):
        B, C, f, h, w = x.shape
        y = x.permute(0, 3, 4, 1, 2).reshape(B * h * w, C, f)             # (B h w, C, f)
        return self.block(y).view(B, h, w, C, f).permute(0, 3, 4, 1, 2)   # (B, C, f, h, w)


class QFormer(nn.Module):
    """BLIP-2 Q-Former: n_q learnable queries; each layer = self-attention over the queries,
    cross-attention to the inputs (every other layer), MLP; pre-norm residuals. The inputs get a
    learned frame (time) embedding, so cross-attention knows the order of the f frames."""

    def __init__(self, n_q, d, d_in, layers, heads, frames):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(n_q, d) * 0.02)
        self.frame_embed = nn.Parameter(torch.randn(frames, d) * 0.02)
        self.inp = nn.Linear(d_in, d)
        self.self_attn = nn.ModuleList(nn.MultiheadAttention(d, heads, batch_first=True) for _ in range(layers))
        self.cross_attn = nn.ModuleList(nn.MultiheadAttention(d, heads, batch_first=True) if i % 2 == 0 else None
                                        for i in range(layers))
        self.mlp = nn.ModuleList(nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
                                 for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(2 * layers))

    def forward(self, x):                                  # x: (n, f, d_in) -> (n, n_q, d)
        x = self.inp(x) + self.frame_embed[: x.shape[1]]   # (n, f, d)
        q = self.queries.expand(len(x), -1, -1)            # (n, n_q, d)
        for i, (sa, ca, mlp) in enumerate(zip(self.self_attn, self.cross_attn, self.mlp)):
            h = self.norms[2 * i](q)
            q = q + sa(h, h, h, need_weights=False)[0]
            if ca is not None:
                h = self.norms[2 * i + 1](q)
                q = q + ca(h, x, x, need_weights=False)[0]
            q = q + mlp(q)
        return q


def _down(cin, cout, n):
    layers = []
    for _ in range(n):
        layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.SiLU()]
        cin = cout
    return nn.Sequential(*layers, nn.Conv2d(cin, cout, 3, padding=1))


def _gaussian(stats):
    """(…, 2C, …) along dim 1 -> mean, logvar (clamped as in LDM)."""
    mean, logvar = stats.chunk(2, 1)
    return mean, logvar.clamp(-30, 20)


def kl_divergence(mean, logvar):
    """KL(N(mean, var) || N(0, 1)) summed over latent dims, averaged over the batch."""
    return 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).flatten(1).sum(1).mean()


def hw_pool(zp):
    """Sec. 3.2: z' (B, C, f, h_m, w_m) -> mu_h(z') (B, C, f, w_m) (mean over H), mu_w(z') (B, C, f, h_m)
    (mean over W). A pattern that varies only along W survives in mu_h and vanishes from mu_w."""
    return zp.mean(3), zp.mean(4)


class LatentMotionExtractor(nn.Module):
    """VidTwin-style video VAE: clip V (B, f, 3, H, W) -> z (B, d_z, f, h, w) -> structure z_s and
    motion z_m; decoder sums the upsampled latents and reconstructs V̂ (Sec. 3.2, Eq. 1).
    With cfg.latent == "plain" (appendix Table 4): no structure/motion split; one Gaussian latent of
    the same size D_m (per frame d_m (h_m + w_m) values, a linear map of z') is all the decoder sees."""

    def __init__(self, cfg: ExtractorConfig):
        super().__init__()
        self.cfg = c = cfg
        assert c.n_q <= c.frames, "the Q-Former has n_q <= f queries"
        if c.latent not in ("split", "plain"):
            raise ValueError(f"ExtractorConfig.latent must be 'split' or 'plain', got {c.latent!r}")
        # encoder: per-frame spatial downsampling + temporal mixing
        # Deviation [conv-extractor]: a conv encoder/decoder with temporal conv mixing instead of VidTwin's
        # transformer backbone; the Q-Former, the H/W means and the summed decoder follow the paper.
        enc = [nn.Conv2d(3, c.ch, 3, padding=1)]  # residual blocks only below full resolution (CPU cost)
        for i in range(c.down):
            enc += [nn.Conv2d(c.ch, c.ch, 3, stride=2, padding=1), ConvBlock(c.ch)]
        enc += [_gn(c.ch), nn.SiLU(), nn.Conv2d(c.ch, c.d_z, 3, padding=1)]
        self.frame_encoder = nn.Sequential(*enc)
        self.temporal = TemporalMix(c.d_z)
        self.to_m = _down(c.d_z, c.d_z, c.m_down)  # conv reduction z -> z' (both latent kinds)
        r = 2 ** c.m_down
        if c.latent == "plain":
            per_frame = c.d_m * (c.h_m + c.w_m)                                # D_m / f
            self.to_plain = nn.Linear(c.d_z * c.h_m * c.w_m, 2 * per_frame)   # z' -> (mean, logvar)
            self.plain_up = nn.Linear(per_frame, c.d_z * c.h * c.w)
        else:
            # structure branch: Q-Former along time per location, then spatial reduction -> (mean, logvar)
            self.qformer = QFormer(c.n_q, c.d_q, c.d_z, c.qformer_layers, c.heads, c.frames)
            self.to_s = _down(c.d_q, 2 * c.d_s, c.s_down)
            # motion branch: H / W means of z' -> (mean, logvar) of z_m^h, z_m^w
            self.m_h = nn.Conv1d(c.d_z, 2 * c.d_m, 1)
            self.m_w = nn.Conv1d(c.d_z, 2 * c.d_m, 1)
            # decoder: upsample each latent to (d_z, f, h, w), broadcast, sum, decode per frame
            self.s_time = nn.Linear(c.n_q, c.frames)
            up = [nn.Conv2d(c.d_s, c.d_z, 3, padding=1)]
            for _ in range(c.s_down):
                up += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c.d_z, c.d_z, 3, padding=1), nn.SiLU()]
            self.s_up = nn.Sequential(*up)
            self.mh_up = nn.Conv1d(c.d_m, c.d_z * r, 1)  # channels x upsampling factor along w
            self.mw_up = nn.Conv1d(c.d_m, c.d_z * r, 1)  # channels x upsampling factor along h
        self.dec_temporal = TemporalMix(c.d_z)
        dec = [nn.Conv2d(c.d_z, c.ch, 3, padding=1)]
        for _ in range(c.down):
            dec += [ConvBlock(c.ch), nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c.ch, c.ch, 3, padding=1)]
        dec += [_gn(c.ch), nn.SiLU(), nn.Conv2d(c.ch, 3, 3, padding=1)]
        self.frame_decoder = nn.Sequential(*dec)

    # -- encoder ------------------------------------------------------------------------------
    def encode_frames(self, frames):
        """(n, 3, H, W) -> per-frame features (n, d_z, h, w); shared by overlapping clips in export."""
        return self.frame_encoder(frames)

    def encode_z(self, clip):
        B, f = clip.shape[:2]
        z = self.encode_frames(clip.flatten(0, 1))                                 # (B f, d_z, h, w)
        return self.mix(z.view(B, f, *z.shape[1:]))

    def mix(self, z):
        return self.temporal(z.transpose(1, 2))                                    # (B, d_z, f, h, w)

    def structure(self, z):
        """z (B, d_z, f, h, w) -> z_s posterior (mean, logvar), each (B, d_s, n_q, h_s, w_s)."""
        B, C, f, h, w = z.shape
        q = self.qformer(z.permute(0, 3, 4, 2, 1).reshape(B * h * w, f, C))       # (B h w, n_q, d_q)
        q = q.view(B, h, w, self.cfg.n_q, -1).permute(0, 3, 4, 1, 2).flatten(0, 1)  # (B n_q, d_q, h, w)
        s = self.to_s(q)                                                            # (B n_q, 2 d_s, h_s, w_s)
        s = s.view(B, self.cfg.n_q, *s.shape[1:]).transpose(1, 2)                  # (B, 2 d_s, n_q, h_s, w_s)
        return _gaussian(s)

    def reduce(self, z):
        """The motion branch's conv reduction: z (B, d_z, f, h, w) -> z' (B, d_z, f, h_m, w_m)."""
        B, C, f = z.shape[:3]
        zp = self.to_m(z.transpose(1, 2).flatten(0, 1))                            # (B f, C, h_m, w_m)
        return zp.view(B, f, C, *zp.shape[-2:]).transpose(1, 2)                    # (B, C, f, h_m, w_m)

    def motion(self, z):
        """z -> posteriors of z_m^h (B, d_m, f, w_m) and z_m^w (B, d_m, f, h_m), each (mean, logvar)."""
        B, f = z.shape[0], z.shape[2]
        zp = self.reduce(z)                                                        # z' (B, C, f, h_m, w_m)
        if self.cfg.motion_input == "diff":  # summary variant: temporal differences of z', zero at t = 0
            zp = torch.cat([torch.zeros_like(zp[:, :, :1]), zp[:, :, 1:] - zp[:, :, :-1]], 2)
        m_h, m_w = hw_pool(zp)                         # Sec. 3.2: mu_h(z') (B, C, f, w_m), mu_w(z') (B, C, f, h_m)
        stats_h = self.m_h(m_h.flatten(2)).view(B, -1, f, m_h.shape[-1])           # (B, 2 d_m, f, w_m)
        stats_w = self.m_w(m_w.flatten(2)).view(B, -1, f, m_w.shape[-1])           # (B, 2 d_m, f, h_m)
        return _gaussian(stats_h), _gaussian(stats_w)

    def plain(self, z):
        """Appendix Table 4's latent: z -> posterior (mean, logvar) of z_v, each (B, D_m / f, f)."""
        zp = self.reduce(z).transpose(1, 2).flatten(2)                             # (B, f, d_z h_m w_m)
        return _gaussian(self.to_plain(zp).transpose(1, 2))                       # (B, D_m / f, f) each

    def posteriors(self, z) -> dict:
        """z -> {latent name: (mean, logvar)}: z_s, z_m^h, z_m^w (split) or z_v (plain)."""
        if self.cfg.latent == "plain":
            return {"z_v": self.plain(z)}
        (h, w) = self.motion(z)
        return {"z_s": self.structure(z), "z_m^h": h, "z_m^w": w}

    def motion_target(self, z) -> torch.Tensor:
        """z -> (B, D_m): the posterior mean that supervises Q downstream (z_m, or z_v for plain)."""
        if self.cfg.latent == "plain":
            return self.plain(z)[0].flatten(1)
        (mh, _), (mw, _) = self.motion(z)
        return self.flatten_motion(mh, mw)

    @torch.no_grad()
    def encode_motion(self, clip):
        """clip (B, f, 3, H, W) in [-1, 1] -> z_m (B, D_m): posterior means of z_m^h, z_m^w, flattened."""
        return self.motion_target(self.encode_z(clip))

    def flatten_motion(self, m_h, m_w):
        return torch.cat([m_h.flatten(1), m_w.flatten(1)], 1)                      # (B, D_m)

    def split_motion(self, z_m):
        """(B, D_m) -> z_m^h (B, d_m, f, w_m), z_m^w (B, d_m, f, h_m): the inverse of flatten_motion."""
        c = self.cfg
        n = c.d_m * c.frames * c.w_m
        return z_m[:, :n].view(-1, c.d_m, c.frames, c.w_m), z_m[:, n:].view(-1, c.d_m, c.frames, c.h_m)

    # -- decoder ------------------------------------------------------------------------------
    def decode(self, z_s, z_m):
        """z_s (B, d_s, n_q, h_s, w_s) and z_m (B, D_m) (possibly from different clips) -> V̂ (B, f, 3, H, W).
        Plain latent: z_s is None and z_m is z_v (B, D_m)."""
        c = self.cfg
        B = z_m.shape[0]
        if c.latent == "plain":
            z = self.plain_up(z_m.view(B, -1, c.frames).transpose(1, 2))           # (B, f, d_z h w)
            z = z.view(B, c.frames, c.d_z, c.h, c.w).transpose(1, 2)               # (B, d_z, f, h, w)
        else:
            m_h, m_w = self.split_motion(z_m)
            s = self.s_time(z_s.transpose(2, -1)).transpose(2, -1)                 # (B, d_s, f, h_s, w_s)
            s = self.s_up(s.transpose(1, 2).flatten(0, 1))                         # (B f, d_z, h, w)
            s = s.view(B, c.frames, c.d_z, c.h, c.w).transpose(1, 2)               # (B, d_z, f, h, w)
            r = 2 ** c.m_down
            u_h = self.mh_up(m_h.flatten(2)).view(B, c.d_z, r, c.frames, c.w_m)    # (B, d_z, r, f, w_m)
            u_h = u_h.permute(0, 1, 3, 4, 2).reshape(B, c.d_z, c.frames, 1, c.w)   # (B, d_z, f, 1, w)
            u_w = self.mw_up(m_w.flatten(2)).view(B, c.d_z, r, c.frames, c.h_m)    # (B, d_z, r, f, h_m)
            u_w = u_w.permute(0, 1, 3, 4, 2).reshape(B, c.d_z, c.frames, c.h, 1)   # (B, d_z, f, h, 1)
            z = s + u_h + u_w                                                      # Sec. 3.2: broadcast, sum
        z = self.dec_temporal(z)                                                   # (B, d_z, f, h, w)
        x = self.frame_decoder(z.transpose(1, 2).flatten(0, 1))                    # (B f, 3, H, W)
        return x.view(B, c.frames, 3, *c.hw)

    def forward(self, clip, sample=True):
        """Returns V̂, KL, and the latents z_s, z_m (posterior samples when sample=True, else means;
        z_s is None and z_m is z_v for the plain latent)."""
        post = self.posteriors(self.encode_z(clip))
        pick = (lambda mu, lv: mu + torch.randn_like(mu) * (0.5 * lv).exp()) if sample else (lambda mu, lv: mu)
        kl = sum(kl_divergence(mu, lv) for mu, lv in post.values())               # Sec. 3.2, Eq. (1): L_KL
        if self.cfg.latent == "plain":
            z_s, z_m = None, pick(*post["z_v"]).flatten(1)                         # (B, D_m)
        else:
            z_s = pick(*post["z_s"])
            z_m = self.flatten_motion(pick(*post["z_m^h"]), pick(*post["z_m^w"]))  # (B, D_m)
        return self.decode(z_s, z_m), kl, z_s, z_m


# ----------------------------------------------------------------------------------------------
# The VLA decoder (Sec. 3.3-3.4): one causal transformer over text, keyframe, Q and action tokens
#
# Unified vocabulary (the one place the id layout is defined):
#   [0, n_text)                          text ids (SentencePiece)
#   [visual0, visual0 + n_visual)        keyframe ids (VQGAN codes), visual0 = n_text
#   [action0, action0 + n_action)        action ids (FAST BPE), action0 = n_text + n_visual
#   then the specials PAD, BOS, BOI, EOI, BOA, EOA, Q
#
# Layouts (one token segment per entry; the mask is causal, so each token sees only what precedes it):
#   pre-training   [BOS T] [BOI v^1 EOI] [Q] [BOI v^f EOI]                       (Sec. 3.3)
#                  Q sees {T, v^1} and never v^f; v^f sees Q.
#   co-fine-tuning [BOS T] [ṽ^1] [Q] [BOA A^1 EOA] [ṽ^2] [BOA A^2 EOA] ... [BOA A^N EOA]   (Sec. 3.4)
#                  ṽ^j = [BOI agentview EOI][BOI wrist EOI]; with --proprio, + [S^j] (a deviation, README:
#                  one token embedding the robot's 8-D state at keyframe j); one Q for the window (paper), or with
#                  --q-every-keyframe a Q after every keyframe (summary). Q never sees later keyframes
#                  or actions; actions see every keyframe and Q before them.

SPECIALS = ("PAD", "BOS", "BOI", "EOI", "BOA", "EOA", "Q")
SEG_PAD, SEG_TEXT, SEG_IMAGE, SEG_Q, SEG_ACTION, SEG_STATE = 0, 1, 2, 3, 4, 5


@dataclass
class Vocab:
    n_text: int
    n_visual: int
    n_action: int

    @property
    def visual0(self):
        return self.n_text

    @property
    def action0(self):
        return self.n_text + self.n_visual

    def special(self, name: str) -> int:
        return self.n_text + self.n_visual + self.n_action + SPECIALS.index(name)

    @property
    def size(self):
        return self.n_text + self.n_visual + self.n_action + len(SPECIALS)


def build_attention_mask(seg: torch.Tensor) -> torch.Tensor:
    """The one mask builder. seg (B, L) segment kinds (SEG_PAD marks padding) -> (B, 1, L, L) bool,
    True = may attend. Causal: position i sees j <= i, never padding. Because Q is placed after
    {T, v^1} and before v^f / later keyframes and actions, causality is exactly the paper's rule
    (Q sees only what precedes it; v^f may see Q). A padding query attends to itself only."""
    L = seg.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool, device=seg.device).tril()          # (L, L)
    keys = (seg != SEG_PAD)[:, None, None, :]                                      # (B, 1, 1, L)
    eye = torch.eye(L, dtype=torch.bool, device=seg.device)
    return (causal & keys) | eye                                                   # (B, 1, L, L)


@dataclass
class VLAConfig:
    # Deviation [scratch-backbone]: a from-scratch decoder (213M default, 1.6M tiny; tiny lr 1e-3) instead
    # of the pretrained Emu3 8.5B backbone; no pretrained weights anywhere.
    vocab_size: int = 4096
    D_m: int = 2048
    d: int = 1024
    layers: int = 16
    heads: int = 16
    mlp_ratio: float = 8 / 3      # SwiGLU hidden = ratio * d
    max_len: int = 4096
    rope_base: float = 10000.0
    # Deviation [grid-embedding]: a learned grid-cell embedding of image codes; ids in [visual_range) are VQGAN codes;
    # the i-th code of an image (row-major) gets a learned embedding of cell i, i < image_tokens.
    # 0 turns it off (the paper: 1-D RoPE only, under which values carry no position).
    image_tokens: int = 0
    visual_range: tuple = (0, 0)
    # Deviation [proprio]: proprioceptive state tokens (off by default): a SEG_STATE position is embedded as
    # Linear(proprio_dim -> d) of the normalised 8-D state instead of a vocabulary row. 0 = off (paper).
    proprio_dim: int = 0

    @classmethod
    def tiny(cls, **kw):
        return cls(**{"d": 128, "layers": 4, "heads": 4, "max_len": 2048, **kw})


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps).to(x.dtype) * self.weight


def rope(x, pos, base):
    """Rotary position embedding on (B, nh, L, hs) at integer positions pos (L,)."""
    hs = x.shape[-1]
    inv = base ** (-torch.arange(0, hs, 2, device=x.device, dtype=torch.float32) / hs)  # (hs/2,)
    ang = pos.float()[:, None] * inv[None]                                               # (L, hs/2)
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).flatten(-2)


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(RMSNorm(x)), then x + SwiGLU(RMSNorm(x))."""

    def __init__(self, cfg: VLAConfig):
        super().__init__()
        self.nh, self.base = cfg.heads, cfg.rope_base
        hidden = int(cfg.mlp_ratio * cfg.d)
        self.n1, self.n2 = RMSNorm(cfg.d), RMSNorm(cfg.d)
        self.qkv, self.proj = nn.Linear(cfg.d, 3 * cfg.d, bias=False), nn.Linear(cfg.d, cfg.d, bias=False)
        self.gate_up = nn.Linear(cfg.d, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, cfg.d, bias=False)

    def forward(self, x, mask, pos, cache=None):
        B, L, d = x.shape
        q, k, v = self.qkv(self.n1(x)).view(B, L, 3, self.nh, d // self.nh).permute(2, 0, 3, 1, 4)  # (B, nh, L, hs)
        q, k = rope(q, pos, self.base), rope(k, pos, self.base)
        if cache is not None:  # KV cache: append this call's keys/values, attend over all of them
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)                              # (B, nh, L, hs)
        x = x + self.proj(y.transpose(1, 2).reshape(B, L, d))
        g, u = self.gate_up(self.n2(x)).chunk(2, -1)
        return x + self.down(F.silu(g) * u)


class VLA(nn.Module):
    """Decoder-only VLA: token embeddings -> blocks -> RMSNorm -> LM head; MLP head at Q -> ẑ_m."""

    def __init__(self, cfg: VLAConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d)
        # row 0: not an image code (kept at zero); row 1 + i: grid cell i of an image
        self.grid_embed = nn.Embedding(cfg.image_tokens + 1, cfg.d, padding_idx=0) if cfg.image_tokens else None
        self.state_proj = nn.Linear(cfg.proprio_dim, cfg.d) if cfg.proprio_dim else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.d)
        self.lm_head = nn.Linear(cfg.d, cfg.vocab_size, bias=False)
        self.motion_head = nn.Sequential(nn.Linear(cfg.d, cfg.d), nn.GELU(), nn.Linear(cfg.d, cfg.D_m))  # Sec. 3.3
        self.apply(self._init)

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token at sequence length `seq_len` (forward + backward), nanoGPT's
        `estimate_mfu` estimate (PaLM, App. B): 6N for the weight matmuls plus 12 * layers * d * seq_len
        for attention's scores and mixing, where N excludes the embedding tables (lookups, not matmuls)."""
        n = sum(p.numel() for p in self.parameters())
        n -= self.embed.weight.numel() + (self.grid_embed.weight.numel() if self.grid_embed is not None else 0)
        return 6 * n + 12 * self.cfg.layers * self.cfg.d * seq_len

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
            if getattr(m, "padding_idx", None) is not None:
                nn.init.zeros_(m.weight[m.padding_idx])

    def grid_cells(self, ids, run=None):
        """ids (B, L) -> (B, L) 1 + grid cell of every image code (0 elsewhere) and the length of the
        trailing run of codes. An image is a contiguous run of codes between BOI and EOI, so cell i is
        the code's index within its run; `run` (B,) continues a run left open by earlier (cached) tokens.
        A run longer than image_tokens keeps the last cell rather than indexing past the table. Only a
        malformed sequence has one: the data views write image_tokens codes per image and imagination
        (cofinetune.Policy.imagine) generates exactly that many."""
        v0, v1 = self.cfg.visual_range
        code = (ids >= v0) & (ids < v1)                                                  # (B, L)
        c = code.long().cumsum(1)                                                        # codes so far
        last_break = torch.where(code, 0, c).cummax(1).values                            # codes before the last non-code
        n = c - last_break                                                               # run length at each token
        if run is not None:
            n = n + torch.where((~code).long().cumsum(1) > 0, 0, run[:, None])
        cells = torch.where(code, n.clamp(max=self.cfg.image_tokens), 0)
        return cells, n[:, -1]

    def hidden(self, ids, seg, caches=None, start=0, state=None):
        """ids, seg (B, L) -> final hidden states (B, L, d). With caches (one dict per block), ids are
        the next L tokens after `start` cached ones (every sequence in the batch has the same length).
        state (B, L, proprio_dim): the normalised proprio at SEG_STATE positions (ignored elsewhere)."""
        L = ids.shape[1]
        pos = torch.arange(start, start + L, device=ids.device)
        if caches is None:
            mask = build_attention_mask(seg)
        else:  # cached keys are all visible; the new tokens are causal among themselves
            mask = torch.ones(L, start + L, dtype=torch.bool, device=ids.device).tril(start)
        x = self.embed(ids)                                                       # (B, L, d)
        if self.grid_embed is not None:
            run = None if caches is None else caches[0].get("code_run")
            cells, run = self.grid_cells(ids, run)
            if caches is not None:
                caches[0]["code_run"] = run
            x = x + self.grid_embed(cells)
        if self.state_proj is not None and state is not None:
            x = torch.where((seg == SEG_STATE)[..., None], self.state_proj(state.to(x.dtype)), x)
        for i, blk in enumerate(self.blocks):
            x = blk(x, mask, pos, None if caches is None else caches[i])
        return self.norm(x)

    def forward(self, ids, seg, state=None):
        """(B, L) -> hidden states (B, L, d). Heads run outside, only where a loss needs them
        (lm_head at target positions, motion_head at Q); DDP wraps this call."""
        return self.hidden(ids, seg, state=state)


ROLE_NONE, ROLE_V1, ROLE_VF, ROLE_KEYFRAME, ROLE_ACTION = 0, 1, 2, 3, 4


def assemble(parts) -> dict:
    """parts: [(seg kind, ids, role, chunk index[, state])] -> one sequence: ids, seg, role, chunk
    (each (L,)); where a part carries a state (len(ids), P), also `state` (L, P), zero elsewhere."""
    cols = {"ids": [], "seg": [], "role": [], "chunk": []}
    dim = next((np.shape(p[4])[-1] for p in parts if len(p) > 4), 0)
    states = []
    for seg, ids, role, chunk, *state in parts:
        ids = torch.as_tensor(ids, dtype=torch.long).flatten()
        cols["ids"].append(ids)
        for k, v in (("seg", seg), ("role", role), ("chunk", chunk)):
            cols[k].append(torch.full_like(ids, v))
        if dim:
            states.append(torch.as_tensor(np.asarray(state[0], np.float32)).view(len(ids), dim) if state
                          else torch.zeros(len(ids), dim))
    out = {k: torch.cat(v) for k, v in cols.items()}
    if dim:
        out["state"] = torch.cat(states)                                          # (L, P)
    return out


def image_part(vocab: Vocab, codes, role: int, chunk: int = 0) -> list:
    """[BOI codes EOI]; only the codes carry the role (BOI/EOI are never loss targets)."""
    codes = torch.as_tensor(codes).flatten() + vocab.visual0
    return [(SEG_IMAGE, [vocab.special("BOI")], ROLE_NONE, chunk), (SEG_IMAGE, codes, role, chunk),
            (SEG_IMAGE, [vocab.special("EOI")], ROLE_NONE, chunk)]


def pad_batch(seqs: list[dict], vocab: Vocab) -> dict:
    """Right-pad sequences to the longest: ids PAD, seg SEG_PAD, role ROLE_NONE -> (B, L) each."""
    L = max(len(s["ids"]) for s in seqs)
    out = {}
    for k, fill in (("ids", vocab.special("PAD")), ("seg", SEG_PAD), ("role", ROLE_NONE), ("chunk", 0)):
        out[k] = torch.stack([F.pad(s[k], (0, L - len(s[k])), value=fill) for s in seqs])
    if "state" in seqs[0]:
        out["state"] = torch.stack([F.pad(s["state"], (0, 0, 0, L - len(s["state"]))) for s in seqs])  # (B, L, P)
    return out


def next_token_ce(model: "VLA", h, ids, role, wanted: int, chunk=None):
    """CE of predicting every token whose role is `wanted` from the hidden state just before it;
    the LM head runs only at those positions. Returns (loss, number of targets, accuracy), all tensors
    (no host sync here: callers read them at log steps); with no target the loss is 0 and the accuracy NaN."""
    sel = role[:, 1:] == wanted                                                  # (B, L-1) target positions
    if chunk is not None:
        sel = sel & chunk
    logits = model.lm_head(h[:, :-1][sel]).float()                              # (n, V)
    target = ids[:, 1:][sel]                                                     # (n,)
    n = sel.sum()
    ce = F.cross_entropy(logits, target, reduction="sum") / n.clamp_min(1)      # mean over the n targets
    acc = (logits.argmax(-1) == target).float().sum() / n                        # NaN when n = 0
    return ce, n, acc.detach()


@torch.no_grad()
def greedy_generate(model, ids: torch.Tensor, allowed, stop: int | None, max_new: int,
                    use_cache: bool = True, seg=None, state=None) -> list[int]:
    """Greedy decoding of one sequence ids (L,) restricted to the `allowed` ids, until `stop` is
    emitted or max_new tokens. `allowed` is a bool (V,) mask, or a function of the tokens emitted so
    far returning one (a grammar, e.g. FAST's exact coefficient count). `model` is a VLA or a list of
    VLAs (an ensemble: the token maximising the members' mean probability over the allowed ids).
    With the KV cache each new token costs one position; without it the whole sequence is re-run per
    token (same tokens, the benchmark's baseline). seg (L,) / state (L, P): the prompt's segment kinds
    and proprio (assemble's columns) where it holds state tokens; generated tokens carry none."""
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    seq = ids[None]                                                                  # (1, L)
    # any non-pad kind will do: the mask is causal either way; only SEG_STATE changes an embedding
    seg = torch.full_like(seq, SEG_TEXT) if seg is None else seg[None]
    state = None if state is None else state[None]                                   # (1, L, P)
    caches = [[{} for _ in m.blocks] if use_cache else None for m in models]
    hs = [m.hidden(seq, seg, c, 0, state) if use_cache else m.hidden(seq, seg, state=state)
          for m, c in zip(models, caches)]
    out = []
    for _ in range(max_new):
        mask = allowed(out) if callable(allowed) else allowed                          # (V,) bool
        logits = [m.lm_head(h[0, -1]).float().masked_fill(~mask, float("-inf")) for m, h in zip(models, hs)]
        score = logits[0] if len(models) == 1 else torch.stack(logits).log_softmax(-1).logsumexp(0)  # (V,)
        tok = int(score.argmax())
        out.append(tok)
        if tok == stop:
            break
        nxt = torch.tensor([[tok]], device=ids.device)
        if use_cache:
            hs = [m.hidden(nxt, torch.full_like(nxt, SEG_TEXT), c, seq.shape[1]) for m, c in zip(models, caches)]
        else:
            seg = torch.cat([seg, torch.full_like(nxt, SEG_TEXT)], 1)
            state = None if state is None else F.pad(state, (0, 0, 0, 1))
            hs = [m.hidden(torch.cat([seq, nxt], 1), seg, state=state) for m in models]
        seq = torch.cat([seq, nxt], 1)
    return out
