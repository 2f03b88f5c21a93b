"""Co-fine-tuning (Eq. 3), the window layout and the policy (cofinetune.py, Sec. 3.4)."""
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import cofinetune as C
import data
import model as M
import training as TR
import pretrain_vla as P

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def parts(vla_parts):
    return vla_parts


def _model(vocab, D_m, seed=0):
    torch.manual_seed(seed)
    return M.VLA(M.VLAConfig.tiny(vocab_size=vocab.size, D_m=D_m, d=32, layers=2, heads=2))


def test_window_sequences_and_padding_cut(parts):
    ds = C.WindowTokens(parts.data, parts.stats, parts.text, parts.fast, parts.kf, parts.motion, parts.vocab)
    T0 = parts.data.episodes[0].length
    assert all(s + 10 <= parts.data.episodes[i].length for i, s in ds.items)  # >= one complete chunk
    full = ds[0]
    seg, role, chunk = full["seg"], full["role"], full["chunk"]
    assert int((seg == M.SEG_Q).sum()) == 1 and full["z_m"].shape == (1, parts.motion.D_m)
    for j in range(2):  # both keyframes (two cameras each) and both chunks present
        assert ((role == M.ROLE_KEYFRAME) & (chunk == j)).sum() == 2 * parts.kf.ids(parts.data.episodes[0], [0])[0, 0].numel()
        assert ((role == M.ROLE_ACTION) & (chunk == j)).sum() >= 2                # FAST ids + EOA
    a1 = parts.stats["actions"].normalize(parts.data.read(0, "actions")[:10])
    ids1 = full["ids"][(role == M.ROLE_ACTION) & (chunk == 0)][:-1] - parts.vocab.action0
    assert ids1.tolist() == parts.fast.encode(a1)
    q = int((seg == M.SEG_Q).nonzero())
    first_kf2 = int(((role == M.ROLE_KEYFRAME) & (chunk == 1)).nonzero()[0])
    first_a1 = int(((role == M.ROLE_ACTION) & (chunk == 0)).nonzero()[0])
    assert q < first_a1 < first_kf2                                                  # [T, ṽ1, Q, A1, ṽ2, A2]
    # a window 15 steps before the end: chunk 2 incomplete -> cut after ṽ^2, no A^2 in any loss
    k = ds.items.index((0, T0 - 15))
    late = ds[k]
    assert ((late["role"] == M.ROLE_ACTION) & (late["chunk"] == 1)).sum() == 0
    assert ((late["role"] == M.ROLE_KEYFRAME) & (late["chunk"] == 1)).sum() > 0
    every = C.WindowTokens(parts.data, parts.stats, parts.text, parts.fast, parts.kf, parts.motion, parts.vocab,
                           q_every_keyframe=True)[0]
    assert int((every["seg"] == M.SEG_Q).sum()) == 2 and every["z_m"].shape[0] == 2


def test_q_never_sees_later_keyframes_or_actions(parts):
    model = _model(parts.vocab, parts.motion.D_m).eval()
    ds = C.WindowTokens(parts.data, parts.stats, parts.text, parts.fast, parts.kf, parts.motion, parts.vocab)
    seq = ds[0]
    q = int((seq["seg"] == M.SEG_Q).nonzero())
    z = lambda ids: model.motion_head(model(ids[None], seq["seg"][None])[0, q])
    ids2 = seq["ids"].clone()
    ids2[q + 1:] = torch.randint(0, parts.vocab.size, (len(ids2) - q - 1,))          # scramble everything after Q
    assert torch.equal(z(seq["ids"]), z(ids2))
    ids3 = seq["ids"].clone()
    ids3[q - 3] = (ids3[q - 3] + 1 - parts.vocab.visual0) % parts.vocab.n_visual + parts.vocab.visual0  # a ṽ^1 token
    assert not torch.equal(z(seq["ids"]), z(ids3))


