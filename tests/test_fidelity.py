"""Paper fidelity and the run contract: Eq. (3)'s window-span target, AdamW's parameter groups,
--grad-accum, validation loss, DataLoaders under spawn, the GAN discriminator's resume, self-contained
policy directories, disjoint start-state streams and the deviation tags (README <-> code)."""
import functools
import json
import re
import shutil
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
import train_extractor as X
import training as TR
import pretrain_vla as P
import envs.mini as sim
from conftest import run_extractor

REPO = Path(__file__).resolve().parents[1]
TINY_VLA = ["--tiny", "--width", "32", "--layers", "2", "--heads", "2", "--workers", "0"]


def _art(artifacts):
    return ["--data", str(artifacts.data), "--tokenizers", str(artifacts.tokenizers), "--vqgan",
            str(artifacts.vqgan), "--extractor", str(artifacts.extractor)]


def test_window_span_target_is_the_windows_own_motion(artifacts):
    """Eq. (3): z_m(V_{1:f}) = f frames over the window's N·l_a steps (z_m_span20), not the 6-step export
    pre-training uses; both exports are the extractor's posterior mean of the clip they name."""
    ext_cfg = TR.load_config(artifacts.extractor)
    ext = TR.load_weights(artifacts.extractor, M.LatentMotionExtractor(M.ExtractorConfig(**ext_cfg["extractor"]))).eval()
    d = data.LiberoData(artifacts.data)
    ep = d.episodes[1]
    key = f"{ep.suite}/{ep.file.name}/{ep.demo}"
    window, clip = X.MotionCache(artifacts.extractor, span=20), X.MotionCache(artifacts.extractor)
    assert (window.span, clip.span) == (20, ext_cfg["span"]) and window.path.name == "z_m_span20.hdf5"
    f = ext.cfg.frames
    for span, cache in ((20, window), (ext_cfg["span"], clip)):
        frames = data.frames_to_tensor(d.images(1, "agentview", data.clip_indices(4, ep.length, f, span)), ext.cfg.hw)
        np.testing.assert_allclose(cache(key, 4, standardize=False), ext.encode_motion(frames[None])[0].numpy(),
                                   atol=1e-4)
    # the window's clip ends at its last keyframe's chunk end, s + N·l_a; pre-training's at s + span
    assert data.clip_indices(4, 100, f, 20)[-1] == 24 and data.clip_indices(4, 100, f, ext_cfg["span"])[-1] == 10
    with pytest.raises(FileNotFoundError, match="--export-spans 30"):
        X.MotionCache(artifacts.extractor, span=30)


def test_adamw_groups_decay_only_weight_matrices():
    vla = M.VLA(M.VLAConfig.tiny(vocab_size=50, D_m=8, d=16, layers=1, heads=2, image_tokens=4, visual_range=(0, 10)))
    opt = TR.adamw(vla, 1e-3, 0.1)
    decay, no_decay = ({id(p) for p in g["params"]} for g in opt.param_groups)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    named = dict(vla.named_parameters())
    assert id(named["blocks.0.qkv.weight"]) in decay and id(named["motion_head.0.weight"]) in decay
    for name in ("embed.weight", "grid_embed.weight", "norm.weight", "blocks.0.n1.weight", "motion_head.0.bias"):
        assert id(named[name]) in no_decay, name                      # embeddings (Q's row too), norms, biases
    assert len(decay) + len(no_decay) == len(named)
    ext = M.LatentMotionExtractor(M.ExtractorConfig.tiny())
    decay, no_decay = ({id(p) for p in g["params"]} for g in TR.adamw(ext, 1e-3, 0.01).param_groups)
    named = dict(ext.named_parameters())
    for name in ("qformer.queries", "qformer.frame_embed", "qformer.norms.0.weight", "frame_encoder.0.bias"):
        assert id(named[name]) in no_decay, name
    for name in ("qformer.self_attn.0.in_proj_weight", "qformer.inp.weight", "frame_encoder.0.weight"):
        assert id(named[name]) in decay, name
    # a decayed step shrinks only the decayed parameters when the gradient is zero
    before = {n: p.detach().clone() for n, p in vla.named_parameters()}
    opt = TR.adamw(vla, 1e-2, 0.5)
    for p in vla.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.equal(before["embed.weight"], vla.embed.weight)
    assert not torch.equal(before["blocks.0.qkv.weight"], vla.blocks[0].qkv.weight)


