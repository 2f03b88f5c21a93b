"""Stage 3 — co-fine-tuning (paper Sec. 3.4, Eq. 3) and the policy it produces.

Sequence [T, ṽ_q^1, Q, A_q^1, ṽ_q^2, A_q^2, ..., A_q^N]: keyframe ṽ^j = both cameras at the first
step of action chunk A^j (FAST tokens, l_a steps); one motion query Q for the window (paper), or with
--q-every-keyframe a Q after every keyframe (the summary's variant).

    L = Σ_j CE(Â_q^j, A_q^j) + λ1 ||ẑ_m − z_m(V_{1:f})||² + λ2 Σ_j CE(ṽ̂_q^j, ṽ_q^j)          (Eq. 3)

LIBERO setting: N = 2, l_a = 10, λ1 = 0.1, λ2 = 0.01. z_m(V_{1:f}) is the window's own motion: f frames
over the N·l_a steps it covers (the extractor's z_m_span20 export; --motion-span clip: its 100-step
training clip). Windows that run past the episode end are cut at the first incomplete chunk, so padding
never enters any loss term. The run directory is a self-contained policy (tokenizers and VQGAN copied in).

    python cofinetune.py --data DATA --tiny                       # from runs/pretrain, CPU
    python cofinetune.py --data DATA --tiny --init-from none      # the "w/o pre-training" ablation
    torchrun --nproc_per_node=8 cofinetune.py --data DATA         # GPUs, full config
    python cofinetune.py --bench                                  # predict_action_chunk latency, KV cache vs none

The policy (lerobot/openpi style): Policy.load(run) -> reset(), select_action(obs), predict_action_chunk(obs),
infer(obs) -> {"actions"}; observations in LIBERO's env format (images upside down, as the simulator returns them).
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

import data as D
import model as M
import training as TR
import pretrain_vla as P
import tokenizers as TK


def window_parts(vocab: M.Vocab, text_ids, keyframes, chunks, q_every_keyframe=False, states=None) -> list:
    """The co-fine-tuning layout, shared by training and the policy. keyframes: list of (2, h, w)
    codes (agentview, wrist); chunks: list of FAST id lists (may be one shorter than keyframes);
    states (--proprio, a deviation): one normalised proprio vector (P,) per keyframe, embedded as a
    state token right after the keyframe's images (the id is PAD's; model.VLA replaces its embedding)."""
    parts = [(M.SEG_TEXT, [vocab.special("BOS"), *text_ids], M.ROLE_NONE, 0)]
    for j, codes in enumerate(keyframes):
        for cam in range(codes.shape[0]):
            parts += M.image_part(vocab, codes[cam], M.ROLE_KEYFRAME, j)
        if states is not None:
            parts.append((M.SEG_STATE, [vocab.special("PAD")], M.ROLE_NONE, j, np.asarray(states[j])[None]))
        if j == 0 or q_every_keyframe:
            parts.append((M.SEG_Q, [vocab.special("Q")], M.ROLE_NONE, j))
        if j < len(chunks):
            parts.append((M.SEG_ACTION, [vocab.special("BOA")], M.ROLE_NONE, j))
            parts.append((M.SEG_ACTION, [vocab.action0 + t for t in chunks[j]] + [vocab.special("EOA")], M.ROLE_ACTION, j))
    return parts


class WindowTokens(Dataset):
    """data.WindowView windows with at least one complete chunk -> token sequences + z_m targets."""

    def __init__(self, data, stats, text, fast, kf, motion, vocab, N=2, stride=1, q_every_keyframe=False,
                 proprio=False):
        view = D.WindowView(data, stats, N, fast.l_a, motion.frames, motion.span, stride=stride)
        self.items = [(i, s) for i, s in view.items if s + fast.l_a <= data.episodes[i].length]
        self.data, self.stats, self.text, self.fast, self.kf, self.motion = data, stats, text, fast, kf, motion
        self.vocab, self.N, self.q_every, self.proprio = vocab, N, q_every_keyframe, proprio

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        i, s = self.items[idx]
        ep, l_a = self.data.episodes[i], self.fast.l_a
        n_kf = min(self.N, (ep.length - 1 - s) // l_a + 1)                   # keyframes inside the episode
        n_chunks = min(self.N, (ep.length - s) // l_a)                        # complete chunks (>= 1)
        n_kf = min(n_kf, n_chunks + 1)                                        # cut after the last complete chunk
        steps = s + l_a * np.arange(n_kf)                                      # keyframe steps
        codes = self.kf.ids(ep, steps)                                        # (n_kf, 2, h, w)
        actions = self.stats["actions"].normalize(self.data.read(i, "actions")[s: s + n_chunks * l_a])
        chunks = [self.fast.encode(actions[j * l_a: (j + 1) * l_a]) for j in range(n_chunks)]
        states = self.stats["proprio"].normalize(self.data.proprio(i, steps)) if self.proprio else None  # (n_kf, 8)
        seq = M.assemble(window_parts(self.vocab, self.text.encode(ep.instruction), list(codes), chunks,
                                      self.q_every, states))
        n_q = int((seq["seg"] == M.SEG_Q).sum())
        key = D.episode_key(ep)
        seq["z_m"] = torch.from_numpy(np.stack([self.motion(key, s + j * l_a) for j in range(n_q)])).float()  # (n_q, D_m)
        return seq


def collate(batch, vocab):
    out = M.pad_batch(batch, vocab)
    out["z_m"] = torch.cat([b["z_m"] for b in batch])                      # (total Q, D_m), in sequence order
    return out


def cofinetune_loss(model, h, batch, lambda1=0.1, lambda2=0.01):
    """Eq. (3) from hidden states h (B, L, d). A λ of 0 skips its term (no gradient reaches it).
    Returns (total, per-term dict of detached tensors)."""
    ids, seg, role = batch["ids"], batch["seg"], batch["role"]
    # Sec. 3.4, Eq. (3): Σ_j CE(Â_q^j, A_q^j) + λ1 ||ẑ_m − z_m(V_{1:f})||² + λ2 Σ_j CE(ṽ̂_q^j, ṽ_q^j)
    ce_a, _, acc_a = M.next_token_ce(model, h, ids, role, M.ROLE_ACTION)    # Σ_j CE(Â_q^j, A_q^j), token mean
    total, terms = ce_a, {"ce_action": ce_a.detach(), "acc_action": acc_a}
    if lambda1:
        z_hat = model.motion_head(h[seg == M.SEG_Q]).float()                # ẑ_m (total Q, D_m), sequence order
        # Deviation [zm-standardised]: standardised z_m, squared error averaged over D_m (λ1 weighs a
        # per-dimension MSE of unit-variance targets, not the sum over D_m)
        mse = F.mse_loss(z_hat, batch["z_m"])
        total = total + lambda1 * mse                                       # + λ1 ||ẑ_m − z_m(V_{1:f})||²
        terms["mse"] = mse.detach()
    if lambda2:
        ce_v, _, acc_v = M.next_token_ce(model, h, ids, role, M.ROLE_KEYFRAME)
        total = total + lambda2 * ce_v                                      # + λ2 Σ_j CE(ṽ̂_q^j, ṽ_q^j)
        terms.update(ce_keyframe=ce_v.detach(), acc_keyframe=acc_v)
    return total, terms


# ----------------------------------------------------------------------------------------------
# The policy

def _rotate(img):
    return np.ascontiguousarray(np.asarray(img)[::-1, ::-1])  # LIBERO env images are upside down


# Deviation [history-context]: at each re-plan the context keeps N − 1 previous (keyframe, executed chunk)
# pairs, the training layout [T, ṽ^1, Q, A^1, ṽ^2]; the paper's inference context (SPEC §3) is the same
# history window of 2, stated for the official model, not in the paper itself.
class Policy:
    """Closed-loop CoWVLA policy. At each re-plan the context is the instruction, up to `history`
    previous (keyframe, executed chunk) pairs, the current keyframe (both cameras) and Q; action
    tokens are decoded greedily (action ids + end-of-action only, KV cache; with `constrained`, only
    sequences in FAST's grammar; with several models, on their mean probabilities), FAST-decoded,
    un-normalised and clipped to [-1, 1]. The default history is N − 1, i.e. at the second and later
    re-plans the context has exactly the training layout [T, ṽ^1, Q, A^1, ṽ^2] and the policy
    predicts A^2 with its previous keyframe and executed chunk in view; at the first re-plan it is
    [T, ṽ^1, Q] (the prefix every training window starts with). History needs replan == l_a."""

    def __init__(self, model, vocab, text, fast, stats, vqgan, config, replan=None, history=None, device="cpu",
                 constrained=False, gripper_hold=False):
        self.model, self.vocab, self.text, self.fast, self.stats, self.vqgan = model, vocab, text, fast, stats, vqgan
        self.config, self.device = config, torch.device(device)
        self.N, self.l_a = config["N"], fast.l_a
        self.q_every = config["args"]["q_every_keyframe"]
        self.proprio = bool(config.get("vla", {}).get("proprio_dim"))                     # --proprio: state tokens
        # Deviation [replan]: --replan K < l_a executes the first K actions of each chunk and re-plans (the paper
        # executes chunks; how much of one, it does not say); the history is dropped then (see below)
        self.replan = replan or self.l_a
        if history and self.replan != self.l_a:  # training windows hold only whole chunks between keyframes
            raise ValueError(f"history {history} needs replan == l_a ({self.l_a}), got replan {self.replan}")
        self.history = (self.N - 1 if history is None else history) if self.replan == self.l_a else 0
        self.allowed = torch.zeros(vocab.size, dtype=torch.bool, device=self.device)
        self.allowed[vocab.action0: vocab.action0 + vocab.n_action] = True
        self.allowed[vocab.special("EOA")] = True
        self.n_coeff = self.l_a * fast.D
        self.max_tokens = self.n_coeff + 1  # every action id holds >= 1 coefficient, then EOA
        self.constrained = constrained
        self.gripper_hold = gripper_hold
        # FAST's grammar (constrained decoding): a chunk is exactly l_a * D coefficients, and where the
        # tokenizer was fitted with ranges, the coefficient at flat position k lies in [lo_k, hi_k]
        vals = torch.from_numpy(fast.piece_values()).float()                         # (n_action, P) NaN-padded
        self.piece_vals = torch.full((vocab.size, vals.shape[1]), float("nan"), device=self.device)
        self.piece_vals[vocab.action0: vocab.action0 + vocab.n_action] = vals        # EOA etc.: all NaN
        self.piece_len = (~self.piece_vals.isnan()).sum(1)                           # (V,) coefficients per id
        P, inf = vals.shape[1], float("inf")
        ranged = fast.coeff_lo is not None
        lo = list(fast.coeff_lo) if ranged else [-inf] * self.n_coeff
        hi = list(fast.coeff_hi) if ranged else [inf] * self.n_coeff
        self.lo = torch.tensor(lo + [inf] * P, device=self.device)                  # past the end: nothing fits
        self.hi = torch.tensor(hi + [-inf] * P, device=self.device)
        self.use_cache = True
        self.reset()

    # Deviation [constrained-decoding]: --decoding constrained (off by default) is not in the paper.
    def action_grammar(self, out: list[int]) -> torch.Tensor:
        """Allowed ids after `out` (constrained decoding): action ids whose coefficients, placed at the
        next flat positions, neither overshoot l_a * D nor leave the fitted per-position ranges; EOA
        exactly when all l_a * D are there. Unconstrained, ~15% of a width-256 policy's chunks on
        mini_goal decoded to 59-120 coefficients, shifting later ones onto other action dims (a 32,
        the closed gripper's DC, landing on yaw): docs/results.md, "Constrained decoding and seed ensembles"."""
        k = int(self.piece_len[out].sum())                                           # coefficients so far
        if k >= self.n_coeff:
            return torch.arange(self.vocab.size, device=self.device) == self.vocab.special("EOA")
        P = self.piece_vals.shape[1]
        v = self.piece_vals                                                            # (V, P)
        fits = ((v >= self.lo[k: k + P]) & (v <= self.hi[k: k + P])) | v.isnan()      # past the end never fits
        return self.allowed & (self.piece_len >= 1) & fits.all(1)

    @classmethod
    def load(cls, run_dir, device="auto", **kw) -> "Policy":
        """One co-fine-tuned run directory, or several (a list or 'A,B,...': a seed ensemble decoding
        with the members' mean token probabilities; they must share tokenizers, VQGAN and layout).
        A run directory is self-contained (lerobot's pretrained_model/): weights, config and, copied in
        at training time, the tokenizers (text, FAST, normalisation stats) and the VQGAN it needs, so it
        loads from any working directory and after being moved or copied to another machine."""
        device = TR.pick_device(device)
        dirs = run_dirs(run_dir)
        cfgs = [TR.load_config(d) for d in dirs]
        assets = [policy_assets(d, c) for d, c in zip(dirs, cfgs)]
        cfg = cfgs[0]
        shared = lambda c, a: (asset_digest(*a), c["vocab"], c["N"], c["args"]["q_every_keyframe"],
                               c["vla"].get("proprio_dim", 0))
        for d, c, a in zip(dirs[1:], cfgs[1:], assets[1:]):
            if shared(c, a) != shared(cfg, assets[0]):
                raise D.DataError(f"{d}: an ensemble's runs must share tokenizers, VQGAN, vocabulary, N, Q "
                                  f"layout and proprio; {dirs[0]} has {shared(cfg, assets[0])}, this one {shared(c, a)}")
        models = [TR.load_weights(d, M.VLA(M.VLAConfig(**c["vla"])), device).to(device).eval()
                  for d, c in zip(dirs, cfgs)]
        model = models[0] if len(models) == 1 else models
        tok_dir, vq_dir = assets[0]
        text, fast = TK.TextTokenizer.load(tok_dir), TK.FASTTokenizer.load(tok_dir)
        stats = D.load_stats(tok_dir / "stats.json")
        vqgan = TK.load_vqgan(vq_dir, device)
        return cls(model, M.Vocab(**cfg["vocab"]), text, fast, stats, vqgan, cfg, device=device, **kw)

    def reset(self):
        self.queue: deque = deque()
        self.grip = -1.0   # the last firm gripper command (--gripper-hold); every episode starts open
        self.past: deque = deque(maxlen=max(1, self.history))   # (keyframe codes, chunk ids)

    def encode_keyframe(self, obs) -> torch.Tensor:
        """Both cameras of a LIBERO-format observation -> VQGAN codes (2, h, w)."""
        imgs = np.stack([_rotate(obs["agentview_image"]), _rotate(obs["robot0_eye_in_hand_image"])])
        x = D.frames_to_tensor(imgs, self.vqgan.cfg.image_size).to(self.device)
        return self.vqgan.encode(x).cpu()

    def _context(self, obs, instruction):
        """-> (keyframe codes, normalised proprio or None, the assembled context ending in BOA, on device)."""
        codes = self.encode_keyframe(obs)
        state = None
        if self.proprio:  # a recorded 8-D "proprio" (evaluate.py offline), else from the env's keys
            from envs.common import obs_proprio  # the observation -> proprio mapping the demos were recorded with
            raw = obs["proprio"] if "proprio" in obs else obs_proprio(obs)
            state = self.stats["proprio"].normalize(np.asarray(raw, np.float64)).astype(np.float32)  # (8,)
        hist = list(self.past) if self.history else []
        keyframes = [c for c, _, _ in hist] + [codes]
        chunks = [a for _, a, _ in hist]
        states = [p for _, _, p in hist] + [state] if self.proprio else None
        parts = window_parts(self.vocab, self.text.encode(instruction), keyframes, chunks, self.q_every, states)
        parts.append((M.SEG_ACTION, [self.vocab.special("BOA")], M.ROLE_NONE, 0))
        return codes, state, {k: v.to(self.device) for k, v in M.assemble(parts).items()}

    def _generate(self, ctx, extra, allowed, stop, max_new):
        """Greedy tokens after the context plus `extra` ids (which carry no state)."""
        ids = torch.cat([ctx["ids"], torch.tensor(extra, dtype=torch.long, device=self.device)])
        seg = F.pad(ctx["seg"], (0, len(extra)), value=M.SEG_TEXT)
        state = F.pad(ctx["state"], (0, 0, 0, len(extra))) if "state" in ctx else None
        return M.greedy_generate(self.model, ids, allowed, stop, max_new, self.use_cache, seg, state)

    @torch.no_grad()
    def predict_action_chunk(self, obs, instruction: str | None = None, imagine: bool = False):
        """-> (l_a, 7) un-normalised actions in [-1, 1] (and the imagined next agentview keyframe)."""
        instruction = instruction or obs.get("instruction") or self.config.get("default_instruction", "")
        codes, state, ctx = self._context(obs, instruction)
        out = self._generate(ctx, [], self.action_grammar if self.constrained else self.allowed,
                             self.vocab.special("EOA"), self.max_tokens)
        ids = [t - self.vocab.action0 for t in out if t != self.vocab.special("EOA")]
        chunk = self.stats["actions"].unnormalize(self.fast.decode(ids))       # (l_a, 7)
        chunk = np.clip(chunk, -1, 1).astype(np.float32)
        if self.history:
            self.past.append((codes, ids, state))
        if not imagine:
            return chunk
        return chunk, self.imagine(ctx, out)

    @torch.no_grad()
    def imagine(self, ctx, action_tokens):
        """Generate the next keyframe's agentview tokens after the chunk and decode them with the VQGAN."""
        V = self.vocab
        h = self.vqgan.cfg.image_size // self.vqgan.cfg.factor
        allowed = torch.zeros(V.size, dtype=torch.bool, device=self.device)
        allowed[V.visual0: V.visual0 + V.n_visual] = True
        codes = self._generate(ctx, action_tokens + [V.special("BOI")], allowed, None, h * h)
        img = self.vqgan.decode(torch.tensor(codes, device=self.device).view(1, h, h) - V.visual0)[0]
        return ((img.permute(1, 2, 0).cpu().numpy() + 1) * 127.5).round().astype(np.uint8)  # (S, S, 3) upright

    def select_action(self, obs, instruction: str | None = None) -> np.ndarray:
        """Pop the next action of the queued chunk; re-plan every `replan` steps."""
        if not self.queue:
            self.queue.extend(self.predict_action_chunk(obs, instruction)[: self.replan])
        action = self.queue.popleft()                                                # (D,)
        if self.gripper_hold:
            action, self.grip = hold_gripper(action, self.grip)
        return action

    def infer(self, obs, instruction: str | None = None) -> dict:
        return {"actions": self.predict_action_chunk(obs, instruction)}


FIRM_GRIP = 0.5  # |gripper| from which a decoded command counts as firm (the demos command only ±1)


# Deviation [gripper-hold]: `evaluate.py --gripper-hold` (off by default) executes a weak decoded gripper command
# (|g| < FIRM_GRIP) as the last firm one; the paper executes the decoded chunk as it is. robosuite's gripper
# follows the command's sign, so a near-zero value decoded mid-carry (-0.2 ... -0.03 on libero_object) opens
# the hand and one right after settling (+0.05 ... +0.3 on libero_spatial) closes it far from any object.
def hold_gripper(action: np.ndarray, last: float) -> tuple[np.ndarray, float]:
    """-> (the action to execute, the last firm gripper command): a firm command passes and is kept,
    a weak one is replaced by `last`."""
    g = float(action[-1])
    if abs(g) >= FIRM_GRIP:
        return action, g
    held = action.copy()
    held[-1] = last
    return held, last


POLICY_ASSETS = {"tokenizers": ("config.json", "fast.json", "fast.model", "stats.json", "text.model"),
                 "vqgan": ("config.json", "model.safetensors")}


def bundle_policy_assets(out: Path, tokenizers, vqgan) -> dict:
    """Copy what Policy.load needs besides the VLA's weights into the run directory (OUT/tokenizers,
    OUT/vqgan; each written to a temporary folder and renamed) -> the relative paths for config.json."""
    import shutil
    rel = {}
    for name, src in (("tokenizers", Path(tokenizers)), ("vqgan", Path(vqgan))):
        dst, tmp = out / name, out / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for f in POLICY_ASSETS[name]:
            if (src / f).exists():
                shutil.copy2(src / f, tmp / f)
        shutil.rmtree(dst, ignore_errors=True)
        tmp.rename(dst)
        rel[name] = name
    return rel


def policy_assets(run_dir, cfg: dict) -> tuple[Path, Path]:
    """(tokenizers dir, VQGAN dir) of a run: the copies inside it (config["policy_assets"], relative to
    the run directory), or, for runs trained before the copies existed, the training's own paths."""
    rel = cfg.get("policy_assets")
    if rel:
        return Path(run_dir) / rel["tokenizers"], Path(run_dir) / rel["vqgan"]
    return Path(cfg["args"]["tokenizers"]), Path(cfg["args"]["vqgan"])


def asset_digest(*dirs) -> str:
    """A content hash of the policy assets in `dirs` (ensemble members must share them)."""
    import hashlib
    h = hashlib.sha1()
    for d in dirs:
        for f in sorted(Path(d).iterdir()):
            if f.is_file() and f.suffix in (".json", ".model", ".safetensors"):
                h.update(f.name.encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:12]


# Deviation [seed-ensemble]: several run directories decode as one ensemble (not in the paper; opt-in).
def run_dirs(run_dir) -> list[str]:
    """A run directory, a list of them, or 'A,B,...' -> list of directories (an ensemble if several)."""
    dirs = list(run_dir) if isinstance(run_dir, (list, tuple)) else str(run_dir).split(",")
    return [str(d) for d in dirs if str(d)]


def bench(configs=("tiny", "full"), log=print) -> list[dict]:
    """Latency of one predict_action_chunk-style decode (prefill the context, then the chunk's action
    tokens), KV cache vs re-running the whole sequence per token, for the named configs -> one row each."""
    dev = TR.pick_device()
    n_new = 16  # FAST's mean tokens per LIBERO-style chunk on the embedded benchmark (experiments/tokenizer_report.py)
    log(f"device {dev}; one chunk = prefill the context, then decode {n_new} action tokens")
    log(f"{'config':<6} {'params':>8} {'context':>8} {'new tokens':>10} {'no cache ms':>12} {'KV cache ms':>12} {'speed-up':>9}")
    table = {"tiny": (M.VLAConfig.tiny(vocab_size=2400, D_m=1024), 8, 3),
             "full": (M.VLAConfig(vocab_size=4096, D_m=2048), 16, 3 if dev.type == "cuda" else 1)}
    rows = []
    for name in configs:
        cfg, hw, reps = table[name]
        model = M.VLA(cfg).to(dev).eval()
        ctx = torch.randint(0, 1000, (16 + 2 * 2 * (hw * hw + 2) + 1 + n_new + 3,), device=dev)  # T, 2 kf x 2 cams, Q, A^1, BOA
        allowed = torch.ones(cfg.vocab_size, dtype=torch.bool, device=dev)
        times = {}
        for cache in (False, True):
            M.greedy_generate(model, ctx, allowed, None, 2, cache)  # warm-up
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(reps):
                M.greedy_generate(model, ctx, allowed, None, n_new, cache)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times[cache] = (time.perf_counter() - t0) / reps * 1000
        rows.append({"config": name, "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
                     "context": len(ctx), "new_tokens": n_new, "no_cache_ms": round(times[False], 1),
                     "kv_cache_ms": round(times[True], 1), "device": str(dev)})
        log(f"{name:<6} {rows[-1]['params_M']:>7.1f}M {len(ctx):>8} {n_new:>10} "
            f"{times[False]:>12.0f} {times[True]:>12.0f} {times[False] / times[True]:>8.1f}x")
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    P.add_vla_args(p, "cofinetune", 8000, "windows per step per process (paper: 128 in all)",
                   "print decode latency with/without KV cache and exit")
    g = p.add_argument_group("co-fine-tuning, Eq. (3), and ablations")
    g.add_argument("--init-from", default="runs/pretrain", help="pre-trained VLA run, or 'none' (w/o pre-training)")
    g.add_argument("--N", type=TR.at_least(1), default=2, help="keyframes / action chunks per window (LIBERO: 2)")
    g.add_argument("--lambda1", type=TR.in_range(0), default=0.1, help="weight of the motion MSE (0 removes the term)")
    g.add_argument("--lambda2", type=TR.in_range(0), default=0.01, help="weight of the keyframe CE (0 removes the term)")
    g.add_argument("--q-every-keyframe", action="store_true", help="a Q after every keyframe (summary's variant)")
    g.add_argument("--motion-span", choices=("window", "clip"), default="window",
                   help="Q's target z_m(V_{1:f}): window = f frames over the N·l_a steps the window covers (Eq. 3, "
                        "default; the extractor's z_m_span<N·l_a> export); clip = the extractor's training span "
                        "from the window's start (100 steps: motion past the window's last action)")
    g.add_argument("--proprio", action="store_true",
                   help="a state token after every keyframe: the robot's normalised 8-D proprio (ee_pos, ee_ori, "
                        "gripper), linearly embedded (a deviation, README; the paper's policy sees images only)")
    args = P.parse_vla_args(p, argv)
    if args.bench:
        bench()
        return 0

    (rank, world, local), device = TR.setup_run(args.seed, args.device)
    try:
        data = D.open_data(args.data)
        # Sec. 3.4, Eq. (3): z_m(V_{1:f}) of the window's own N·l_a steps
        window = (lambda fast: args.N * fast.l_a) if args.motion_span == "window" else None
        text, fast, kf, motion, vocab = P.load_artifacts(args, window)
        # Deviation [clip-span]: --motion-span clip (not the default) supervises Q with the extractor's
        # 100-step training clip from the window's start, motion past the window's last action.
        P.check_artifacts(data, kf, motion)
        stats = D.load_stats(Path(args.tokenizers) / "stats.json")
        init = None if args.init_from == "none" else TR.load_config(args.init_from)
    except (D.DataError, FileNotFoundError, TR.ArtefactError) as e:
        TR.fail(f"{e}")
    if init is not None:
        cfg = M.VLAConfig(**init["vla"])
        if init["vocab"] != asdict(vocab) or cfg.D_m != motion.D_m:
            TR.fail(f"{args.init_from} was pre-trained with vocab {init['vocab']} and D_m {cfg.D_m}, but "
                     f"these tokenizers/extractor give {asdict(vocab)} and D_m {motion.D_m}; use the same artefacts")
    else:
        cfg = P.build_model(args, vocab, motion.D_m, kf.codes_per_image)
    if cfg.proprio_dim and not args.proprio:
        TR.fail(f"{args.init_from} was co-fine-tuned with --proprio; pass --proprio to start from it")
    cfg.proprio_dim = len(stats["proprio"].q01) if args.proprio else 0
    dataset = WindowTokens(data, stats, text, fast, kf, motion, vocab, args.N, args.stride, args.q_every_keyframe,
                           args.proprio)
    instructions = data.instructions
    config = {"stage": "cofinetune", "vla": asdict(cfg), "vocab": asdict(vocab), "args": vars(args), "N": args.N,
              "l_a": fast.l_a, "frames": motion.frames, "span": motion.span, "motion_span": args.motion_span,
              "world_size": world,
              "instructions": instructions, "default_instruction": instructions[0] if len(instructions) == 1 else ""}
    if rank == 0:
        print(json.dumps(config, indent=1, default=str))
        config["policy_assets"] = bundle_policy_assets(Path(args.out), args.tokenizers, args.vqgan)
    model = M.VLA(cfg).to(device)
    if init is not None:  # pre-training has no state tokens: the proprio projection starts fresh
        TR.load_weights(args.init_from, model, device, new=("state_proj.",))
    P.train_vla(args, model, dataset, functools.partial(collate, vocab=vocab),
                lambda m, h, b: cofinetune_loss(m, h, b, args.lambda1, args.lambda2),
                config, (rank, world, local), device, "cofinetune")


if __name__ == "__main__":
    sys.exit(TR.run_cli(main))
