"""The Latent Motion Extractor (model.py, Sec. 3.2) and its training/export script."""
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import data
import model as M
import train_extractor as X
import training as TR
from conftest import run_extractor

REPO = Path(__file__).resolve().parents[1]
SMALL = dict(image_size=16, ch=8, down=1, d_z=8, n_q=2, d_q=8, qformer_layers=2, heads=2, d_s=2, s_down=1,
             d_m=3, m_down=1)


NONSQUARE = {**SMALL, "image_size": 16, "image_width": 32, "m_down": 1}   # h_m = 4 != w_m = 8


@pytest.mark.parametrize("cfg", [M.ExtractorConfig.tiny(), M.ExtractorConfig(frames=8, **NONSQUARE)])
def test_latent_shapes_and_D_m(cfg):
    m = M.LatentMotionExtractor(cfg).eval()
    H, W = cfg.hw
    clip = torch.rand(2, cfg.frames, 3, H, W) * 2 - 1
    z = m.encode_z(clip)
    assert z.shape == (2, cfg.d_z, cfg.frames, H // 2 ** cfg.down, W // 2 ** cfg.down)
    (s_mu, s_lv) = m.structure(z)
    assert s_mu.shape == s_lv.shape == (2, cfg.d_s, cfg.n_q, cfg.h_s, cfg.w_s)
    (h_mu, _), (w_mu, _) = m.motion(z)
    zp = m.reduce(z)                                     # z' (2, d_z, f, h_m, w_m)
    h_m, w_m = zp.shape[-2:]
    assert (h_m, w_m) == (cfg.h_m, cfg.w_m)
    assert h_mu.shape == (2, cfg.d_m, cfg.frames, w_m) and w_mu.shape == (2, cfg.d_m, cfg.frames, h_m)
    z_m = m.encode_motion(clip)
    assert z_m.shape == (2, cfg.D_m) and cfg.D_m == h_mu[0].numel() + w_mu[0].numel()
    torch.testing.assert_close(z_m, m.flatten_motion(h_mu, w_mu))
    back_h, back_w = m.split_motion(z_m)                 # the inverse of the flattening, axis by axis
    torch.testing.assert_close(back_h, h_mu)
    torch.testing.assert_close(back_w, w_mu)
    rec, kl, z_s, z_m2 = m(clip, sample=False)
    assert rec.shape == clip.shape and kl.ndim == 0 and kl > 0
    torch.testing.assert_close(z_m2, z_m)


def test_full_config_is_the_papers_layout():
    """SPEC §1: 16 frames at 224², z_s 4x16x7x7, z_m^h, z_m^w 8x16x7, D_m = 1792; VidTwin's Q-Former."""
    cfg = M.ExtractorConfig()
    assert (cfg.frames, cfg.hw, cfg.d_s, cfg.n_q, cfg.h_s, cfg.w_s) == (16, (224, 224), 4, 16, 7, 7)
    assert (cfg.d_m, cfg.w_m, cfg.h_m, cfg.D_m) == (8, 7, 7, 1792)
    assert (cfg.n_q, cfg.d_q, cfg.qformer_layers, cfg.heads) == (16, 64, 6, 8)
    q = M.QFormer(cfg.n_q, cfg.d_q, cfg.d_z, cfg.qformer_layers, cfg.heads, cfg.frames)
    assert q(torch.zeros(3, 16, cfg.d_z)).shape == (3, 16, 64)


def test_qformer_knows_frame_order():
    """The learned frame embedding: reversing the frames changes z_s (without it, cross-attention over the
    frames is permutation-invariant and z_s could not tell a clip from its reverse)."""
    torch.manual_seed(0)
    q = M.QFormer(2, 8, 8, 2, 2, frames=6).eval()
    x = torch.randn(4, 6, 8)
    assert not torch.allclose(q(x), q(x.flip(1)), atol=1e-5)
    with torch.no_grad():
        q.frame_embed.zero_()
    torch.testing.assert_close(q(x), q(x.flip(1)), atol=1e-5, rtol=1e-5)   # the embedding is what sees order


def test_plain_latent_has_the_same_size_and_no_structure():
    """Appendix Table 4: one video-VAE latent z_v of size D_m, no z_s; the decoder sees only it."""
    split = M.ExtractorConfig(frames=8, **NONSQUARE)
    cfg = M.ExtractorConfig(frames=8, **{**NONSQUARE, "latent": "plain"})
    m = M.LatentMotionExtractor(cfg).eval()
    assert not hasattr(m, "qformer") and cfg.D_m == split.D_m
    clip = torch.rand(2, 8, 3, 16, 32) * 2 - 1
    rec, kl, z_s, z_v = m(clip, sample=False)
    assert z_s is None and z_v.shape == (2, cfg.D_m) and rec.shape == clip.shape and kl > 0
    torch.testing.assert_close(m.encode_motion(clip), z_v)
    other = torch.rand_like(z_v)
    assert not torch.allclose(m.decode(None, other), rec)                     # z_v alone decides V̂


@pytest.mark.parametrize("f", [4, 8, 16])
def test_structure_has_n_q_entries_whatever_f(f):
    cfg = M.ExtractorConfig(frames=f, **SMALL)
    m = M.LatentMotionExtractor(cfg)
    _, _, z_s, _ = m(torch.zeros(1, f, 3, 16, 16))
    assert z_s.shape[2] == cfg.n_q == 2


def test_hw_pooling_reduces_the_claimed_axes():
    w_pattern = torch.arange(6.0).view(1, 1, 1, 1, 6).expand(2, 3, 4, 5, 6)   # varies along W only
    mu_h, mu_w = M.hw_pool(w_pattern)
    assert mu_h.shape == (2, 3, 4, 6) and mu_w.shape == (2, 3, 4, 5)
    torch.testing.assert_close(mu_h[0, 0, 0], torch.arange(6.0))             # survives in z_m^h
    assert (mu_w == 2.5).all()                                               # vanishes from z_m^w
    h_pattern = torch.arange(5.0).view(1, 1, 1, 5, 1).expand(2, 3, 4, 5, 6)   # varies along H only
    mu_h, mu_w = M.hw_pool(h_pattern)
    assert (mu_h == 2.0).all()
    torch.testing.assert_close(mu_w[1, 2, 3], torch.arange(5.0))


def test_temporal_difference_flag_differences_z_prime():
    """--motion-input diff pools z'[t] - z'[t-1] (z': the motion branch's reduced features), zero at t = 0."""
    torch.manual_seed(0)
    m = M.LatentMotionExtractor(M.ExtractorConfig(frames=8, motion_input="diff", **SMALL)).eval()
    seen = []
    m.m_h.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))   # mu_h of what the branch pools
    static = torch.rand(1, 1, 3, 16, 16).expand(2, 8, 3, 16, 16) * 2 - 1
    m.encode_motion(static)
    assert seen[-1].abs().max() == 0
    clip = torch.rand(2, 8, 3, 16, 16)
    m.encode_motion(clip)
    zp = m.reduce(m.encode_z(clip))                                          # (2, C, f, h_m, w_m)
    diff = torch.cat([torch.zeros_like(zp[:, :, :1]), zp[:, :, 1:] - zp[:, :, :-1]], 2)
    torch.testing.assert_close(seen[-1], M.hw_pool(diff)[0].flatten(2))
    paper = M.LatentMotionExtractor(M.ExtractorConfig(frames=8, **SMALL)).eval()
    paper.m_h.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    paper.encode_motion(static)
    assert seen[-1].abs().max() > 0   # per-frame features (paper default) are not differenced


