"""Importing the package does nothing: no heavy library, no thread.

What it may import is a contract of `lint-imports` (`[tool.importlinter]` in pyproject.toml).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import datasources

MODULES = [
    "datasources.base", "datasources.breaker", "datasources.consent", "datasources.errors",
    "datasources.factory", "datasources.gather", "datasources.outcome", "datasources.http",
    "datasources.http.wire", "datasources.stub.adapters", "datasources.stub.behaviour",
    "datasources.stub.fixtures", "datasources.stub.server",
]


def test_importing_loads_no_numpy_and_starts_no_thread():
    code = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}: importlib.import_module(name)\n"
        "heavy = sorted(m for m in ('numpy', 'scipy') if m in sys.modules)\n"
        "threads = __import__('threading').active_count()\n"
        "print(heavy, threads)\n"
    )
    root = Path(datasources.__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         check=True, timeout=60)
    # The world's numpy only on first use, and no thread started at import.
    assert out.stdout.strip() == "[] 1"

