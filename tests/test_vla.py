"""The VLA decoder, its attention mask, and pre-training (model.py + pretrain_vla.py, Sec. 3.3)."""
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

import data
import model as M
import training as TR
import pretrain_vla as P
import tokenizers as TK

REPO = Path(__file__).resolve().parents[1]
VOCAB = M.Vocab(n_text=20, n_visual=30, n_action=10)


def _pretrain_seq(text=(3, 4, 5), v1=(1, 2, 3, 4), vf=(5, 6, 7, 8), last=True):
    parts = [(M.SEG_TEXT, [VOCAB.special("BOS"), *text], M.ROLE_NONE, 0)]
    parts += M.image_part(VOCAB, torch.tensor(v1), M.ROLE_V1)
    parts += [(M.SEG_Q, [VOCAB.special("Q")], M.ROLE_NONE, 0)]
    if last:
        parts += M.image_part(VOCAB, torch.tensor(vf), M.ROLE_VF)
    return M.assemble(parts)


def test_mask_truth_table_pretrain_layout():
    seq = _pretrain_seq()
    batch = M.pad_batch([seq, _pretrain_seq(text=(3,))], VOCAB)
    mask = M.build_attention_mask(batch["seg"])[:, 0]                      # (B, L, L)
    L = batch["ids"].shape[1]
    seg, role = batch["seg"][0], batch["role"][0]
    q = int((seg == M.SEG_Q).nonzero())
    for i in range(L):
        for j in range(L):
            assert mask[0, i, j] == (j <= i), (i, j)                      # causal, no padding in row 0
    assert mask[0, q][(seg == M.SEG_TEXT) | (role == M.ROLE_V1)].all()       # Q sees T and v^1
    assert not mask[0, q][role == M.ROLE_VF].any()                           # ... never v^f
    assert mask[0, (role == M.ROLE_VF).nonzero()[0, 0], q]                   # v^f sees Q
    pad = batch["seg"][1] == M.SEG_PAD                                       # row 1 is 2 tokens shorter
    assert pad.sum() == 2 and not mask[1][~pad][:, pad].any()                 # nobody attends to padding


def _grid_model(image_tokens=4, seed=0):
    torch.manual_seed(seed)
    cfg = M.VLAConfig.tiny(vocab_size=VOCAB.size, D_m=8, d=32, layers=2, heads=2, image_tokens=image_tokens,
                           visual_range=(VOCAB.visual0, VOCAB.action0))
    return M.VLA(cfg).eval()


def test_grid_cells_index_codes_within_each_image():
    parts = [(M.SEG_TEXT, [VOCAB.special("BOS"), 3], M.ROLE_NONE, 0)]
    parts += M.image_part(VOCAB, torch.tensor([7, 7, 2, 9]), M.ROLE_KEYFRAME, 0)   # camera 1
    parts += M.image_part(VOCAB, torch.tensor([1, 2, 3, 4]), M.ROLE_KEYFRAME, 0)   # camera 2
    parts += [(M.SEG_ACTION, [VOCAB.special("BOA"), VOCAB.action0 + 1], M.ROLE_ACTION, 0)]
    ids = M.assemble(parts)["ids"][None]
    cells, run = _grid_model().grid_cells(ids)
    assert cells[0].tolist() == [0, 0, 0, 1, 2, 3, 4, 0, 0, 1, 2, 3, 4, 0, 0, 0] and run.tolist() == [0]
    # an image left open (generation after BOI) continues from the cached run length
    head, tail = ids[:, :5], ids[:, 5:7]                                     # split inside camera 1's codes
    _, run = _grid_model().grid_cells(head)
    cells_tail, _ = _grid_model().grid_cells(tail, run)
    assert run.tolist() == [2] and cells_tail[0].tolist() == [3, 4]


