"""Helpers for the browser test: a throw-away JupyterLab server and headless Chromium options.

The server runs in its own process group on 127.0.0.1 with a random token, serves a folder the
caller prepared (a copy, so the browser never autosaves into the repository) and reads its
settings from a fresh config/data/runtime directory, so the user's own JupyterLab settings do not
leak in. The venv's ``share/jupyter`` (where the ipywidgets lab extension lives) stays on the
data path because Jupyter always searches ``sys.prefix``.

Chromium is Debian's ``/usr/bin/chromium`` (override with ``M1VISION_CHROMIUM``), driven by
Playwright's Python client; no browser is ever downloaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

#: Where a system Chromium or Chrome lives: Debian's package, then the macOS app bundles.
CHROMIUM_CANDIDATES = (
    "/usr/bin/chromium",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)
CHROMIUM = os.environ.get("M1VISION_CHROMIUM") or next(
    (path for path in CHROMIUM_CANDIDATES if Path(path).is_file()), CHROMIUM_CANDIDATES[0]
)
# --disable-background-networking and friends: on a closed network Chromium's own background
# requests (updates, sync, QUIC probes) fail and slow everything down.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

# User settings for the fresh JupyterLab: no news/update toasts over the screenshot, every cell
# kept in the DOM (no virtual scrolling), no autosave (the copy is thrown away anyway).
LAB_USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chromium_launch_options(*, timeout_s: float = 120) -> dict:
    """Keyword arguments for Playwright's ``chromium.launch`` (Debian's Chromium, headless)."""
    if not Path(CHROMIUM).is_file():
        raise FileNotFoundError(
            f"Chromium not found at {CHROMIUM!r}; install it with `make browser-deps` "
            "(apt-get install chromium; on a Mac: brew install --cask chromium) or point "
            "M1VISION_CHROMIUM at a Chromium or Chrome binary"
        )
    return {
        "executable_path": CHROMIUM,
        "headless": True,
        "args": list(CHROMIUM_ARGS),
        "timeout": timeout_s * 1000,
    }


@dataclass
class LabServer:
    """A running JupyterLab started by :func:`start_lab`; stop it with :func:`stop_lab`."""

    process: subprocess.Popen
    url: str  # http://127.0.0.1:PORT
    token: str
    root_dir: Path
    home: Path  # private config/data/runtime directories live here
    log_path: Path

    def api(self, path: str, *, method: str = "GET", timeout_s: float = 10):
        """JSON answer of the REST endpoint ``path`` (e.g. ``"/api/sessions"``), or None."""
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read()
        return json.loads(body) if body else None

    def lab_url(self, notebook: str) -> str:
        """URL that opens ``notebook`` (relative to the root) in a reset workspace."""
        return f"{self.url}/lab/tree/{notebook}?reset&token={self.token}"

    def notebook7_url(self, notebook: str) -> str:
        """URL that opens ``notebook`` in Jupyter Notebook 7 (the same server)."""
        return f"{self.url}/notebooks/{notebook}?token={self.token}"

    def log_tail(self, n_chars: int = 4000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-n_chars:]


def _write_user_settings(settings_dir: Path) -> None:
    for rel, values in LAB_USER_SETTINGS.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def start_lab(root_dir: Path, home: Path, *, timeout_s: float = 240) -> LabServer:
    """Start JupyterLab serving ``root_dir``; return once ``/api/status`` answers.

    ``home`` is an empty scratch directory for Jupyter's config, data, runtime, settings and
    workspaces, and for the server log (``home / "jupyter-server.log"``). Raises RuntimeError
    (with the end of the log) if the server exits or does not answer within ``timeout_s``.
    """
    root_dir, home = Path(root_dir).resolve(), Path(home).resolve()
    dirs = {name: home / name for name in ("config", "data", "runtime", "ipython", "workspaces")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    settings_dir = home / "settings"
    _write_user_settings(settings_dir)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTERLAB_SETTINGS_DIR": str(settings_dir),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "JUPYTER_PLATFORM_DIRS": "0",
        "PYTHONHASHSEED": "0",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    env.pop("JUPYTER_PATH", None)  # no extra data dirs from the caller's environment
    env.pop("JUPYTER_CONFIG_PATH", None)
    port, token = free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable, "-m", "jupyter", "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--LabApp.news_url=",
        "--ServerApp.open_browser=False",
        "--ServerApp.shutdown_no_activity_timeout=1800",  # a leaked server still ends
        "--MappingKernelManager.cull_idle_timeout=1800",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = home / "jupyter-server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            cmd,
            cwd=root_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop_lab kills it whole
        )
    server = LabServer(process, f"http://127.0.0.1:{port}", token, root_dir, home, log_path)
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited with code {process.returncode} before answering; "
                f"server log:\n{server.log_tail()}"
            )
        with contextlib.suppress(OSError, ValueError):
            if server.api("/api/status", timeout_s=5) is not None:
                return server
        if time.monotonic() > deadline:
            stop_lab(server)
            raise RuntimeError(
                f"JupyterLab did not answer {server.url}/api/status within {timeout_s:.0f} s; "
                f"server log:\n{server.log_tail()}"
            )
        time.sleep(0.5)


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (our unique runtime directory)."""
    pids = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
    return pids


def stop_lab(server: LabServer, *, timeout_s: float = 30) -> None:
    """Stop the server and its kernels: ask politely, then SIGTERM/SIGKILL its process group.

    Kernels run in sessions of their own, so any kernel still alive afterwards is found by its
    connection file (in this server's private runtime directory) and killed by pid.
    """
    process = server.process
    if process.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            server.api("/api/shutdown", method="POST", timeout_s=5)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                process.wait(timeout=timeout_s)
                break
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout_s)
    for pid in _pids_mentioning(str(server.home / "runtime")):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