class _RandomSequences(torch.utils.data.Dataset):
    """Distinct random sequences of one length (every sequence has the same number of targets)."""

    def __init__(self, n=16, L=12, V=40):
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, V - 8, (n, L), generator=g)
        self.items = [(i, 0) for i in range(n)]

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, k):
        return {"ids": self.ids[k], "seg": torch.full_like(self.ids[k], M.SEG_TEXT)}


def _lm_loss(model, h, batch):
    ce = torch.nn.functional.cross_entropy(model.lm_head(h[:, :-1]).flatten(0, 1), batch["ids"][:, 1:].flatten())
    return ce, {"ce": ce.detach()}


def test_grad_accum_matches_the_larger_batch(tmp_path):
    """--grad-accum 2 at batch b gives the first update of batch 2b (equal target counts per micro-batch: the
    mean of the micro-batch means is the batch mean). Adam's first moment after one step is (1 - β1) x the
    clipped gradient, so the gradients themselves are compared (the first update is ~lr·sign(g) and hides them)."""
    def run(name, b, k):
        torch.manual_seed(0)
        model = M.VLA(M.VLAConfig.tiny(vocab_size=40, D_m=4, d=16, layers=1, heads=2))
        args = SimpleNamespace(out=str(tmp_path / name), lr=1e-3, weight_decay=0.1, resume=False, ema=0.0,
                               val_episodes=0, val_every=0, val_batches=1, seed=0, workers=0, batch_size=b,
                               grad_accum=k, steps=1, min_lr=1e-4, warmup=1, grad_clip=5.0, log_every=1, ckpt_every=1,
                               stop_after=None)
        config = {"vocab": {"n_text": 32, "n_visual": 0, "n_action": 1}}
        P.train_vla(args, model, _RandomSequences(), None, _lm_loss, config, (0, 1, 0), torch.device("cpu"), name)
        state = torch.load(tmp_path / name / "train_state.pt", weights_only=False)
        return [s["exp_avg"] for s in state["optimizer"]["state"].values()], state["model"]
    (big, w_big), (accum, w_accum), (small, _) = run("big", 8, 1), run("accum", 4, 2), run("small", 4, 1)
    assert len(big) == len(accum) > 5
    for a, b in zip(accum, big):
        torch.testing.assert_close(a, b, atol=1e-8, rtol=1e-4)
    assert max(float((a - b).abs().max()) for a, b in zip(small, big)) > 1e-4   # half the batch: another gradient
    for k in w_big:
        torch.testing.assert_close(w_accum[k], w_big[k], atol=1e-6, rtol=1e-5)


def test_validation_loss_on_heldout_episodes(artifacts, vla_parts, tmp_path):
    out = tmp_path / "pre"
    P.main([*_art(artifacts), *TINY_VLA, "--out", str(out), "--steps", "4", "--batch-size", "4",
            "--val-every", "2", "--val-episodes", "2", "--log-every", "2"])
    recs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    val = [r for r in recs if "val_loss" in r]
    assert [r["step"] for r in val] == [2, 4] and all(np.isfinite(r["val_loss"]) and "val_mse" in r for r in val)
    v = vla_parts
    ds = P.PretrainTokens(v.data, v.text, v.kf, v.motion, v.vocab)
    train, held = P.heldout_split(ds, 2)
    assert held and {ds.items[k][0] for k in held} == {1, 3} and not {ds.items[k][0] for k in train} & {1, 3}


def test_every_stage_collates_under_spawn(artifacts, vla_parts):
    """DataLoader workers under the spawn start method (macOS/MPS, Windows) pickle the dataset and collate."""
    v = vla_parts
    text, fast, kf, motion, vocab, d, stats = v.text, v.fast, v.kf, v.motion, v.vocab, v.data, v.stats
    stages = [(data.ClipView(d, 4, 6, 16), None),
              (P.PretrainTokens(d, text, kf, motion, vocab), functools.partial(P.collate, vocab=vocab)),
              (C.WindowTokens(d, stats, text, fast, kf, X.MotionCache(artifacts.extractor, span=20), vocab),
               functools.partial(C.collate, vocab=vocab))]
    for ds, collate in stages:
        ref = next(iter(torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate)))
        loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate, num_workers=1,
                                             multiprocessing_context="spawn")
        got = next(iter(loader))
        assert set(got) == set(ref)
        for k in ref:
            assert torch.equal(got[k], ref[k]) if torch.is_tensor(ref[k]) else got[k] == ref[k], k


def test_extractor_resume_restores_the_discriminator(tmp_path):
    root = data.write_synthetic(tmp_path / "d", tasks=1, demos=3, T=30, size=16)
    out = tmp_path / "ext"
    base = ["--batch-size", 2, "--val-clips", 2, "--no-export"]
    gan = [*base, "--gan-weight", 0.1, "--lr", 1e-4]
    r = run_extractor(root, out, *gan, "--steps", 2, "--val-every", 2)
    assert r.returncode == 0, r.stderr[-2000:]
    first = torch.load(out / "train_state.pt", weights_only=False)
    r = run_extractor(root, out, *gan, "--steps", 3, "--val-every", 3, "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    second = torch.load(out / "train_state.pt", weights_only=False)
    steps = {int(s["step"]) for s in second["optimizer_d"]["state"].values()}
    assert steps == {3}                                               # Adam's count continued: 2 restored + 1
    drift = max(float((second["disc"][k] - first["disc"][k]).abs().max()) for k in first["disc"])
    assert drift < 5e-3                                               # one small step from the saved weights
    r = run_extractor(root, out, *base, "--steps", 4, "--val-every", 4, "--resume")
    assert r.returncode == 0, r.stderr[-2000:]                        # dropping the GAN term resumes the rest


def test_a_moved_policy_directory_evaluates_from_anywhere(artifacts, tmp_path):
    """Train from relative paths in one folder, move the run, delete that folder, evaluate from another cwd."""
    train_side = tmp_path / "lab"
    for name in ("tokenizers", "vqgan", "extractor"):
        shutil.copytree(getattr(artifacts, name), train_side / name)
    shutil.copytree(artifacts.data, train_side / "data")
    r = subprocess.run([sys.executable, str(REPO / "cofinetune.py"), "--data", "data", "--tokenizers", "tokenizers",
                        "--vqgan", "vqgan", "--extractor", "extractor", "--init-from", "none", *TINY_VLA,
                        "--steps", "1", "--batch-size", "2", "--out", "runs/cft"], cwd=train_side,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = json.loads((train_side / "runs" / "cft" / "config.json").read_text())
    assert cfg["policy_assets"] == {"tokenizers": "tokenizers", "vqgan": "vqgan"}
    moved = tmp_path / "elsewhere" / "policy"
    moved.parent.mkdir()
    shutil.move(str(train_side / "runs" / "cft"), str(moved))
    shutil.rmtree(train_side)                                         # nothing of the training folder is left
    cwd = tmp_path / "somewhere_else"
    cwd.mkdir()
    r = subprocess.run([sys.executable, str(REPO / "evaluate.py"), "--policy", str(moved), "--env", "mini",
                        "--suite", "mini_goal", "--tasks", "0", "--trials", "1", "--max-steps", "3",
                        "--camera-size", "32", "--workers", "1", "--videos", "0", "--out", "eval"],
                       cwd=cwd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((cwd / "eval" / "eval_info.json").read_text())["overall"]["n"] == 1


def test_start_state_streams_are_disjoint():
    """Validation and test (official) start states never coincide with each other or with a demo's first state."""
    suite = sim.get_suite("mini_goal")
    for task in (0, 2):
        test = suite.get_task_init_states(task)                                       # (50, D)
        val = np.stack([suite.get_init_state(task, i, "val") for i in range(50)])
        train = np.stack([suite.get_init_state(task, i, "train") for i in range(50)])
        for a, b in ((val, test), (val, train), (test, train)):
            assert np.abs(a[:, None] - b[None]).max(-1).min() > 1e-6
        assert len({v.tobytes() for v in val}) == 50                                  # 50 distinct val states
    env = sim.MiniEnv("mini_goal", 2, camera_size=0)
    env.set_val_state(3)
    np.testing.assert_array_equal(env.get_state(), suite.get_init_state(2, 3, "val"))
    with pytest.raises(ValueError, match="split must be one of"):
        suite.get_init_state(0, 0, "test")


def test_val_evaluation_uses_val_states(monkeypatch, tmp_path):
    import evaluate as E
    seen = []
    monkeypatch.setattr(sim.MiniEnv, "set_val_state", lambda self, i: seen.append(("val", i)) or self._obs())
    info = E.evaluate("zero", "mini", "mini_goal", trials=2, out=tmp_path, workers=1, camera_size=0, videos=0,
                      tasks=[0], max_steps=2, init_states="val")
    assert seen == [("val", 0), ("val", 1)] and info["init_states"] == "val"
    assert "validation" in info["protocol"] and "validation" in (tmp_path / "results.md").read_text()


def test_train_evaluation_starts_where_the_demos_started(tmp_path):
    """--init-states train: trial i starts from demo attempt i's first recorded state (the expert's rollout from
    the "train" stream), a diagnostic of closed-loop success on the training states."""
    import evaluate as E
    from envs.mini.expert import rollout_expert
    env = sim.MiniEnv("mini_goal", 1, camera_size=0)
    demo, _ = rollout_expert("mini_goal", 1, 2, env=env, max_steps=3, keep_failed=True, split="train")
    env.set_train_state(2)
    np.testing.assert_array_equal(env.get_state(), demo["states"][0])
    env.set_val_state(2)
    assert np.abs(env.get_state() - demo["states"][0]).max() > 1e-6
    info = E.evaluate("zero", "mini", "mini_goal", trials=1, out=tmp_path, workers=1, camera_size=0, videos=0,
                      tasks=[1], max_steps=2, init_states="train")
    assert info["init_states"] == "train" and "demo attempt" in info["protocol"]
    assert "demonstrations' own start states" in (tmp_path / "results.md").read_text()


def _code_files() -> list[Path]:
    """The method files, the environments and the experiment scripts."""
    return sorted([*REPO.glob("*.py"), *REPO.glob("envs/**/*.py"), *REPO.glob("experiments/*.py")])


def _deviation_keys_in_code() -> dict:
    keys = {}
    for f in _code_files():
        for n, line in enumerate(f.read_text().splitlines(), 1):
            for m in re.finditer(r"Deviation \[([a-z0-9-]+)\]", line):
                keys.setdefault(m.group(1), []).append(f"{f.name}:{n}")
    return keys


def test_every_deviation_tag_is_listed_in_the_readme_and_back():
    """`# Deviation [key]: ...` at the line of every departure from the paper, one-to-one with the README's
    'Deviations' list (each item starts with its `[key]`)."""
    code = _deviation_keys_in_code()
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Deviations"):]
    section = section[: section.index("\n## ", 3)] if "\n## " in section[3:] else section
    listed = re.findall(r"^- \*\*\[([a-z0-9-]+)\]\*\*", section, re.M)
    assert len(listed) == len(set(listed)), "a README deviation is listed twice"
    assert set(code) == set(listed), (f"tagged in code, not in README: {sorted(set(code) - set(listed))}; "
                                      f"in README, not tagged in code: {sorted(set(listed) - set(code))}")
    assert len(code) >= 10
    untagged = [f"{f.name}:{n}" for f in _code_files()
                for n, line in enumerate(f.read_text().splitlines(), 1) if re.search(r"#\s*Deviation(?! \[)", line)]
    assert not untagged, f"a '# Deviation' without its [key]: {untagged}"


def test_ablation_rows_quote_the_paper_table_by_table():
    import experiments.ablations as E
    assert [r[0] for r in E.ROWS] == list(E.PAPER)
    full = dict((t, v) for t, v, _ in E.PAPER["full"])
    for name, refs in E.PAPER.items():
        for table, row, full_of_table in refs:
            assert full[table if table in full else "Table 3"] == full_of_table, (name, table)
    assert E.paper_cell("no_pretrain") == "0.448 vs 0.947 (Table 3)"
    assert E.paper_cell("lambda2_0") == "0.936 vs 0.955 (λ1/λ2 table)"
    assert E.paper_cell("plain_latent") == "0.920 vs 0.947 (appendix Table 4)" and E.paper_cell("lambda1_0") == "—"


def test_plain_latent_extractor_trains_and_exports(tmp_path):
    """train_extractor.py --latent plain: the appendix-Table-4 extractor exports a z_v of the split model's D_m."""
    root = data.write_synthetic(tmp_path / "d", tasks=1, demos=2, T=24, size=16)
    out = tmp_path / "plain"
    r = run_extractor(root, out, "--steps", 2, "--batch-size", 2, "--val-every", 2, "--val-clips", 1,
                      "--latent", "plain")
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = M.ExtractorConfig(**TR.load_config(out)["extractor"])
    split = M.ExtractorConfig(**{**TR.load_config(out)["extractor"], "latent": "split"})
    assert cfg.latent == "plain" and "z_v" in r.stdout
    for span in (None, 20):
        cache = X.MotionCache(out, span=span)
        assert cache.D_m == split.D_m
