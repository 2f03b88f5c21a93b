"""tokenizers.py: FAST round trips and robustness, text tokenizer, VQGAN shapes/training/save-load, cache."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import data
import tokenizers as T
import vqgan as V
from training import save_checkpoint

REPO = Path(__file__).resolve().parents[1]


def _chunks(n=400, l_a=10, seed=0, noise=0.02):
    """LIBERO-like normalised chunks: smooth trends + noise, gripper steps between -1 and +1."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, l_a)
    ch = np.zeros((n, l_a, 7))
    ch[:, :, :6] = rng.normal(0, 0.4, (n, 1, 6)) + rng.normal(0, 0.3, (n, 1, 6)) * t[:, None] \
        + rng.normal(0, noise, (n, l_a, 6))
    ch[:, :, 6] = np.where(np.arange(l_a)[None] < rng.integers(0, l_a + 2, n)[:, None], -1, 1)
    return np.clip(ch, -1, 1)


@pytest.fixture(scope="module")
def fast():
    return T.FASTTokenizer(l_a=10, D=7, scale=10, vocab_size=256).fit(_chunks())


def test_dct_is_orthonormal_dct2():
    C = T.dct_matrix(10)
    np.testing.assert_allclose(C @ C.T, np.eye(10), atol=1e-12)
    x = np.random.default_rng(0).normal(size=10)
    k = 3  # DCT-II definition, ortho norm
    np.testing.assert_allclose((C @ x)[k], np.sqrt(2 / 10) * sum(x[n] * np.cos(np.pi * k * (2 * n + 1) / 20) for n in range(10)))


@pytest.mark.parametrize("noise", [0.0, 0.2])
def test_fast_round_trip_within_rounding_bound(fast, noise):
    chunks = _chunks(50, seed=1, noise=noise)
    bound = 0.5 * np.sqrt(10) / fast.scale  # per value, normalised units (class docstring)
    in_range = 0
    for c in chunks:
        ids = fast.encode(c)
        assert all(0 <= i < fast.vocab_size for i in ids)
        coeffs = fast.coefficients(c)
        # every chunk decodes to its coefficients clipped to the fitted range (the encode-time clipping)
        clipped = np.clip(coeffs, fast.min_coeff, fast.max_coeff).reshape(10, 7) / fast.scale
        np.testing.assert_allclose(fast.decode(ids), np.clip(T.dct_matrix(10).T @ clipped, -1, 1), atol=1e-9)
        if coeffs.min() >= fast.min_coeff and coeffs.max() <= fast.max_coeff:
            assert np.abs(fast.decode(ids) - c).max() <= bound + 1e-9
            in_range += 1
    assert in_range >= 25, f"only {in_range} of 50 chunks inside the fitted range: the bound went unchecked"
    smooth = _chunks(50, seed=2, noise=0.0)
    assert np.mean([len(fast.encode(c)) for c in smooth]) < 70 / 3  # compresses smooth chunks > 3x


def test_fast_encodes_every_value_in_range(fast):
    """A coefficient value inside the fit range but absent from the training chunks must survive."""
    coeffs = np.zeros(70, np.int64)
    coeffs[::7] = np.arange(fast.min_coeff, fast.max_coeff + 1)[:10]
    text = fast._to_text(coeffs)
    ids = fast.sp.encode(text)
    assert 0 not in ids and fast.sp.decode(ids) == text  # id 0 is <unk>


def test_fast_coefficient_order_low_frequencies_first(fast):
    c = np.zeros((10, 7))
    c[:, 2] = 0.5  # constant dim 2: only frequency 0 of dim 2 is non-zero
    coeffs = fast.coefficients(c)
    assert np.flatnonzero(coeffs).tolist() == [2]