def test_proprio_state_tokens(parts, tmp_path, monkeypatch):
    """--proprio (a deviation): one state token after each keyframe's images carrying that step's
    normalised 8-D proprio; the model embeds it through state_proj (a change reaches the state token and
    everything after it, nothing before); pre-trained weights load with the projection fresh."""
    from safetensors.torch import save_file
    args = (parts.data, parts.stats, parts.text, parts.fast, parts.kf, parts.motion, parts.vocab)
    ds, plain = C.WindowTokens(*args, proprio=True), C.WindowTokens(*args)[0]
    seq = ds[0]
    pos = (seq["seg"] == M.SEG_STATE).nonzero().flatten()
    want = torch.from_numpy(parts.stats["proprio"].normalize(parts.data.proprio(0, [0, 10]))).float()   # (2, 8)
    assert len(pos) == 2 and torch.allclose(seq["state"][pos], want)
    assert seq["state"][seq["seg"] != M.SEG_STATE].abs().sum() == 0
    assert seq["seg"][pos[0] + 1] == M.SEG_Q and seq["ids"][pos[0] - 1] == parts.vocab.special("EOI")
    keep = seq["seg"] != M.SEG_STATE                                   # without them: the paper's layout
    assert torch.equal(seq["ids"][keep], plain["ids"]) and torch.equal(seq["role"][keep], plain["role"])
    batch = C.collate([seq, ds[5]], parts.vocab)
    assert batch["state"].shape == (*batch["ids"].shape, 8)
    cfg = dict(vocab_size=parts.vocab.size, D_m=parts.motion.D_m, d=32, layers=2, heads=2)
    model = M.VLA(M.VLAConfig.tiny(**cfg, proprio_dim=8)).eval()
    h = model(batch["ids"], batch["seg"], batch["state"])
    moved = batch["state"].clone()
    moved[0, pos[1]] += 0.5
    h2 = model(batch["ids"], batch["seg"], moved)
    assert torch.equal(h[0, :pos[1]], h2[0, :pos[1]]) and torch.equal(h[1], h2[1])
    assert (h[0, pos[1]:] - h2[0, pos[1]:]).abs().amax(-1).min() > 0
    loss, _ = C.cofinetune_loss(model, model(batch["ids"], batch["seg"], batch["state"]), batch)
    loss.backward()
    assert model.state_proj.weight.grad.abs().sum() > 0
    # weights without the projection (a pre-training) load only where it may be new
    save_file(M.VLA(M.VLAConfig.tiny(**cfg)).state_dict(), str(tmp_path / "model.safetensors"))
    TR.load_weights(tmp_path, model, new=("state_proj.",))
    with pytest.raises(TR.ArtefactError, match="state_proj"):
        TR.load_weights(tmp_path, model)
    # the policy: the state of the observation's recorded proprio, at the state token, cache = no cache
    policy = C.Policy(model, parts.vocab, parts.text, parts.fast, parts.stats, _policy(parts).vqgan,
                      {"N": 2, "args": {"q_every_keyframe": False}, "vla": {"proprio_dim": 8}})
    seen, real = [], M.greedy_generate
    monkeypatch.setattr(M, "greedy_generate", lambda *a, **k: seen.append(a) or real(*a, **k))
    obs = {**_obs(parts, t=10), "proprio": parts.data.proprio(0, [10])[0]}
    chunks = []
    for cache in (True, False):
        policy.use_cache = cache
        policy.reset()
        chunks.append(policy.predict_action_chunk(obs, "pick up object a"))
    ids, seg, state = seen[0][1], seen[0][6], seen[0][7]
    assert int((seg == M.SEG_STATE).sum()) == 1 and torch.allclose(state[seg == M.SEG_STATE][0], want[1])
    np.testing.assert_array_equal(chunks[0], chunks[1])


def test_kv_cache_decoding_matches_full_decoding():
    vocab = M.Vocab(30, 40, 20)
    model = _model(vocab, 8, seed=1).eval()
    allowed = torch.zeros(vocab.size, dtype=torch.bool)
    allowed[vocab.action0: vocab.action0 + vocab.n_action] = True
    allowed[vocab.special("EOA")] = True
    for seed in range(3):
        ctx = torch.randint(0, vocab.size, (25,), generator=torch.Generator().manual_seed(seed))
        fast = M.greedy_generate(model, ctx, allowed, vocab.special("EOA"), 40, use_cache=True)
        slow = M.greedy_generate(model, ctx, allowed, vocab.special("EOA"), 40, use_cache=False)
        assert fast == slow
        assert all(allowed[t] for t in fast)                                           # never a non-action id


