"""Signed checkpoints taken by the service itself: every N records or M seconds.

Each worker runs one background thread that looks, once a second, whether a checkpoint is
due (a read, no lock). When one is, it asks the store to take it: the decision is made again
under the chain lock and the checkpoint entered in the database's ledger, so that however many
workers and hosts ask, one checkpoint is taken per trigger. The worker that took it writes the
signed file to its checkpoints folder. No request waits for any of it beyond the chain lock's
few milliseconds.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from audit import AuditStore, Checkpoint, write_checkpoint

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

log = logging.getLogger("flashloan.checkpoints")

POLL_S = 1.0


class Checkpointer:
    """One worker's share of the schedule of signed checkpoints."""

    def __init__(self, store: AuditStore, key: Ed25519PrivateKey, folder: Path, *,
                 every_records: int, every_s: float, poll_s: float = POLL_S) -> None:
        self.store = store
        self.key = key
        self.folder = folder
        self.every_records = every_records
        self.every_s = every_s
        self.poll_s = min(poll_s, every_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public key every checkpoint of the service is signed for."""
        return self.key.public_key()

    def start(self) -> None:
        """Start this process's thread (again after a fork, which does not copy threads)."""
        with self._lock:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            self._stop.clear()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="audit-checkpoints",
                                            daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread; a checkpoint being taken is finished first."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=10)

    def run_once(self) -> Checkpoint | None:
        """Take a checkpoint if one is due and this worker is first to; write its file."""
        due = self.store.checkpoint_due(every_records=self.every_records, every_s=self.every_s)
        if not due:
            return None
        signed = self.store.take_checkpoint(self.key, every_records=self.every_records,
                                            every_s=self.every_s)
        if signed is not None:
            write_checkpoint(signed, self.folder)
            log.info("checkpoint taken", extra={"seq": signed.seq})
        return signed

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.run_once()
            except Exception:
                # The next look retries; verify still has every checkpoint taken so far.
                log.exception("a checkpoint could not be taken")