def test_grid_embedding_decodes_identically_with_and_without_kv_cache():
    """Generating image codes one at a time (the policy's imagined keyframe) must see the same grid
    cells as re-running the whole sequence."""
    model = _grid_model(image_tokens=6, seed=1)
    allowed = torch.zeros(VOCAB.size, dtype=torch.bool)
    allowed[VOCAB.visual0: VOCAB.action0] = True
    for seed in range(3):
        ctx = M.assemble([(M.SEG_TEXT, [VOCAB.special("BOS"), 3 + seed], M.ROLE_NONE, 0),
                          *M.image_part(VOCAB, torch.randint(0, 30, (6,), generator=torch.Generator().manual_seed(seed)),
                                        M.ROLE_KEYFRAME, 0),
                          (M.SEG_IMAGE, [VOCAB.special("BOI"), VOCAB.visual0 + 5], M.ROLE_NONE, 0)])["ids"]
        fast = M.greedy_generate(model, ctx, allowed, None, 5, use_cache=True)
        slow = M.greedy_generate(model, ctx, allowed, None, 5, use_cache=False)
        assert fast == slow


def test_grid_embedding_reaches_image_codes_only():
    """Cell 4's embedding changes the hidden states of an image's 4th code onwards and nothing before it;
    without the option the model has no grid parameters (old checkpoints load unchanged)."""
    model = _grid_model(image_tokens=4)
    seq = M.assemble([(M.SEG_TEXT, [VOCAB.special("BOS"), 3], M.ROLE_NONE, 0),
                      *M.image_part(VOCAB, torch.tensor([5, 6, 7, 8]), M.ROLE_KEYFRAME, 0)])
    h0 = model(seq["ids"][None], seq["seg"][None])[0]
    with torch.no_grad():
        model.grid_embed.weight[4] += 1.0
    h1 = model(seq["ids"][None], seq["seg"][None])[0]
    changed = (h0 - h1).abs().amax(-1) > 1e-6                                 # (L,)
    assert changed.tolist() == [False] * 6 + [True, True]                    # BOS 3 BOI c1 c2 c3 | c4 EOI
    assert model.grid_embed.padding_idx == 0 and not model.grid_embed.weight[0].any()   # row 0 stays zero
    assert M.VLA(M.VLAConfig.tiny(vocab_size=VOCAB.size, D_m=8, d=32, layers=2, heads=2)).grid_embed is None


def test_mask_truth_table_cofinetune_layout():
    parts = [(M.SEG_TEXT, [VOCAB.special("BOS"), 3], M.ROLE_NONE, 0)]
    parts += M.image_part(VOCAB, torch.tensor([1, 2]), M.ROLE_KEYFRAME, 0)
    parts += [(M.SEG_Q, [VOCAB.special("Q")], M.ROLE_NONE, 0)]
    parts += [(M.SEG_ACTION, [VOCAB.special("BOA"), VOCAB.action0 + 1, VOCAB.special("EOA")], M.ROLE_ACTION, 0)]
    parts += M.image_part(VOCAB, torch.tensor([5, 6]), M.ROLE_KEYFRAME, 1)
    parts += [(M.SEG_ACTION, [VOCAB.special("BOA"), VOCAB.action0 + 2, VOCAB.special("EOA")], M.ROLE_ACTION, 1)]
    seq = M.assemble(parts)
    mask = M.build_attention_mask(seq["seg"][None])[0, 0]
    q = int((seq["seg"] == M.SEG_Q).nonzero())
    later = torch.arange(len(seq["ids"])) > q
    assert not mask[q][later].any() and mask[q][~later].all()
    a2 = int(((seq["seg"] == M.SEG_ACTION) & (seq["chunk"] == 1)).nonzero()[0])
    assert mask[a2][: a2 + 1].all()                                           # A^2 sees ṽ^2, A^1, Q, ṽ^1, T


def _tiny(vocab=VOCAB, D_m=12, seed=0):
    torch.manual_seed(seed)
    return M.VLA(M.VLAConfig.tiny(vocab_size=vocab.size, D_m=D_m, d=32, layers=2, heads=2)).eval()


def test_functional_leakage():
    model = _tiny()
    seq = _pretrain_seq()
    q = int((seq["seg"] == M.SEG_Q).nonzero())

    def run(s):
        h = model(s["ids"][None], s["seg"][None])
        return model.motion_head(h[0, q]), model.lm_head(h[0, : q + 1])

    z0, logits0 = run(seq)
    vf = _pretrain_seq(vf=(9, 9, 0, 1))                                       # perturb v^f only
    z1, logits1 = run(vf)
    assert torch.equal(z0, z1) and torch.equal(logits0, logits1)             # bit-identical up to Q
    assert not torch.equal(run(_pretrain_seq(text=(3, 4, 6)))[0], z0)         # T changes ẑ_m
    assert not torch.equal(run(_pretrain_seq(v1=(1, 2, 3, 9)))[0], z0)        # v^1 changes ẑ_m


