"""Code run in child processes by the concurrency tests (importable under ``spawn``)."""

from __future__ import annotations

from typing import Any

from audit.store import AuditStore


def append_records(url: str, worker: int, decisions: int, barrier: Any) -> None:
    """Open the store (at head already), then append two records per decision."""
    store = AuditStore.from_url(url)
    try:
        barrier.wait(timeout=60)
        for i in range(decisions):
            with store.writer() as writer:
                for step in ("application.received", "decision.made"):
                    writer.append(
                        step,
                        {"worker": worker, "i": i},
                        application_id=f"app-{worker}-{i}",
                        actor=f"channel:key_w{worker}",
                    )
    finally:
        store.dispose()