def test_ensemble_decoding():
    """A list of models decodes on their mean probabilities: [m, m] decodes as m; two different members
    give the same tokens with and without the KV cache; a function of the emitted tokens can be the mask."""
    vocab = M.Vocab(30, 40, 20)
    a, b = _model(vocab, 8, seed=1).eval(), _model(vocab, 8, seed=2).eval()
    allowed = torch.zeros(vocab.size, dtype=torch.bool)
    allowed[vocab.action0: vocab.action0 + vocab.n_action] = True
    eoa = vocab.special("EOA")
    for seed in range(3):
        ctx = torch.randint(0, vocab.size, (25,), generator=torch.Generator().manual_seed(seed))
        single = M.greedy_generate(a, ctx, allowed, eoa, 12)
        assert M.greedy_generate([a, a], ctx, allowed, eoa, 12) == single
        pair = M.greedy_generate([a, b], ctx, allowed, eoa, 12)
        assert pair == M.greedy_generate([a, b], ctx, allowed, eoa, 12, use_cache=False)
        # mean probability: each token is the argmax of the members' averaged softmax at its step
        seq = ctx.clone()
        for tok in pair:
            probs = sum(m.lm_head(m.hidden(seq[None], torch.full((1, len(seq)), M.SEG_TEXT))[0, -1])
                        .masked_fill(~allowed, float("-inf")).softmax(-1) for m in (a, b))
            assert tok == int(probs.argmax())
            seq = torch.cat([seq, torch.tensor([tok])])
    only_after = lambda out: allowed if len(out) < 3 else (torch.arange(vocab.size) == eoa)
    assert M.greedy_generate([a, b], ctx, only_after, eoa, 12)[3:] == [eoa]


def test_lambda_zero_removes_terms_from_gradient(parts):
    ds = C.WindowTokens(parts.data, parts.stats, parts.text, parts.fast, parts.kf, parts.motion, parts.vocab)
    batch = C.collate([ds[0], ds[5]], parts.vocab)
    grads = {}
    for l1, l2 in ((0.1, 0.01), (0.0, 0.01), (0.1, 0.0), (0.0, 0.0)):
        model = _model(parts.vocab, parts.motion.D_m)
        loss, terms = C.cofinetune_loss(model, model(batch["ids"], batch["seg"]), batch, l1, l2)
        loss.backward()
        grads[(l1, l2)] = {n: (p.grad.clone() if p.grad is not None else None) for n, p in model.named_parameters()}
        assert ("mse" in terms) == bool(l1) and ("ce_keyframe" in terms) == bool(l2)
    assert grads[(0.0, 0.01)]["motion_head.0.weight"] is None                          # λ1 = 0: no motion gradient
    assert grads[(0.1, 0.01)]["motion_head.0.weight"].abs().sum() > 0
    # λ2 = 0: what λ2 reaches (the LM head and the blocks, through CE(ṽ)) gets exactly the gradient of the
    # remaining terms, computed here from the action CE and λ1's MSE alone; with λ2 > 0 it differs
    model = _model(parts.vocab, parts.motion.D_m)
    h = model(batch["ids"], batch["seg"])
    ce_a = M.next_token_ce(model, h, batch["ids"], batch["role"], M.ROLE_ACTION)[0]
    mse = torch.nn.functional.mse_loss(model.motion_head(h[batch["seg"] == M.SEG_Q]), batch["z_m"])
    (ce_a + 0.1 * mse).backward()
    torch.testing.assert_close(grads[(0.1, 0.0)]["lm_head.weight"], model.lm_head.weight.grad, rtol=0, atol=1e-7)
    torch.testing.assert_close(grads[(0.1, 0.0)]["blocks.0.qkv.weight"], model.blocks[0].qkv.weight.grad,
                               rtol=1e-5, atol=1e-8)
    assert (grads[(0.1, 0.01)]["lm_head.weight"] - model.lm_head.weight.grad).abs().max() > 1e-6  # λ2 > 0 shows