def test_loss_masks_select_exactly_v1_and_vf():
    seq = _pretrain_seq()
    ids, role = seq["ids"], seq["role"]
    vis = (ids >= VOCAB.visual0) & (ids < VOCAB.action0)
    codes = ids[vis] - VOCAB.visual0
    assert codes[:4].tolist() == [1, 2, 3, 4] and codes[4:].tolist() == [5, 6, 7, 8]
    assert (role[vis][:4] == M.ROLE_V1).all() and (role[vis][4:] == M.ROLE_VF).all()
    assert (role[~vis] == M.ROLE_NONE).all()                                  # BOS, text, BOI/EOI, Q: no loss
    model = _tiny()
    h = model(ids[None], seq["seg"][None])
    _, n1, _ = M.next_token_ce(model, h, ids[None], role[None], M.ROLE_V1)
    _, nf, _ = M.next_token_ce(model, h, ids[None], role[None], M.ROLE_VF)
    assert (n1, nf) == (4, 4)


def test_tiny_model_overfits_one_batch():
    model = _tiny().train()
    seqs = [_pretrain_seq(text=(3, k), v1=(k, 2, 3, 4), vf=(5, k, 7, 8)) for k in range(4)]
    batch = M.pad_batch(seqs, VOCAB)
    batch["z_m"] = torch.randn(4, 12)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss, _ = P.pretrain_loss(model, model(batch["ids"], batch["seg"]), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])


def test_dataset_sequences_and_no_last_frame(artifacts):
    text, fast, kf, motion, vocab = P.load_artifacts(SimpleNamespace(
        tokenizers=artifacts.tokenizers, vqgan=artifacts.vqgan, keyframe_cache=None, extractor=artifacts.extractor))
    d = data.LiberoData(artifacts.data)
    full = P.PretrainTokens(d, text, kf, motion, vocab)
    item = full[0]
    h = kf.ids(d.episodes[0], [0])[0, 0]                                      # (h, w) codes of v^1
    assert (item["role"] == M.ROLE_V1).sum() == h.numel() == (item["role"] == M.ROLE_VF).sum()
    assert torch.equal(item["ids"][item["role"] == M.ROLE_V1] - vocab.visual0, h.flatten())
    assert (item["seg"] == M.SEG_Q).sum() == 1 and item["z_m"].shape == (artifacts.D_m,)
    short = P.PretrainTokens(d, text, kf, motion, vocab, last_frame=False)[0]
    assert (short["role"] == M.ROLE_VF).sum() == 0 and short["seg"][-1] == M.SEG_Q