def test_cross_reconstruction_shapes():
    cfg = M.ExtractorConfig(frames=8, **SMALL)
    m = M.LatentMotionExtractor(cfg).eval()
    a, b = torch.rand(2, 8, 3, 16, 16), torch.rand(2, 8, 3, 16, 16)
    _, _, zs_a, _ = m(a, sample=False)
    _, _, _, zm_b = m(b, sample=False)
    assert m.decode(zs_a, zm_b).shape == (2, 8, 3, 16, 16)
    assert not torch.allclose(m.decode(zs_a, zm_b), m(a, sample=False)[0])   # the motion latent matters


def test_tiny_model_overfits_one_clip():
    torch.manual_seed(0)
    cfg = M.ExtractorConfig(frames=4, **{**SMALL, "ch": 16, "d_z": 16})
    m = M.LatentMotionExtractor(cfg)
    demo = data.synthetic_demo(4, size=16)
    clip = data.frames_to_tensor(demo["obs"]["agentview_rgb"])[None]          # (1, 4, 3, 16, 16)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(120):
        rec, kl, _, _ = m(clip)
        loss = F.mse_loss(rec, clip) + 1e-6 * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-10:]) < losses[0] / 10, (losses[0], losses[-10:])


def test_checkpoint_round_trip_exact(tmp_path):
    cfg = M.ExtractorConfig(frames=8, **SMALL)
    m = M.LatentMotionExtractor(cfg).eval()
    TR.save_checkpoint(tmp_path, m, {"extractor": asdict(cfg)}, {"step": 3})
    again = TR.load_weights(tmp_path, M.LatentMotionExtractor(M.ExtractorConfig(**TR.load_config(tmp_path)["extractor"])))
    clip = torch.rand(1, 8, 3, 16, 16)
    assert torch.equal(again.eval().encode_motion(clip), m.encode_motion(clip))
    assert TR.load_train_state(tmp_path)["step"] == 3
    assert not list(tmp_path.glob(".*.tmp"))