@pytest.mark.parametrize("ids", [[], [0], list(range(200)) * 3, [-5, 10 ** 9, 3], "random"])
def test_fast_decode_never_raises(fast, ids):
    if ids == "random":
        ids = np.random.default_rng(0).integers(-10, 2 * fast.vocab_size, 37).tolist()
    out = fast.decode(ids)
    assert out.shape == (10, 7) and np.isfinite(out).all() and np.abs(out).max() <= 1
    assert fast.decode(ids, l_a=5, D=3).shape == (5, 3)


def test_fast_save_load_identical(fast, tmp_path):
    fast.save(tmp_path)
    again = T.FASTTokenizer.load(tmp_path)
    for c in _chunks(20, seed=3):
        assert again.encode(c) == fast.encode(c)
        np.testing.assert_array_equal(again.decode(fast.encode(c)), fast.decode(fast.encode(c)))
    with pytest.raises(data.DataError, match="FAST tokenizer not found"):
        T.FASTTokenizer.load(tmp_path / "nothing")
    assert again.coeff_lo is None                                                      # no ranges fitted
    ranged = T.FASTTokenizer(l_a=10, D=7, scale=10, vocab_size=256).fit(_chunks()).fit_ranges(_chunks(seed=1))
    ranged.save(tmp_path / "r")
    back = T.FASTTokenizer.load(tmp_path / "r")
    assert back.coeff_lo == ranged.coeff_lo and back.coeff_hi == ranged.coeff_hi and len(back.coeff_lo) == 70
    c = np.clip(ranged.coefficients(_chunks(seed=1)), ranged.min_coeff, ranged.max_coeff)
    assert (c.min(0) == back.coeff_lo).all() and (c.max(0) == back.coeff_hi).all()


def test_fast_piece_values_concatenate_to_the_coefficients(fast):
    vals = fast.piece_values()                                                         # (V, P) NaN-padded
    for c in _chunks(20, seed=4):
        ids = fast.encode(c)
        got = np.concatenate([v[~np.isnan(v)] for v in vals[ids]])
        np.testing.assert_array_equal(got, np.clip(fast.coefficients(c), fast.min_coeff, fast.max_coeff))


def test_text_tokenizer_round_trip_and_unseen_words(tmp_path):
    instr = ["pick up the black bowl and place it on the plate", "open the top drawer of the cabinet",
             "put the red block in the basket"]
    tok = T.TextTokenizer.fit(instr, vocab_size=400)
    for s in instr:
        assert tok.decode(tok.encode(s)) == s
    unseen = "grasp the zebra-striped mug über the shelf"
    ids = tok.encode(unseen)
    assert tok.decode(ids) == unseen and all(0 <= i < tok.vocab_size for i in ids)
    assert len(tok.encode(instr[0])) < len(instr[0]) / 2  # merges learned, not one token per char
    tok.save(tmp_path)
    assert T.TextTokenizer.load(tmp_path).encode(unseen) == ids


