"""The package's boundaries: what it imports, and that importing it does nothing."""

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
FORBIDDEN = ("service", "scoring", "audit", "flask", "werkzeug")


def test_datasources_never_imports_the_service_or_flask():
    code = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}: importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "heavy = sorted(m for m in ('numpy', 'scipy') if m in sys.modules)\n"
        "threads = __import__('threading').active_count()\n"
        "print(bad, heavy, threads)\n"
    )
    root = Path(datasources.__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         check=True, timeout=60)
    # Nothing forbidden, the world's numpy only on first use, and no thread started at import.
    assert out.stdout.strip() == "[] [] 1"


def test_no_module_mentions_the_forbidden_packages():
    root = Path(datasources.__file__).resolve().parent
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in FORBIDDEN:
            assert f"import {name}" not in text and f"from {name}" not in text, path
