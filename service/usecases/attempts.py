"""A retry's attempt at deciding a deferred application, as the flow records it.

The retry desk (:mod:`service.usecases.retries`) reads the application and builds its
:class:`Attempt`; the decision flow decides under it, and the decision record links to the
record it follows. Both import it from here, so that neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, update

from service.domain.encoding import now_text
from service.persistence.tables import applications

__all__ = ["Attempt", "Superseded"]

# The row's columns a decision fixes; the others (who applied, when, under which consent)
# are the application's and stay.
_DECIDED_COLUMNS = ("status", "outcome", "grade", "model_version", "decided_by", "updated_at",
                   "answer", "decision_seq", "sealed_applicant")


class Superseded(Exception):
    """The application changed while this retry was deciding: another retry decided it."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """A retry of a deferred application: which attempt it is and what it follows."""

    application_id: str
    number: int                  # 2 for the first retry
    previous_seq: int            # the decision record this attempt follows
    previous_hash: str
    read_updated_at: str         # the row's updated_at when the retry read it
    created_at: str              # the application's
    earlier_steps: tuple[dict, ...]
    earlier_attempts: tuple[dict, ...]

    @property
    def link(self) -> dict[str, Any]:
        """The fields of the decision record that tie it to the one it follows."""
        return {"attempt": self.number, "previous_seq": self.previous_seq,
                "previous_record_hash": self.previous_hash}

    def continue_answer(self, answer: dict) -> None:
        """Make the new answer the application's: its first time and every attempt."""
        answer["created_at"] = self.created_at
        answer["attempts"] = [*self.earlier_attempts, {
            "attempt": self.number, "status": answer["status"],
            "missing_sources": answer["missing_sources"], "decided_at": now_text()}]

    def update_row(self, conn: Connection, row: dict[str, Any]) -> None:
        """Store the new decision in the application's row, if no one decided it meanwhile."""
        updated = conn.execute(
            update(applications).where(
                applications.c.application_id == self.application_id,
                applications.c.status == "deferred",
                applications.c.updated_at == self.read_updated_at)
            .values({name: row[name] for name in _DECIDED_COLUMNS})).rowcount
        if updated != 1:
            raise Superseded(self.application_id)
