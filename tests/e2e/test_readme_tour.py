"""The README's walk-through, pasted as one block into bash, serves and decides as it says.

The block runs in a folder that looks like the clone to ``make`` (every top-level entry links to
the repository, and ``.venv`` to its environment, already installed) but has a ``var/`` of its
own, so that it starts from no database and no keys, as on a fresh clone. The server it leaves
running in the background is stopped with its process group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.gunicorn_server import REPO, free_port, server_environment
from tests.readme_tour import read_tour

pytestmark = pytest.mark.slow

BLOCK_TIMEOUT_S = 420.0   # the block itself waits at most 300 s for the server
STOP_TIMEOUT_S = 45.0


def fresh_clone_view(folder: Path) -> Path:
    """Make ``folder`` look like the clone, installed, with nothing under var/; return it."""
    for entry in REPO.iterdir():
        if entry.name not in (".venv", "var"):
            (folder / entry.name).symlink_to(entry)
    venv = folder / ".venv"
    venv.mkdir()
    for entry in (REPO / ".venv").iterdir():
        if entry.name != ".installed":
            (venv / entry.name).symlink_to(entry)
    # Newer than every file it depends on: make serve goes straight to serving.
    (venv / ".installed").touch()
    return folder


def stop_group(pgid: int) -> None:
    """SIGTERM the block's process group (make, gunicorn and its workers); SIGKILL if it stays."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(pgid, signal.SIGKILL)


def test_the_walk_through_pasted_into_bash_gets_the_decision_it_shows(tmp_path: Path) -> None:
    tour = read_tour()
    folder = fresh_clone_view(tmp_path)
    env = {k: v for k, v in server_environment({}).items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    env["PORT"] = str(free_port())
    block = subprocess.Popen(["bash", "-c", tour.block], cwd=folder, env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = block.communicate(timeout=BLOCK_TIMEOUT_S)
    finally:
        if block.poll() is None:
            block.kill()
            block.wait()
        stop_group(block.pid)
    log = folder / "var" / "serve.log"
    server_log = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    context = f"the block said:\n{output[-6000:]}\nvar/serve.log:\n{server_log[-4000:]}"

    assert "not ready" not in output, context
    assert "Traceback" not in output + server_log, context
    assert '"status":"ready"' in output, context
    consent = json.loads(next(line for line in output.splitlines() if '"consent_id"' in line))
    assert consent["status"] == "live", context
    for field, text in tour.promised.items():
        assert f'"{field}": {text}' in output, (field, text, context)
    assert '"base_value"' in output and '"reasons"' in output, context
    chart = folder / "var" / "chart.svg"
    assert chart.exists() and "<svg" in chart.read_text(encoding="utf-8")[:500], context
