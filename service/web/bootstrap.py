"""First-start preparation: check the schema, and in development make one API key per role."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from service.ops.settings import Settings


def prepare(settings: Settings | None = None, log: Callable[[str], None] = print) -> None:
    """Refuse a database not at head and, in development with no keys yet, make one per role.

    Raises SchemaNotAtHead (a RuntimeError, which gunicorn reports as one line before exiting)
    when the schema needs ``flashloan db upgrade``; nothing here changes the schema.
    """
    from audit import AuditStore
    from service.persistence.migrations import require_head
    from service.usecases.api_keys import ROLES, count_keys, create_key

    settings = settings or Settings.from_env()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    store = AuditStore.from_url(settings.database_url)
    try:
        require_head(store.engine)
        if settings.is_production or count_keys(store.engine):
            return
        path = settings.var_dir / "dev-keys.txt"
        lines = ["# Development API keys, one per role. Keep this file private."]
        for role in ROLES:
            name = "dev-channel" if role == "channel" else f"dev-{role.replace('_', '-')}"
            key = create_key(store.engine, role, name, actor="system:bootstrap")
            lines.append(f"{role} {name} {key}")
        _write_private(path, "\n".join(lines) + "\n")
        log(f"created development API keys for {', '.join(ROLES)} in {path}")
    finally:
        store.dispose()


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)