def test_tiny_policy_overfits_one_demo(parts):
    """One demo's windows (real FAST tokens of its actions) -> action-token accuracy 100%. Keyframe codes
    are random per step (a trained VQGAN's codes differ between frames; the untrained test one's don't)."""
    g = torch.Generator().manual_seed(0)
    T = parts.data.episodes[0].length
    frame_codes = torch.randint(0, parts.vocab.n_visual, (T, 2, 2, 2), generator=g)    # (T, cams, h, w)
    actions = parts.stats["actions"].normalize(parts.data.read(0, "actions"))
    text = parts.text.encode(parts.data.episodes[0].instruction)
    seqs = []
    for s in range(0, T - 20, 5):
        chunks = [parts.fast.encode(actions[s + 10 * j: s + 10 * (j + 1)]) for j in range(2)]
        seqs.append(M.assemble(C.window_parts(parts.vocab, text, [frame_codes[s], frame_codes[s + 10]], chunks)))
        seqs[-1]["z_m"] = torch.zeros(1, parts.motion.D_m)
    batch = C.collate(seqs, parts.vocab)
    torch.manual_seed(0)
    model = _model(parts.vocab, parts.motion.D_m)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0)
    for step in range(300):
        loss, terms = C.cofinetune_loss(model, model(batch["ids"], batch["seg"]), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if terms["acc_action"] == 1.0:
            break
    assert terms["acc_action"] == 1.0, terms


def _policy(parts, model=None, fast=None, **kw):
    model = model or _model(parts.vocab, parts.motion.D_m).eval()
    import tokenizers as TK
    vq = TK.load_vqgan(Path(parts.kf.path).parent)
    cfg = {"N": 2, "args": {"q_every_keyframe": False}}
    return C.Policy(model, parts.vocab, parts.text, fast or parts.fast, parts.stats, vq, cfg, **kw)


def _obs(parts, t=0):
    """An observation in LIBERO's env format (images upside down) built from the dataset."""
    return {"agentview_image": parts.data.images(0, "agentview", [t])[0][::-1, ::-1],
            "robot0_eye_in_hand_image": parts.data.images(0, "wrist", [t])[0][::-1, ::-1]}


def test_malformed_generation_still_gives_a_chunk(parts, monkeypatch):
    policy = _policy(parts)
    for fake in ([], [parts.vocab.action0] * 200, [parts.vocab.action0 + 3, parts.vocab.special("EOA"), 5]):
        monkeypatch.setattr(M, "greedy_generate", lambda *a, **k: list(fake))
        chunk = policy.predict_action_chunk(_obs(parts), "pick up object a")
        assert chunk.shape == (10, 7) and np.isfinite(chunk).all() and np.abs(chunk).max() <= 1


def test_constrained_decoding_follows_fasts_grammar(parts, monkeypatch):
    """FAST's grammar: a chunk is l_a * D coefficients, each (once ranges are fitted) inside the range the
    training chunks span at its position. Untrained weights make free decoding break both; constrained
    decoding always reaches exactly l_a * D inside the ranges, then stops with EOA."""
    import copy
    import tokenizers as TK
    fast = copy.copy(parts.fast).fit_ranges(TK.action_chunks(parts.data, parts.stats, 10, stride=1))
    assert len(fast.coeff_lo) == 70 and all(lo <= hi for lo, hi in zip(fast.coeff_lo, fast.coeff_hi))
    vals = fast.piece_values()
    real = M.greedy_generate
    coeffs = {True: [], False: []}
    for constrained in (True, False):
        for seed in range(4):
            policy = _policy(parts, model=_model(parts.vocab, parts.motion.D_m, seed=seed).eval(), fast=fast,
                             constrained=constrained)
            out = []
            monkeypatch.setattr(M, "greedy_generate", lambda *a, **k: out.extend(real(*a, **k)) or list(out))
            assert policy.predict_action_chunk(_obs(parts, t=seed), "pick up object a").shape == (10, 7)
            ids = [t - parts.vocab.action0 for t in out if t != parts.vocab.special("EOA")]
            c = np.concatenate([v[~np.isnan(v)] for v in vals[ids]]) if ids else np.zeros(0)
            coeffs[constrained].append(c)
            if constrained:
                assert out[-1] == parts.vocab.special("EOA") and out.count(parts.vocab.special("EOA")) == 1
    inside = lambda c: len(c) == 70 and bool(((c >= fast.coeff_lo) & (c <= fast.coeff_hi)).all())
    assert all(inside(c) for c in coeffs[True]), coeffs[True]
    assert not all(inside(c) for c in coeffs[False])                                   # the constraint did work


def test_queue_replans_at_interval(parts, monkeypatch):
    policy = _policy(parts, replan=4)
    calls = []
    real = policy.predict_action_chunk
    monkeypatch.setattr(policy, "predict_action_chunk", lambda obs, instr=None: calls.append(1) or real(obs, instr))
    actions = [policy.select_action(_obs(parts), "pick up object a") for _ in range(12)]
    assert len(calls) == 3 and all(a.shape == (7,) for a in actions)
    assert policy.history == 0                                                         # history needs replan == l_a
    with pytest.raises(ValueError, match="needs replan == l_a"):                        # asked for, it is an error
        _policy(parts, replan=4, history=1)
    full = _policy(parts)
    for _ in range(21):
        full.select_action(_obs(parts), "pick up object a")
    assert full.history == 1 and len(full.past) == 1


def test_cli_from_pretrain_and_from_none_then_policy(artifacts, tmp_path):
    common = ["--data", artifacts.data, "--tokenizers", artifacts.tokenizers, "--vqgan", artifacts.vqgan,
              "--extractor", artifacts.extractor, "--tiny", "--width", "32", "--layers", "2", "--heads", "2",
              "--batch-size", "4", "--workers", "0", "--log-every", "2"]
    run = lambda script, *a: subprocess.run([sys.executable, str(REPO / script), *map(str, common), *map(str, a)],
                                            capture_output=True, text=True, timeout=600)
    r = run("pretrain_vla.py", "--out", tmp_path / "pre", "--steps", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    r = run("cofinetune.py", "--out", tmp_path / "cft", "--init-from", tmp_path / "pre", "--steps", "3")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ce_action" in r.stdout and "mse" in r.stdout and "ce_keyframe" in r.stdout
    r = run("cofinetune.py", "--out", tmp_path / "scratch", "--init-from", "none", "--steps", "2", "--lambda1", "0")
    assert r.returncode == 0 and "mse" not in r.stdout.split("step 2/2")[1]
    policy = C.Policy.load(tmp_path / "cft", device="cpu")
    d = data.LiberoData(artifacts.data)
    obs = {"agentview_image": d.images(0, "agentview", [3])[0][::-1, ::-1],
           "robot0_eye_in_hand_image": d.images(0, "wrist", [3])[0][::-1, ::-1]}
    out = policy.infer(obs, d.episodes[0].instruction)
    assert out["actions"].shape == (10, 7)
    pair = C.Policy.load(f"{tmp_path / 'cft'},{tmp_path / 'scratch'}", device="cpu")   # a seed-ensemble-style pair
    assert len(pair.model) == 2 and pair.infer(obs, d.episodes[0].instruction)["actions"].shape == (10, 7)
    import json
    import shutil
    shutil.copytree(tmp_path / "cft", tmp_path / "other")
    cfg = json.loads((tmp_path / "other" / "config.json").read_text())
    (tmp_path / "other" / "config.json").write_text(json.dumps({**cfg, "N": 3}))
    with pytest.raises(data.DataError, match="other: an ensemble's runs must share"):
        C.Policy.load([tmp_path / "cft", tmp_path / "other"], device="cpu")
    r = subprocess.run([sys.executable, str(REPO / "cofinetune.py"), "--data", str(artifacts.data), "--init-from",
                        str(tmp_path / "missing"), "--tokenizers", str(artifacts.tokenizers), "--vqgan",
                        str(artifacts.vqgan), "--extractor", str(artifacts.extractor)], capture_output=True, text=True)
    assert r.returncode != 0 and "config.json" in r.stderr and "Traceback" not in r.stderr
