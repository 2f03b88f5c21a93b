"""A CoWVLA policy as a model server for the `vla-eval` harness (the registry package `vla-eval`).

The harness runs the benchmark (here LIBERO, with its own rollout loop) and sends each observation over a
WebSocket; this server answers with an action chunk from `cofinetune.Policy`. The harness's LIBERO
observations are {"images": {"agentview", "wrist"} upright at 256², "task_description", "states": 8-D
[eef pos, axis-angle, 2 gripper fingers]}; the policy reads LIBERO's raw observation (images as the
simulator renders them, upside down), so the images are rotated back and the state is passed as the
proprio the demos recorded. `predict` returns {"actions": (replan, 7)}; the harness's chunk buffer plays
them one per step and asks again when it runs out, which is exactly `evaluate.py`'s re-planning.

    python -m integrations.vla_eval_server --policy runs/libero_cpu_object/cft_s1 --port 8000 &
    vla-eval run -c integrations/vla_eval_libero.yaml --no-docker

Needs `pip install -r requirements-vla-eval.txt` (in the real-LIBERO extra's environment for LIBERO).
"""
from __future__ import annotations

import argparse
import sys
from collections import deque
from typing import Any

import numpy as np

try:
    from vla_eval.model_servers.base import SessionContext
    from vla_eval.model_servers.predict import PredictModelServer
    from vla_eval.specs import (GRIPPER_CLOSE_POS, IMAGE_RGB, LANGUAGE, POSITION_DELTA, ROTATION_AA,
                                STATE_EEF_POS_AA_GRIP)
except ImportError:  # the class below needs the harness; say how to get it
    raise SystemExit("error: the vla-eval server needs the harness: pip install -r requirements-vla-eval.txt") from None


def to_policy_obs(obs: dict) -> dict:
    """The harness's LIBERO observation -> the raw LIBERO observation `cofinetune.Policy` reads."""
    images = obs.get("images") or {}
    missing = [k for k in ("agentview", "wrist") if k not in images]
    if missing:
        raise ValueError(f"observation lacks images {missing} (got {sorted(images)}); the benchmark needs "
                         f"send_wrist_image: true (this server asks for it in HELLO)")
    out = {"agentview_image": np.asarray(images["agentview"])[::-1, ::-1],        # back to the simulator's
           "robot0_eye_in_hand_image": np.asarray(images["wrist"])[::-1, ::-1]}   # upside-down convention
    if "states" in obs:
        out["proprio"] = np.asarray(obs["states"], np.float64).reshape(8)      # = envs.common.obs_proprio
    return out


class CoWVLAModelServer(PredictModelServer):
    """`cofinetune.Policy` behind vla-eval's PredictModelServer: one action chunk per `predict`.

    Args:
        policy: a co-fine-tuned run directory (or 'A,B' for a seed ensemble), as `evaluate.py --policy`.
        replan: actions executed per chunk (default l_a, the paper's open-loop chunk).
        decoding: "free" (the paper) or "constrained" (FAST's grammar), as `evaluate.py --decoding`.
        threads: torch threads (default: the cores idle at start, as evaluate.py).
        device: torch device for the policy ("cpu", "cuda", "auto").
        history: previous (keyframe, chunk) pairs in the context (default N - 1), as `evaluate.py --history`.
    """

    def __init__(self, policy: str, replan: int | None = None, decoding: str = "free", threads: int | None = None,
                 device: str = "cpu", history: int | None = None):
        import torch

        import training as TR
        from cofinetune import Policy
        torch.set_num_threads(threads or TR.free_cores())
        self.policy = Policy.load(policy, device=device, replan=replan, history=history,
                                  constrained=decoding == "constrained")
        super().__init__(chunk_size=self.policy.replan)
        self._past: dict[str, deque] = {}
        self.policy.predict_action_chunk(self._dummy(), "warm up")  # first-call cost before HELLO
        self.policy.reset()

    def _dummy(self) -> dict:
        img = np.zeros((256, 256, 3), np.uint8)
        return to_policy_obs({"images": {"agentview": img, "wrist": img}, "states": np.zeros(8)})

    def get_observation_params(self) -> dict[str, Any]:
        # both cameras, the state, and its axis-angle as robosuite computes it (the demos' ee_ori; the
        # harness's default flips the quaternion when w < 0); a config's own params still win
        return {"send_wrist_image": True, "send_state": True, "quat_no_antipodal": True}

    def get_action_spec(self):
        return {"position": POSITION_DELTA, "rotation": ROTATION_AA, "gripper": GRIPPER_CLOSE_POS}

    def get_observation_spec(self):
        return {"agentview": IMAGE_RGB, "wrist": IMAGE_RGB, "state": STATE_EEF_POS_AA_GRIP, "language": LANGUAGE}

    async def on_episode_start(self, config: dict[str, Any], ctx: SessionContext) -> None:
        self._past.pop(ctx.session_id, None)  # a new episode: no history
        await super().on_episode_start(config, ctx)

    async def on_episode_end(self, result: dict[str, Any], ctx: SessionContext) -> None:
        self._past.pop(ctx.session_id, None)
        await super().on_episode_end(result, ctx)

    def predict(self, obs: dict, ctx: SessionContext) -> dict:
        # the policy's history of (keyframe, chunk) pairs is per session; predict() runs one at a time
        self.policy.past = self._past.setdefault(ctx.session_id, deque(maxlen=max(1, self.policy.history)))
        if self.policy.proprio and "states" not in obs:
            raise ValueError("this policy was trained with --proprio and needs the 8-D state: the benchmark needs "
                             "send_state: true (this server asks for it in HELLO)")
        chunk = self.policy.predict_action_chunk(to_policy_obs(obs), str(obs.get("task_description", "")))
        return {"actions": chunk[: self.policy.replan]}                        # (replan, 7) in [-1, 1]


def main(argv=None):
    p = argparse.ArgumentParser(description="Serve a co-fine-tuned CoWVLA policy to the vla-eval harness "
                                            "(WebSocket, vla-eval's protocol).")
    p.add_argument("--policy", required=True, help="co-fine-tuned run directory (or 'A,B' for a seed ensemble)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (the config's server.url must match)")
    p.add_argument("--replan", type=int, default=None, help="actions executed per chunk (default l_a)")
    p.add_argument("--decoding", choices=["free", "constrained"], default="free",
                   help="action-token decoding, as evaluate.py --decoding")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the idle cores)")
    p.add_argument("--history", type=int, default=None, help="(keyframe, chunk) pairs of context (default N - 1)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda or auto")
    args = p.parse_args(argv)
    import logging

    from vla_eval.model_servers.serve import serve
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-8s %(name)s: %(message)s")
    try:
        server = CoWVLAModelServer(args.policy, args.replan, args.decoding, args.threads, args.device, args.history)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"serving {args.policy} on ws://{args.host}:{args.port} (chunk of {server.policy.replan})", flush=True)
    serve(server, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
