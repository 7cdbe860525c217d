"""Verifying the audit trail as the service keeps it, for the CLI, the API and the console.

By default verification is as strong as the service can make it: the checkpoints are those
of the service's folder and of the database's ledger (and any the caller adds), and their
signatures must verify with the service's own public key, derived from its signing key, not
with whatever key a checkpoint names. On request, the answers kept in the applications
table are checked against the SHA-256 their audit records state.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from audit import AuditStore, Checkpoint, DocumentCheck, VerifyResult, load_checkpoints
from service.db import ANSWER_HASH, applications

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from service.settings import Settings

_ANSWER_REASONS = {"altered": "answer_altered", "unrecorded": "answer_unrecorded"}
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Verification:
    """The chain's verdict, how many checkpoints it was held to, and the answers' if asked."""

    chain: VerifyResult
    checkpoints: int
    applications: DocumentCheck | None = None

    @property
    def checked(self) -> int:
        return self.chain.checked

    @property
    def ok(self) -> bool:
        return self.chain.ok and (self.applications is None or self.applications.ok)

    @property
    def reason(self) -> str | None:
        if not self.chain.ok or self.applications is None or self.applications.ok:
            return self.chain.reason
        reason = self.applications.reason or ""
        return _ANSWER_REASONS.get(reason, reason)

    @property
    def first_bad_seq(self) -> int | None:
        if not self.chain.ok or self.applications is None:
            return self.chain.first_bad_seq
        return self.applications.seq if self.applications.reason == "record_altered" else None

    @property
    def message(self) -> str:
        if not self.chain.ok or self.applications is None or self.applications.ok:
            return self.chain.message
        return self.applications.message

    def summary(self) -> str:
        """One line for a person: what holds, or the first thing that does not."""
        if not self.ok:
            if self.first_bad_seq is not None:
                where = f"record {self.first_bad_seq}"
            elif self.chain.ok and self.applications is not None:
                where = f"application {self.applications.application_id}"
            else:
                where = "checkpoint"
            return f"BROKEN at {where}: {self.reason}: {self.message}"
        line = f"OK: {self.chain.message}; {self.checkpoints} checkpoint(s) extended"
        if self.applications is not None:
            line += f"; {answers_summary(self.applications)}"
        return line

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as JSON-ready values (the chain's fields, then the rest)."""
        return {
            **self.chain.to_dict(),
            "ok": self.ok,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "message": self.message,
            "checkpoints": self.checkpoints,
            "applications": None if self.applications is None else self.applications.to_dict(),
        }


def answers_summary(check: DocumentCheck) -> str:
    """Say how the answers fared, for a person."""
    text = (f"{check.checked} application answer{'' if check.checked == 1 else 's'} "
            "match their records")
    if check.unhashed:
        text += f" ({check.unhashed} decided before answers were hashed, not checked)"
    if check.purged:
        text += f" ({check.purged} whose records were purged, not checked)"
    return text


def service_public_key(settings: Settings) -> Ed25519PublicKey:
    """Return the public key of the service's signing key: the one its checkpoints carry."""
    from audit.checkpoints import load_signing_key

    return load_signing_key(settings.signing_key, settings.var_dir,
                            settings.is_production).public_key()


def checkpoint_folder(settings: Settings) -> Path:
    """Return the folder where the service writes its checkpoints."""
    return settings.var_dir / "checkpoints"


def service_checkpoints(store: AuditStore, folder: Path | None,
                        extra: Iterable[Checkpoint] = ()) -> list[Checkpoint]:
    """Return the checkpoints of the service's folder and ledger and ``extra``, once each."""
    found = list(extra) + store.recorded_checkpoints()
    if folder is not None and folder.is_dir():
        found += load_checkpoints([folder])
    return sorted(dict.fromkeys(found), key=lambda checkpoint: checkpoint.seq)


def stored_answers(engine: Engine) -> Iterator[tuple[str, str]]:
    """Yield every application's id and answer text, a page at a time."""
    after = ""
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(applications.c.application_id, applications.c.answer)
                .where(applications.c.application_id > after)
                .order_by(applications.c.application_id)
                .limit(_PAGE)
            ).all()
        yield from ((row.application_id, row.answer) for row in rows)
        if len(rows) < _PAGE:
            return
        after = rows[-1].application_id


def verify_trail(store: AuditStore, *, checkpoints: list[Checkpoint],
                 public_key: Ed25519PublicKey | str | None, start: int | None = None,
                 end: int | None = None, check_applications: bool = False) -> Verification:
    """Verify the chain against ``checkpoints`` under ``public_key``, and the answers if asked.

    Raises :class:`audit.InvalidRange` for a range that holds no record.
    """
    chain = store.verify(start, end, checkpoints, public_key=public_key)
    answers = None
    if check_applications:
        answers = store.check_documents(stored_answers(store.engine), field=ANSWER_HASH,
                                        what="answer")
    return Verification(chain, len(checkpoints), answers)
