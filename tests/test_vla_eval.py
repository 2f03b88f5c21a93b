"""integrations/vla_eval_server.py: a trained policy answers the vla-eval harness's protocol on 127.0.0.1."""
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("vla_eval", reason="the vla-eval extra (requirements-vla-eval.txt) is not installed")
from vla_eval.protocol.messages import Message, MessageType, pack_message, unpack_message  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def policy_dir(artifacts, tmp_path_factory):
    import cofinetune
    out = tmp_path_factory.mktemp("vla_eval") / "cft"
    cofinetune.main(["--data", str(artifacts.data), "--tokenizers", str(artifacts.tokenizers), "--vqgan",
                     str(artifacts.vqgan), "--extractor", str(artifacts.extractor), "--init-from", "none", "--tiny",
                     "--width", "32", "--layers", "2", "--heads", "2", "--steps", "1", "--batch-size", "2",
                     "--out", str(out), "--workers", "0"])
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_obs_conversion_rotates_back_to_the_simulator_convention():
    from integrations.vla_eval_server import to_policy_obs
    img = np.zeros((4, 4, 3), np.uint8)
    img[0, 0] = 255                                                  # upright: top-left
    out = to_policy_obs({"images": {"agentview": img, "wrist": img}, "states": list(range(8))})
    assert out["agentview_image"][-1, -1, 0] == 255                  # the simulator's upside-down image
    assert out["proprio"].tolist() == list(range(8))
    with pytest.raises(ValueError, match="send_wrist_image"):
        to_policy_obs({"images": {"agentview": img}})


def test_server_answers_hello_and_an_observation(policy_dir):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "integrations.vla_eval_server", "--policy", str(policy_dir),
                             "--port", str(port), "--threads", "1"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(240):                                        # /health answers once the policy is loaded
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.5)
        with connect(f"ws://127.0.0.1:{port}", max_size=None) as ws:
            ask = lambda kind, payload, seq: (ws.send(pack_message(Message(kind, payload, seq))), unpack_message(ws.recv()))[1]
            hello = ask(MessageType.HELLO, {"harness_version": "test"}, 0)
            assert hello.type == MessageType.HELLO and hello.payload["model_server"] == "CoWVLAModelServer"
            assert hello.payload["observation_params"] == {"send_wrist_image": True, "send_state": True,
                                                          "quat_no_antipodal": True}
            ws.send(pack_message(Message(MessageType.EPISODE_START, {"task": {"name": "pick up object a"}}, 1)))
            rng = np.random.default_rng(0)
            img = lambda: rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
            actions = []
            for step in range(12):                                  # > one chunk of 10: a re-plan happens
                obs = {"images": {"agentview": img(), "wrist": img()}, "task_description": "pick up object a",
                       "states": rng.normal(size=8).astype(np.float32)}
                reply = ask(MessageType.OBSERVATION, obs, 2 + step)
                assert reply.type == MessageType.ACTION, reply.payload
                actions.append(np.asarray(reply.payload["actions"]))
            a = np.stack(actions)
            assert a.shape == (12, 7) and np.all(np.abs(a) <= 1)    # one 7-D action per step, in range
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_predict_returns_a_chunk_and_keeps_history_per_session(policy_dir):
    from vla_eval.model_servers.base import SessionContext

    from integrations.vla_eval_server import CoWVLAModelServer
    server = CoWVLAModelServer(str(policy_dir), threads=1)
    img = np.full((256, 256, 3), 90, np.uint8)
    obs = {"images": {"agentview": img, "wrist": img}, "task_description": "pick up object a",
           "states": np.zeros(8, np.float32)}
    a, b = SessionContext("a", "e1"), SessionContext("b", "e2")
    chunk = server.predict(obs, a)["actions"]
    assert chunk.shape == (server.policy.l_a, 7) and np.all(np.abs(chunk) <= 1)   # (chunk, 7), in range
    server.predict(obs, b)
    assert server._past["a"] is not server._past["b"] and len(server._past["b"]) == min(1, server.policy.history)
    import anyio
    anyio.run(server.on_episode_start, {}, a)                                    # a new episode: no history
    assert "a" not in server._past and "b" in server._past
    flipped = {"agentview_image": img[::-1, ::-1], "robot0_eye_in_hand_image": img[::-1, ::-1]}
    server.policy.reset()
    direct = server.policy.predict_action_chunk(flipped, "pick up object a")   # what evaluate.py's loop asks
    assert np.array_equal(server.predict(obs, SessionContext("c", "e3"))["actions"], direct)
