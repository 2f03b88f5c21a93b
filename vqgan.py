"""The VQGAN keyframe tokenizer of CoWVLA (SPEC §2): the network, its quantisers and its discriminator.

Split out of tokenizers.py, which trains it (`python tokenizers.py train-vqgan`), scores it, loads it and
caches every keyframe's token ids; this file holds only the model:

    VQGANConfig          sizes, the quantiser choice, the tiny CPU config
    Encoder / Decoder    taming-style conv stacks, (B, 3, H, W) <-> (B, K, h, w)
    FSQ / VQ             finite scalar quantisation (default) or an l2-normalised codebook
    VQGAN                encode -> quantise -> decode; encode / decode: images <-> the VLA's keyframe ids
    PatchDiscriminator   PatchGAN real/fake logits for the adversarial term
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------
# VQGAN keyframe tokenizer (taming-transformers layout; SPEC §2)
#   axes: B batch, C channels, H W image size, h w token grid (H / factor), K code dim

@dataclass
class VQGANConfig:
    # Deviation [resolution]: keyframes are tokenised at 128² (tiny 64²), not Emu3's 200-256², by our own
    # from-scratch VQGAN instead of Emu3's tokenizer.
    image_size: int = 128
    ch: int = 64                     # base channels
    ch_mult: tuple = (1, 1, 2, 2)    # one level per entry; factor = 2 ** (len - 1)
    num_res_blocks: int = 2
    # Deviation [fsq-quantiser]: FSQ by default instead of taming's VQ codebook (robust for small models
    # trained from scratch: no codebook to collapse); quantizer="vq" is the taming-style option.
    quantizer: str = "fsq"           # "fsq" (default) or "vq"
    levels: tuple = (8, 5, 5, 5)     # FSQ levels -> prod = 1000 codes
    codebook_size: int = 1024        # VQ only
    code_dim: int = 8                # VQ only: l2-normalised low-dimensional codes
    beta: float = 0.25               # VQ commitment weight

    @property
    def factor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def n_codes(self) -> int:
        return int(np.prod(self.levels)) if self.quantizer == "fsq" else self.codebook_size

    @property
    def z_dim(self) -> int:
        return len(self.levels) if self.quantizer == "fsq" else self.code_dim

    @classmethod
    def tiny(cls, **kw):
        return cls(**{"image_size": 64, "ch": 16, "ch_mult": (1, 2, 4, 4), "num_res_blocks": 1, **kw})


def _norm(c):
    return nn.GroupNorm(min(32, c // 4), c, eps=1e-6)


class ResBlock(nn.Module):
    """GroupNorm -> swish -> conv, twice, with a (1x1) skip."""

    def __init__(self, cin, cout):
        super().__init__()
        self.body = nn.Sequential(_norm(cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1),
                                  _norm(cout), nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        return self.skip(x) + self.body(x)


class AttnBlock(nn.Module):
    """Single-head self-attention over the h*w positions (lowest resolution only)."""

    def __init__(self, c):
        super().__init__()
        self.norm, self.qkv, self.proj = _norm(c), nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)

    def forward(self, x):
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).transpose(-1, -2).unbind(1)  # (B, HW, C)
        y = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]          # (B, HW, C)
        return x + self.proj(y.transpose(1, 2).reshape(B, C, H, W))


class Encoder(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        chs = [cfg.ch * m for m in cfg.ch_mult]
        layers, cin = [nn.Conv2d(3, chs[0], 3, padding=1)], chs[0]
        for i, c in enumerate(chs):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock(cin, c))
                cin = c
            if i < len(chs) - 1:
                layers.append(nn.Conv2d(c, c, 3, stride=2, padding=1))  # stride-2 downsampling
        layers += [ResBlock(cin, cin), AttnBlock(cin), ResBlock(cin, cin), _norm(cin), nn.SiLU(),
                   nn.Conv2d(cin, cfg.z_dim, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)  # (B, 3, H, W) -> (B, K, h, w)


class Decoder(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        chs = [cfg.ch * m for m in cfg.ch_mult][::-1]
        layers = [nn.Conv2d(cfg.z_dim, chs[0], 3, padding=1), ResBlock(chs[0], chs[0]), AttnBlock(chs[0]),
                  ResBlock(chs[0], chs[0])]
        cin = chs[0]
        for i, c in enumerate(chs):
            for _ in range(cfg.num_res_blocks + 1):
                layers.append(ResBlock(cin, c))
                cin = c
            if i < len(chs) - 1:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)]
        layers += [_norm(cin), nn.SiLU(), nn.Conv2d(cin, 3, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)  # (B, K, h, w) -> (B, 3, H, W)


class FSQ(nn.Module):
    """Finite scalar quantisation (Mentzer et al. 2024): bound each of K dims to L_k levels, round with
    a straight-through gradient; the code index is the mixed-radix number of the K level indices."""

    def __init__(self, levels):
        super().__init__()
        L = torch.tensor(levels, dtype=torch.float32)
        self.register_buffer("L", L, persistent=False)
        self.register_buffer("basis", torch.cumprod(torch.cat([torch.ones(1), L[:-1]]), 0), persistent=False)

    def forward(self, z):  # (B, K, h, w)
        L = self.L.view(1, -1, 1, 1)
        # Deviation [fsq-scale]: the bound is tanh(.)·(L−1)/2 without the (1 ± ε), ε = 1e-3, factor of the
        # reference FSQ code and lucidrains': a saturated edge value rounds to the outermost of the L levels,
        # and the code index is computed from that rounded level, so none is lost or duplicated.
        half = (L - 1) / 2
        offset = torch.where(L % 2 == 0, 0.5, 0.0)
        bounded = torch.tanh(z + torch.atanh(offset / half)) * half - offset  # in [-(L-1)/2 - off, ...]
        q = bounded + (torch.round(bounded) - bounded).detach()              # straight-through
        idx = ((q + offset + half) * self.basis.view(1, -1, 1, 1)).sum(1).round().long()  # (B, h, w)
        return q / half, idx, z.new_zeros(())

    def embed(self, idx):  # (B, h, w) -> (B, K, h, w)
        L = self.L.view(1, -1, 1, 1)
        half, offset = (L - 1) / 2, torch.where(L % 2 == 0, 0.5, 0.0)
        digits = (idx[:, None] // self.basis.view(1, -1, 1, 1).long()) % L.long()
        return (digits - offset - half) / half


class VQ(nn.Module):
    """Vector quantisation with l2-normalised low-dimensional codes (improved VQGAN) and the VQ-VAE loss
        L_q = ||sg[z] - e||^2 + beta ||z - sg[e]||^2,   straight-through gradient;
    codes unused for `restart_after` steps are re-initialised from encoder outputs (dead-code restart)."""

    def __init__(self, n_codes, dim, beta=0.25, restart_after=200):
        super().__init__()
        self.beta, self.restart_after = beta, restart_after
        self.codebook = nn.Parameter(F.normalize(torch.randn(n_codes, dim), dim=-1))
        self.register_buffer("unused", torch.zeros(n_codes, dtype=torch.long))

    def forward(self, z):  # (B, K, h, w)
        B, K, h, w = z.shape
        z = F.normalize(z, dim=1)
        flat = z.permute(0, 2, 3, 1).reshape(-1, K)                     # (B h w, K)
        codes = F.normalize(self.codebook, dim=-1)                      # (n, K)
        idx = (flat @ codes.t()).argmax(-1)                             # nearest on the sphere
        e = codes[idx]
        loss = F.mse_loss(e, flat.detach()) + self.beta * F.mse_loss(flat, e.detach())
        q = flat + (e - flat).detach()
        if self.training:
            with torch.no_grad():
                used = torch.zeros_like(self.unused, dtype=torch.bool)
                used[idx] = True
                self.unused.mul_(~used).add_(~used)
                dead = (self.unused > self.restart_after).nonzero().flatten()
                if len(dead):
                    self.codebook.data[dead] = flat[torch.randint(len(flat), (len(dead),), device=z.device)]
                    self.unused[dead] = 0
        return q.view(B, h, w, K).permute(0, 3, 1, 2), idx.view(B, h, w), loss

    def embed(self, idx):
        return F.normalize(self.codebook, dim=-1)[idx].permute(0, 3, 1, 2)  # (B, K, h, w)


class VQGAN(nn.Module):
    """encode(images (B, 3, H, W) in [-1, 1]) -> ids (B, h, w); decode(ids) -> images."""

    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder, self.decoder = Encoder(cfg), Decoder(cfg)
        self.quantizer = FSQ(cfg.levels) if cfg.quantizer == "fsq" else VQ(cfg.codebook_size, cfg.code_dim, cfg.beta)

    def forward(self, x):
        q, idx, q_loss = self.quantizer(self.encoder(x))
        return self.decoder(q), idx, q_loss

    @torch.no_grad()
    def encode(self, x):
        return self.quantizer(self.encoder(x))[1]  # (B, h, w) int64 in [0, n_codes)

    @torch.no_grad()
    def decode(self, idx):
        return self.decoder(self.quantizer.embed(idx)).clamp(-1, 1)  # (B, 3, H, W)


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix / taming NLayerDiscriminator): one real/fake logit per patch."""

    def __init__(self, ch=64, n_layers=3):
        super().__init__()
        layers, c = [nn.Conv2d(3, ch, 4, 2, 1), nn.LeakyReLU(0.2)], ch
        for i in range(1, n_layers + 1):
            c_next = ch * min(2 ** i, 8)
            layers += [nn.Conv2d(c, c_next, 4, 2 if i < n_layers else 1, 1, bias=False),
                       nn.GroupNorm(min(32, c_next // 4), c_next), nn.LeakyReLU(0.2)]
            c = c_next
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
