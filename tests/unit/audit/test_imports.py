"""Importing the audit package or its command loads nothing heavy and connects nowhere."""

from __future__ import annotations

import subprocess
import sys

import pytest

import audit


@pytest.mark.parametrize("module", ["audit", "service.cli.commands.audit"])
def test_import_loads_no_database_library(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "heavy = [m for m in ('sqlalchemy', 'psycopg', 'cryptography') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_package_exposes_its_public_names_lazily() -> None:
    from audit.store import AuditStore

    assert audit.AuditStore is AuditStore
    assert "Pseudonymiser" in dir(audit)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = audit.nothing