def test_train_and_export_cli(tmp_path):
    root = data.write_synthetic(tmp_path / "d", tasks=1, demos=3, T=30, size=16)
    out = tmp_path / "ext"
    r = run_extractor(root, out, "--steps", 4, "--batch-size", 2, "--val-every", 4, "--val-clips", 2,
                      "--export-stride", 3)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "val PSNR" in r.stdout and (out / "figure.png").exists()
    assert "(pixel change mask)" in r.stdout                                # synthetic data: no simulator to ask
    cache = X.MotionCache(out)
    d = data.LiberoData(root)
    ep = d.episodes[1]
    cfg = TR.load_config(out)
    m = TR.load_weights(out, M.LatentMotionExtractor(M.ExtractorConfig(**cfg["extractor"]))).eval()
    for s in (0, 6, 27):  # the export's shared per-frame path equals encode_motion on the clip itself
        clip = data.frames_to_tensor(d.images(1, "agentview", data.clip_indices(s, ep.length, 8, 10)), 16)[None]
        np.testing.assert_allclose(cache(f"{ep.suite}/{ep.file.name}/{ep.demo}", s, standardize=False),
                                   m.encode_motion(clip)[0].numpy(), atol=1e-4)
    z = cache(f"{ep.suite}/{ep.file.name}/{ep.demo}", 7)  # between exported starts -> start 6
    np.testing.assert_allclose(z, cache(f"{ep.suite}/{ep.file.name}/{ep.demo}", 6))
    # resume continues from the saved step
    r = run_extractor(root, out, "--steps", 6, "--batch-size", 2, "--val-every", 6, "--val-clips", 2,
                      "--resume", "--no-export")
    assert r.returncode == 0 and "at step 4" in r.stdout and TR.load_config(out)["step"] == 6
    # --validate-only re-validates the trained run with its own config (no size flags needed)
    r = subprocess.run([sys.executable, str(REPO / "train_extractor.py"), "--data", str(root), "--out", str(out),
                        "--val-clips", "2", "--validate-only"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    metrics = json.loads(r.stdout[r.stdout.rindex("{"):])
    assert metrics["moving_mask"] == "pixel change" and metrics["psnr"] > 0 and TR.load_config(out)["step"] == 6