def _cli(artifacts, out, *extra, launcher=(sys.executable,)):
    cmd = [*launcher, str(REPO / "pretrain_vla.py"), "--data", str(artifacts.data), "--tokenizers",
           str(artifacts.tokenizers), "--vqgan", str(artifacts.vqgan), "--extractor", str(artifacts.extractor),
           "--out", str(out), "--tiny", "--width", "32", "--layers", "2", "--heads", "2", "--batch-size", "4",
           "--workers", "0", "--log-every", "2", *map(str, extra)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_cli_trains_saves_and_resumes(artifacts, tmp_path):
    r = _cli(artifacts, tmp_path / "pre", "--steps", "4", "--ckpt-every", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ce_vf" in r.stdout and "tok_per_s" in r.stdout and "seq_len" in r.stdout
    cfg = TR.load_config(tmp_path / "pre")
    model = TR.load_weights(tmp_path / "pre", M.VLA(M.VLAConfig(**cfg["vla"])))
    state = TR.load_train_state(tmp_path / "pre")
    assert all(torch.equal(v, state["model"][k]) for k, v in model.state_dict().items())  # exact round trip
    r = _cli(artifacts, tmp_path / "pre", "--steps", "6", "--resume")
    assert r.returncode == 0 and "at step 4" in r.stdout and TR.load_config(tmp_path / "pre")["step"] == 6
    r = _cli(artifacts, tmp_path / "motion", "--steps", "2", "--no-last-frame", "--no-grid-embedding")
    assert r.returncode == 0 and "ce_vf" not in r.stdout
    h, w = TK.KeyframeCache(artifacts.vqgan / "keyframe_ids.hdf5").grid            # the cache's code grid
    assert cfg["vla"]["image_tokens"] == h * w > 0 and cfg["vla"]["visual_range"] == [cfg["vocab"]["n_text"],
                                                                                 cfg["vocab"]["n_text"] + cfg["vocab"]["n_visual"]]
    assert TR.load_config(tmp_path / "motion")["vla"]["image_tokens"] == 0


def test_weight_ema_exports_the_average_and_resumes_it(artifacts, tmp_path):
    lin = torch.nn.Linear(2, 1)
    ema, w0 = TR.WeightEMA(lin, 0.5), lin.weight.detach().clone()
    with torch.no_grad():
        lin.weight.add_(1.0)
    ema.update(lin)                                                  # first update: d = min(0.5, 2/11) = 2/11
    assert torch.allclose(ema.weights["weight"], w0 * 2 / 11 + (w0 + 1) * 9 / 11)
    assert torch.equal(lin.weight, w0 + 1)                           # the model itself is untouched
    r = _cli(artifacts, tmp_path / "ema", "--steps", "4", "--ckpt-every", "2", "--ema", "0.9")
    assert r.returncode == 0, r.stderr[-3000:]
    state, exported = TR.load_train_state(tmp_path / "ema"), load_file(str(tmp_path / "ema" / "model.safetensors"))
    assert state["ema"]["n"] == 4 and exported.keys() == state["model"].keys()
    assert all(torch.equal(v, state["ema"]["weights"][k]) for k, v in exported.items())       # the average ...
    assert not all(torch.equal(v, state["model"][k]) for k, v in exported.items())            # ... not the raw weights
    r = _cli(artifacts, tmp_path / "ema", "--steps", "6", "--ema", "0.9", "--resume")
    assert r.returncode == 0 and TR.load_train_state(tmp_path / "ema")["ema"]["n"] == 6
    r = _cli(artifacts, tmp_path / "bad", "--steps", "2", "--ema", "1")
    assert r.returncode == 2 and "--ema 1.0: expected a per-step decay in [0, 1)" in r.stderr


def test_torchrun_two_processes_gloo(artifacts, tmp_path):
    torchrun = shutil.which("torchrun") or pytest.skip("torchrun not on PATH")
    r = _cli(artifacts, tmp_path / "ddp", "--steps", "3", "--device", "cpu", "--grad-accum", "2",
             "--val-every", "2", "--val-episodes", "2",
             launcher=(torchrun, "--nproc_per_node=2", "--master_port=29533"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert TR.load_config(tmp_path / "ddp")["world_size"] == 2
    log = (tmp_path / "ddp" / "log.jsonl").read_text()
    assert log.count('"val_loss"') == 2                               # steps 2 and 3, on rank 0 alone
    # co-fine-tuning with λ1 = 0 leaves the motion head without gradient: DDP must still run
    cmd = [torchrun, "--nproc_per_node=2", "--master_port=29534", str(REPO / "cofinetune.py"), "--data",
           str(artifacts.data), "--tokenizers", str(artifacts.tokenizers), "--vqgan", str(artifacts.vqgan),
           "--extractor", str(artifacts.extractor), "--init-from", str(tmp_path / "ddp"), "--out", str(tmp_path / "cft"),
           "--steps", "2", "--batch-size", "2", "--workers", "0", "--device", "cpu", "--lambda1", "0"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]


def test_cache_from_other_data_fails_before_training(artifacts, tmp_path):
    other = data.write_synthetic(tmp_path / "other", suites=("libero_goal",), tasks=1, demos=1, T=30, size=16)
    r = _cli(SimpleNamespace(**{**vars(artifacts), "data": other}), tmp_path / "pre", "--steps", "2")
    assert r.returncode != 0 and "keyframe_ids.hdf5: expected ids" in r.stderr and "Traceback" not in r.stderr
