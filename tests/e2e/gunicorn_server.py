"""The service under gunicorn as a child process: started as in production, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import requests

REPO = Path(__file__).resolve().parents[2]
GUNICORN_CONF = REPO / "service" / "web" / "gunicorn_conf.py"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 45.0
BIND_ATTEMPTS = 3


class ServerFailed(RuntimeError):
    """The server did not start, or stopped on its own."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gunicorn_version() -> tuple[int, ...]:
    import gunicorn

    return tuple(int(part) for part in gunicorn.version_info[:2])


def server_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any FLASHLOAN_* or metrics setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLASHLOAN_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(settings)
    return env


class GunicornServer:
    """One gunicorn master with its workers, its own var folder and its log file."""

    def __init__(self, name: str, workdir: Path, settings: Mapping[str, str], *,
                 workers: int = 2) -> None:
        self.name = name
        self.workers = workers
        self.var_dir = workdir / f"var-{name}"
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{name}.log"
        self.settings = {**settings, "FLASHLOAN_VAR_DIR": str(self.var_dir)}
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def command(self) -> list[str]:
        argv = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF),
                "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers)]
        if _gunicorn_version() >= (25, 1):
            # Several servers run at once here; they must not share $HOME/.gunicorn/gunicorn.ctl.
            argv.append("--no-control-socket")
        return [*argv, "service.web.wsgi:app"]

    def log_text(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_since(self, offset: int) -> tuple[str, int]:
        """The log written after byte ``offset``, and the offset of its end."""
        if not self.log_path.exists():
            return "", offset
        with self.log_path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
        return data.decode("utf-8", errors="replace"), offset + len(data)

    def _failure(self, what: str) -> ServerFailed:
        return ServerFailed(f"{self.name}: {what}; its log ({self.log_path}):\n"
                            f"{self.log_text()[-6000:]}")

    def spawn(self) -> None:
        """Spawn gunicorn on a free port, without waiting (see ``wait_ready``)."""
        self.port = free_port()
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(), cwd=REPO, env=server_environment(self.settings),
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until /readyz answers 200 and every worker has built its app.

        If another process took the port between picking and binding it, start again on
        another port.
        """
        for attempt in range(1, BIND_ATTEMPTS + 1):
            try:
                self._wait_ready(timeout_s)
                return
            except ServerFailed:
                taken = "Address already in use" in self.log_text()
                if not taken or attempt == BIND_ATTEMPTS:
                    raise
                self.stop()
                self.spawn()

    def _wait_ready(self, timeout_s: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        with requests.Session() as session:
            while True:
                if self.process.poll() is not None:
                    raise self._failure(f"gunicorn exited with {self.process.returncode}")
                try:
                    ready = session.get(self.url("/readyz"), timeout=5).status_code == 200
                except (requests.ConnectionError, requests.Timeout):
                    # Refused before gunicorn binds; unanswered while workers still load.
                    ready = False
                if ready and self.workers_ready() >= self.workers:
                    return
                if time.monotonic() > deadline:
                    raise self._failure(f"not ready within {timeout_s:.0f} s "
                                        f"({self.workers_ready()} of {self.workers} workers)")
                time.sleep(0.1)

    def workers_ready(self) -> int:
        """How many workers have built their app.

        Each worker creates its metrics when it builds the app, and in multiprocess mode
        prometheus_client keeps them in one ``counter_<pid>.db`` file per process.
        """
        return len(list((self.var_dir / "prometheus").glob("counter_*.db")))

    def stop(self) -> int | None:
        """Stop gracefully with SIGTERM (SIGKILL after a grace period); return the exit code."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code
