"""Simulators, apart from the method: `envs.mini`, the embedded MuJoCo benchmark every stage runs on, and
`envs.libero`, the real LIBERO simulator (an optional extra), over one interface (`envs.common`).

    python -m envs.mini generate --suite mini_goal --demos-per-task 10 --out data/mini_goal
    python -m envs.libero generate --suite libero_object --demos-per-task 3 --out data/libero_gen
"""
import os
import sys

if sys.platform.startswith("linux"):
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must precede `import mujoco`

BACKENDS = ("mini", "libero")


def backend(kind: str):
    """-> (suite names `--suite all` means, get_suite, make_env(suite, task, camera_size)) of a simulator."""
    if kind == "mini":
        from envs import mini
        return list(mini.SUITES), mini.get_suite, lambda suite, task, size: mini.MiniEnv(suite, task, camera_size=size)
    if kind == "libero":
        from envs import libero
        return libero.backend()
    raise ValueError(f"unknown env {kind!r}; expected one of {', '.join(BACKENDS)}")
