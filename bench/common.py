"""Shared pieces of the benchmarks: an app with consents ready, percentiles, tables."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCOPES = ["provident_fund", "social_security", "income_tax", "credit_report", "court_records"]


def pct(values: Iterable[float], q: float) -> float:
    return float(np.percentile(np.asarray(list(values), dtype=float), q))


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def consent_body(national_id: str, channel: str) -> dict:
    now = datetime.now(UTC)
    return {"national_id": national_id, "scopes": SCOPES, "purpose": "credit_application",
            "granted_at": now.isoformat(), "expires_at": (now + timedelta(days=30)).isoformat(),
            "text_version": "bench", "channel": channel}


def application_body(national_id: str, consent_id: str) -> dict:
    return {"applicant": {"national_id": national_id, "name": "张三", "mobile": "13812348000"},
            "request": {"amount": 20000, "term_months": 12, "purpose": "travel"},
            "consent_id": consent_id}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_process_app(**settings):
    """An app on a fresh SQLite file, a channel key and its test client."""
    from service.persistence.migrations import upgrade
    from service.usecases.api_keys import create_key
    from service.web.app import create_app

    folder = Path(tempfile.mkdtemp(prefix="flashloan-bench-"))
    upgrade(f"sqlite:///{folder / 'bench.db'}")
    app = create_app({"database_url": f"sqlite:///{folder / 'bench.db'}", "env": "test",
                      "var_dir": folder, "rate_limit": "1000000/minute", **settings})
    key = create_key(app.extensions["flashloan"].store.engine, "channel", "bench")
    return app, key


def prepare_bodies(client, key: str, people: list[str]) -> list[dict]:
    headers = {"Authorization": f"Bearer {key}"}
    bodies = []
    for nid in people:
        r = client.post("/v1/consents", json=consent_body(nid, "bench"), headers=headers)
        bodies.append(application_body(nid, r.get_json()["consent_id"]))
    return bodies


class Server:
    """A gunicorn server in a subprocess, stopped on exit."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int,
                 ready_path: str | None):
        """``ready_path`` must answer 2xx; with None, any HTTP answer means ready."""
        self.port = port
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="bench-server-", suffix=".log", delete=False)
        started = time.perf_counter()
        self.proc = subprocess.Popen(argv, env={**os.environ, **env}, cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.ready_s = self._wait(ready_path, started)

    def _wait(self, path: str | None, started: float) -> float:
        import requests

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited; see {self.log.name}")
            try:
                answer = requests.get(f"http://127.0.0.1:{self.port}{path or '/'}", timeout=1)
                if path is None or answer.ok:
                    return time.perf_counter() - started
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become ready; see {self.log.name}")

    def worker_rss_mb(self) -> list[float]:
        out = subprocess.run(["ps", "-o", "pid=,ppid=,rss=", "-e"], capture_output=True,
                             text=True, check=True).stdout.split()
        rows = [out[i:i + 3] for i in range(0, len(out), 3)]
        return [int(rss) / 1024 for pid, ppid, rss in rows if int(ppid) == self.proc.pid]

    def cpu_seconds(self) -> float:
        """User and system CPU time used so far by the master and its live workers."""
        ticks = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # the process ended between the listing and the read
                continue
            # After the parenthesised command name: state, ppid, ..., utime (14th), stime (15th).
            fields = stat[stat.rindex(")") + 2:].split()
            if int(entry.name) == self.proc.pid or int(fields[1]) == self.proc.pid:
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def gunicorn_argv(app: str, port: int, *options: str) -> list[str]:
    """A gunicorn command serving ``app`` on ``port`` with ``options``, its access log dropped."""
    return [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--access-logfile", "/dev/null", *options, app]
