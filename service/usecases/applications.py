"""Reading recorded applications: status, and what their decision record says.

The application's row keeps the answer (the bytes the client got) and the seq of its latest
decision record; the explanation, the sources and the facts are read from that record, so
nothing a decision explains is stored twice. A purged record takes its explanation with it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from audit import AuditStore
from scoring.online.explanation import explanation_of, is_scored
from scoring.online.spec import FeatureSpec
from service.domain.encoding import loads
from service.domain.errors import NotFound, NotScored, RecordPurged
from service.domain.principal import Principal
from service.persistence.tables import applications

# A record argument not given: the book reads it. (None is a record that was purged.)
_UNREAD: Any = object()


class ApplicationBook:
    """The applications table, read as each role may see it."""

    def __init__(self, store: AuditStore, spec: FeatureSpec) -> None:
        self.store = store
        self.engine = store.engine
        self.spec = spec

    def visible(self, principal: Principal, application_id: str):
        """Return an application the caller may see; another channel's is not found."""
        with self.engine.connect() as conn:
            row = conn.execute(select(applications).where(
                applications.c.application_id == application_id)).first()
        if row is None or (principal.role == "channel" and row.channel != principal.name):
            raise NotFound("no such application")
        return row

    @staticmethod
    def status(row) -> dict[str, Any]:
        return loads(row.answer)

    def record(self, row) -> dict[str, Any] | None:
        """Return the payload of the application's latest decision record; None once purged."""
        if row.decision_seq is None:
            return None
        found = self.store.get(int(row.decision_seq))
        return None if found is None else found.payload

    def explanation(self, row, record: Any = _UNREAD) -> dict[str, Any]:
        """Return the explanation of the application's decision, read from its record.

        ``record`` is :meth:`record` of ``row`` when the caller has read it already (None:
        purged).
        """
        if record is _UNREAD:
            record = self.record(row)
        if record is None:
            raise RecordPurged("the decision record of this application was purged under the "
                               "retention policy, and its explanation with it")
        if not is_scored(record):
            raise NotScored("this application was deferred before it was scored, so it has no "
                            "explanation")
        return explanation_of({**record, "application_id": row.application_id}, self.spec)

    def explanation_or_none(self, row, record: Any = _UNREAD) -> dict[str, Any] | None:
        """Return the explanation, or None when there is none (deferred unscored, purged)."""
        try:
            return self.explanation(row, record)
        except (RecordPurged, NotScored):
            return None

    @staticmethod
    def details(row, record: dict[str, Any] | None) -> dict[str, Any]:
        """Return the sources, facts and missing reasons the decision record holds."""
        record = record or {}
        return {"sources": record.get("sources", {}), "facts": record.get("facts", {}),
                "missing_reasons": record.get("missing_reasons", []),
                "consent_id": row.consent_id}
