"""Verifying the audit trail as the service keeps it, for the CLI, the API and the console.

By default verification is as strong as the service can make it: the checkpoints are those
of the service's folder and of the database's ledger (and any the caller adds), and their
signatures must verify with the service's own public key, derived from its signing key, not
with whatever key a checkpoint names. In production, where one key signs one chain, a file of
the folder signed by that key for another chain is a failure: the chain was rebuilt from
record 1 (which renames it), or the file was put where it does not belong
(:mod:`service.persistence.checkpoint_files`). On request, the answers kept in the applications
table are
checked against the SHA-256 their audit records state, and the tables that figures
and decisions read against the records they derive from (:mod:`service.usecases.table_checks`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from audit import AuditStore, Checkpoint, DocumentCheck, VerifyResult
from service.domain.encoding import ANSWER_HASH
from service.persistence.checkpoint_files import OtherChainFile as OtherChainFile
from service.persistence.checkpoint_files import ServiceCheckpoints as ServiceCheckpoints
from service.persistence.checkpoint_files import checkpoint_folder as checkpoint_folder
from service.persistence.checkpoint_files import other_chain_message
from service.persistence.checkpoint_files import service_checkpoints as service_checkpoints
from service.persistence.checkpoint_files import service_checkpoints_of as service_checkpoints_of
from service.persistence.checkpoint_files import service_public_key as service_public_key
from service.persistence.tables import applications
from service.usecases.table_checks import TableCheck, check_tables

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

_ANSWER_REASONS = {"altered": "answer_altered", "unrecorded": "answer_unrecorded"}
TABLE_DIFFERS = "table_differs"
OTHER_CHAIN = "checkpoint_other_chain"
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Verification:
    """The chain's verdict, how many checkpoints it was held to, the files of another chain
    that fail it, and the answers' and the tables' if asked (the chain first, then those
    files, then the answers, then the tables); a warning that holds with any of them."""

    chain: VerifyResult
    checkpoints: int
    applications: DocumentCheck | None = None
    tables: tuple[TableCheck, ...] | None = None
    checkpoints_ignored: int = 0
    other_chain: tuple[OtherChainFile, ...] = ()
    warning: str | None = None

    @property
    def checked(self) -> int:
        return self.chain.checked

    @property
    def answers_fail(self) -> bool:
        return self.applications is not None and not self.applications.ok

    @property
    def differing_table(self) -> TableCheck | None:
        """The first table checked that differs from its records, if any."""
        return next((table for table in self.tables or () if not table.ok), None)

    @property
    def chain_fails(self) -> bool:
        """Whether the chain fails, or a checkpoint file of another chain fails it."""
        return not self.chain.ok or bool(self.other_chain)

    @property
    def ok(self) -> bool:
        return not self.chain_fails and not self.answers_fail and self.differing_table is None

    @property
    def reason(self) -> str | None:
        if not self.chain.ok:
            return self.chain.reason
        if self.other_chain:
            return OTHER_CHAIN
        if self.applications is not None and not self.applications.ok:
            reason = self.applications.reason or ""
            return _ANSWER_REASONS.get(reason, reason)
        return TABLE_DIFFERS if self.differing_table is not None else self.chain.reason

    @property
    def first_bad_seq(self) -> int | None:
        answers = self.applications
        if self.chain_fails or answers is None or answers.ok:
            return self.chain.first_bad_seq
        return answers.seq if answers.reason == "record_altered" else None

    @property
    def message(self) -> str:
        if not self.chain.ok:
            return self.chain.message
        if self.other_chain:
            return other_chain_message(self.other_chain)
        if self.applications is not None and not self.applications.ok:
            return self.applications.message
        differing = self.differing_table
        return differing.message() if differing is not None else self.chain.message

    def summary(self) -> str:
        """One line for a person: what holds, or the first thing that does not; a warning on
        a line of its own."""
        line = self._verdict()
        return line if self.warning is None else f"{line}\nWARNING: {self.warning}"

    def _verdict(self) -> str:
        if not self.ok:
            differing = self.differing_table
            if self.first_bad_seq is not None:
                where = f"record {self.first_bad_seq}"
            elif self.chain_fails:
                where = "checkpoint"
            elif self.applications is not None and not self.applications.ok:
                where = f"application {self.applications.application_id}"
            elif differing is not None:
                where = f"table {differing.table}"
                if differing.differences:
                    where += f", row {differing.differences[0].row}"
            else:
                where = "checkpoint"
            return f"BROKEN at {where}: {self.reason}: {self.message}" + (
                f" ({self._ignored()})" if self.checkpoints_ignored else "")
        line = f"OK: {self.chain.message}; {self.checkpoints} checkpoint(s) extended"
        if self.checkpoints_ignored:
            line += f"; {self._ignored()}"
        if self.applications is not None:
            line += f"; {answers_summary(self.applications)}"
        for table in self.tables or ():
            line += f"; {table.message()}"
        return line

    def _ignored(self) -> str:
        return f"{self.checkpoints_ignored} checkpoint file(s) of another chain ignored"

    def tables_checked(self) -> dict[str, list[str] | None]:
        """Return what the audit record of a verification says of the tables: those checked
        (null when none were asked for) and those that differ."""
        if self.tables is None:
            return {"tables": None, "tables_differing": None}
        return {"tables": [table.table for table in self.tables],
                "tables_differing": [table.table for table in self.tables if not table.ok]}

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as JSON-ready values (the chain's fields, then the rest)."""
        return {
            **self.chain.to_dict(),
            "ok": self.ok,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "message": self.message,
            "checkpoints": self.checkpoints,
            "checkpoints_ignored": self.checkpoints_ignored,
            "warning": self.warning,
            "applications": None if self.applications is None else self.applications.to_dict(),
            "tables": None if self.tables is None else [t.to_dict() for t in self.tables],
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


def verify_trail(store: AuditStore, *, checkpoints: list[Checkpoint] | ServiceCheckpoints,
                 public_key: Ed25519PublicKey | str | None, start: int | None = None,
                 end: int | None = None, check_applications: bool = False,
                 tables: bool | Sequence[str] = False) -> Verification:
    """Verify the chain against ``checkpoints`` under ``public_key``, and the answers and the
    tables if asked.

    ``tables`` is True for every table :func:`service.usecases.table_checks.table_checkers` knows,
    or
    the names of those to check; they are checked whole, whatever the range.
    ``checkpoints`` are those given, or the service's (:func:`service_checkpoints`), whose
    files of another chain the verdict counts, or fails on. Raises
    :class:`audit.InvalidRange` for a range that holds no record.
    """
    found = (checkpoints if isinstance(checkpoints, ServiceCheckpoints)
             else ServiceCheckpoints(checkpoints))
    chain = store.verify(start, end, found.held, public_key=public_key)
    answers = None
    if check_applications:
        answers = store.check_documents(stored_answers(store.engine), field=ANSWER_HASH,
                                        what="answer")
    checked = None
    if tables:
        names = None if tables is True else list(tables)
        checked = tuple(check_tables(store.engine, names, public_key=public_key))
    return Verification(chain, len(found.held), answers, checked,
                        checkpoints_ignored=found.ignored, other_chain=found.other_chain,
                        warning=found.warning)