@pytest.mark.parametrize("factor", [8, 16])
@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
def test_vqgan_shapes_and_id_range(factor, quantizer):
    cfg = T.VQGANConfig(image_size=32, ch=8, ch_mult=(1, 2, 2, 2, 2)[: int(np.log2(factor)) + 1],
                        num_res_blocks=1, quantizer=quantizer, codebook_size=64)
    m = T.VQGAN(cfg).eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    ids = m.encode(x)
    assert ids.shape == (3, 32 // factor, 32 // factor) and ids.dtype == torch.int64
    assert 0 <= ids.min() and ids.max() < cfg.n_codes
    y = m.decode(ids)
    assert y.shape == x.shape and y.abs().max() <= 1
    # decode(encode(x)) is exactly the forward pass through the quantised latent
    torch.testing.assert_close(y, m(x)[0].clamp(-1, 1), atol=1e-5, rtol=0)


def test_fsq_index_embed_round_trip():
    fsq = V.FSQ((8, 5, 5, 5))
    z = torch.randn(2, 4, 3, 3) * 3
    q, idx, _ = fsq(z)
    assert idx.min() >= 0 and idx.max() < 1000
    torch.testing.assert_close(fsq.embed(idx), q)
    all_ids = torch.arange(1000).view(1, 10, 100)
    assert len(torch.unique(fsq.embed(all_ids).flatten(2).transpose(1, 2).reshape(-1, 4), dim=0)) == 1000


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
def test_vqgan_trains_loss_decreases(quantizer):
    torch.manual_seed(0)
    cfg = T.VQGANConfig(image_size=32, ch=8, ch_mult=(1, 2, 2, 2), num_res_blocks=1, quantizer=quantizer,
                        codebook_size=64)
    m = T.VQGAN(cfg)
    x = torch.from_numpy(data.synthetic_demo(4, size=32)["obs"]["agentview_rgb"]).permute(0, 3, 1, 2).float() / 127.5 - 1
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        y, _, q = m(x)
        loss = F.l1_loss(y, x) + q
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses


def test_vq_dead_code_restart():
    vq = V.VQ(16, 4, restart_after=3)
    z = torch.randn(2, 4, 2, 2)
    for _ in range(5):
        vq(z)
    used = set(vq(z)[1].flatten().tolist())
    assert (vq.unused[list(set(range(16)) - used)] <= 3).all()  # no code stays unused past the limit
    with torch.no_grad():
        codes = F.normalize(vq.codebook, dim=-1)
        z_n = F.normalize(z, dim=1).permute(0, 2, 3, 1).reshape(-1, 4)
    # restarted codes were copied from encoder outputs
    assert any(torch.allclose(c, e, atol=1e-6) for c in codes for e in z_n)


def test_vqgan_save_load_and_cache(tmp_path):
    root = data.write_synthetic(tmp_path / "d", tasks=1, demos=2, T=6, size=32)
    cfg = T.VQGANConfig(image_size=16, ch=8, ch_mult=(1, 2), num_res_blocks=1)
    m = T.VQGAN(cfg).eval()
    from dataclasses import asdict
    save_checkpoint(tmp_path / "vq", m, {"vqgan": asdict(cfg), "heldout_episodes": [1]})
    again = T.load_vqgan(tmp_path / "vq")
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(again.decode(again.encode(x)), m.decode(m.encode(x)))
    d = data.LiberoData(root)
    path = T.cache_keyframes(d, tmp_path / "vq")
    cache = T.KeyframeCache(path)
    ids = cache.ids(d.episodes[1], [0, 5])
    assert ids.shape == (2, 2, 8, 8)
    wrist = data.frames_to_tensor(d.images(1, "wrist", [0, 5]), 16)
    torch.testing.assert_close(ids[:, 1], m.encode(wrist))


def test_cli_fit_and_report(tmp_path):
    root = data.write_synthetic(tmp_path / "d", tasks=2, demos=3, T=40, size=16)
    run = lambda *a: subprocess.run([sys.executable, str(REPO / "tokenizers.py"), *map(str, a)],
                                    capture_output=True, text=True, timeout=300)
    r = run("fit", "--data", root, "--out", tmp_path / "tok", "--action-vocab", "128")
    assert r.returncode == 0, r.stderr
    assert all((tmp_path / "tok" / f).exists() for f in ("stats.json", "fast.json", "fast.model", "text.model"))
    assert len(T.FASTTokenizer.load(tmp_path / "tok").coeff_lo) == 70                  # ranges for constrained decoding
    report = lambda *a: subprocess.run([sys.executable, str(REPO / "experiments" / "tokenizer_report.py"),
                                        *map(str, a)], capture_output=True, text=True, timeout=300)
    r = report("--data", root, "--tokenizers", tmp_path / "tok")
    assert r.returncode == 0, r.stderr
    assert "naive 256-bin per dim" in r.stdout and "FAST scale 10 (fitted)" in r.stdout
    assert "round trip exact for 2/2" in r.stdout
    r = report("--data", root, "--tokenizers", tmp_path / "missing")
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr
