"""Shared fixtures: tiny LIBERO-layout files written in the tests themselves (no downloads)."""
import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")
# The tests' models are tiny: one thread avoids thread-sync overhead (8x slower steps were measured
# with 2 threads on a busy 2-core machine). Subprocesses (CLI tests) inherit this through the env.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import h5py
import numpy as np
import pytest
import torch

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def write_raw(path, lengths=(12, 9), size=16, convention="opengl", language=None):
    """Write a task file with plain h5py, the way LIBERO's create_dataset.py lays it out.

    Frame t of demo d is filled with the value 10 * d + t in channel 0, and pixel (0, 0) is marked
    255 in channel 1 *as stored*, so tests can see both the content and the orientation.
    Returns the stored (not rotated) agentview images per demo.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = []
    with h5py.File(path, "w") as f:
        g = f.create_group("data")
        for d, T in enumerate(lengths):
            imgs = np.zeros((T, size, size, 3), np.uint8)
            imgs[..., 0] = (10 * d + np.arange(T))[:, None, None]
            imgs[:, 0, 0, 1] = 255
            stored.append(imgs)
            demo = g.create_group(f"demo_{d}")
            demo.create_dataset("actions", data=np.linspace(-1, 1, T * 7).reshape(T, 7))
            demo.create_dataset("obs/agentview_rgb", data=imgs)
            demo.create_dataset("obs/eye_in_hand_rgb", data=imgs)
            demo.create_dataset("obs/ee_pos", data=np.zeros((T, 3)))
            demo.create_dataset("obs/ee_ori", data=np.zeros((T, 3)))
            demo.create_dataset("obs/gripper_states", data=np.zeros((T, 2)))
            demo.create_dataset("obs/joint_states", data=np.zeros((T, 7)))
            demo.create_dataset("states", data=np.zeros((T, 20)))
            demo.create_dataset("dones", data=(np.arange(T) == T - 1).astype(np.uint8))
            demo.attrs["num_samples"] = T
        if convention is not None:
            g.attrs["macros_image_convention"] = convention
        g.attrs["problem_info"] = json.dumps({"language_instruction": language or "pick the akita black bowl"})
        g.attrs["num_demos"] = len(lengths)
    return stored


@pytest.fixture
def raw_file(tmp_path):
    path = tmp_path / "libero_spatial" / "pick_up_the_black_bowl_on_the_plate_demo.hdf5"
    stored = write_raw(path)
    return path, stored


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """Two suites x 2 tasks x 3 demos of 40-42 steps at 32x32, written with data.write_task_file."""
    import data
    return data.write_synthetic(tmp_path_factory.mktemp("libero"), suites=("libero_spatial", "libero_object"),
                                tasks=2, demos=3, T=40, size=32)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    """Everything the VLA stages read, built fast from untrained tiny models: data, tokenizers
    (+ stats), a keyframe-id cache and a z_m export. Returns a namespace of paths for the CLIs."""
    from dataclasses import asdict
    from types import SimpleNamespace

    import data
    import model as M
    import training as TR
    import tokenizers as T
    import train_extractor

    base = tmp_path_factory.mktemp("artifacts")
    root = data.write_synthetic(base / "data", suites=("libero_spatial",), tasks=2, demos=2, T=30, size=16)
    d = data.LiberoData(root)
    stats = data.compute_stats(d)
    tok = base / "tokenizers"
    data.save_stats(stats, tok / "stats.json")
    T.FASTTokenizer(vocab_size=64).fit(T.action_chunks(d, stats, 10, stride=1)).save(tok)
    T.TextTokenizer.fit(d.instructions, vocab_size=300).save(tok)
    torch.manual_seed(0)
    vq_cfg = T.VQGANConfig(image_size=16, ch=8, ch_mult=(1, 2, 2), num_res_blocks=1, levels=(8, 8, 8))
    TR.save_checkpoint(base / "vqgan", T.VQGAN(vq_cfg), {"vqgan": asdict(vq_cfg), "heldout_episodes": [3]})
    T.cache_keyframes(d, base / "vqgan")
    ex_cfg = M.ExtractorConfig(frames=4, image_size=16, ch=8, down=1, d_z=8, n_q=2, d_q=8, qformer_layers=2,
                               heads=2, d_s=2, s_down=1, d_m=2, m_down=1)
    ext = M.LatentMotionExtractor(ex_cfg)
    TR.save_checkpoint(base / "extractor", ext, {"extractor": asdict(ex_cfg), "span": 6})
    train_extractor.export_all(ext, d, base / "extractor", 6, [20], stride=1, device="cpu")  # + the window span
    return SimpleNamespace(data=root, tokenizers=tok, vqgan=base / "vqgan", extractor=base / "extractor",
                           base=base, D_m=ex_cfg.D_m)


@pytest.fixture(scope="session")
def vla_parts(artifacts):
    """The artefacts loaded as the VLA stages load them: tokenizers, caches, vocabulary, data, stats."""
    from types import SimpleNamespace

    import data
    import pretrain_vla as P
    ns = SimpleNamespace(tokenizers=artifacts.tokenizers, vqgan=artifacts.vqgan, keyframe_cache=None,
                         extractor=artifacts.extractor)
    text, fast, kf, motion, vocab = P.load_artifacts(ns)
    return SimpleNamespace(text=text, fast=fast, kf=kf, motion=motion, vocab=vocab,
                           data=data.LiberoData(artifacts.data),
                           stats=data.load_stats(artifacts.tokenizers / "stats.json"))


def run_extractor(root, out, *extra, timeout=300):
    """train_extractor.py, tiny, on 16² synthetic data with 8-frame clips over 10 steps (CLI tests)."""
    import subprocess
    import sys
    from pathlib import Path
    cmd = [sys.executable, str(Path(__file__).resolve().parents[1] / "train_extractor.py"), "--data", str(root),
           "--out", str(out), "--tiny", "--image-size", "16", "--frames", "8", "--span", "10", "--workers", "0",
           *map(str, extra)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
