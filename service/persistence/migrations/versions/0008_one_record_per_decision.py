"""One audit record per decision: an application points to it instead of copying it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

A decision now leaves one ``decision.made`` record that carries the application, each source's
outcome and the decision with its explanation. ``applications.decision_seq`` names the
application's latest decision record; the copies the row kept (``explanation`` and
``details``) are dropped. Applications decided before this revision point to their own latest
``decision.made`` record, which already held their explanation's values; their
``application.received`` and ``source.fetched`` records stay in the chain as they were.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_LATEST_DECISION = sa.text(
    "UPDATE applications SET decision_seq = ("
    " SELECT MAX(r.seq) FROM audit_records r"
    " WHERE r.kind = 'decision.made' AND r.application_id = applications.application_id)")


def upgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("decision_seq", sa.BigInteger(), nullable=True))
    op.get_bind().execute(_LATEST_DECISION)
    with op.batch_alter_table("applications") as batch:
        batch.drop_column("explanation")
        batch.drop_column("details")


def downgrade() -> None:
    """Bring back the copies, rebuilt from each application's decision record."""
    from scoring.online.explanation import explanation_of, is_scored
    from scoring.online.spec import load_spec

    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("explanation", sa.Text(), nullable=True))
        batch.add_column(sa.Column("details", sa.Text(), nullable=True))
    conn = op.get_bind()
    spec = load_spec()
    rows = conn.execute(sa.text(
        "SELECT a.application_id, a.consent_id, r.payload FROM applications a"
        " LEFT JOIN audit_records r ON r.seq = a.decision_seq")).all()
    for application_id, consent_id, text in rows:
        payload = json.loads(text) if text is not None else None
        explanation = None
        details = {"sources": {}, "facts": {}, "missing_reasons": [], "consent_id": consent_id}
        if payload is not None:
            details.update({k: payload.get(k, details[k])
                            for k in ("sources", "facts", "missing_reasons")})
            if is_scored(payload):
                explanation = explanation_of(payload, spec)
        conn.execute(sa.text("UPDATE applications SET explanation = :e, details = :d"
                             " WHERE application_id = :a"),
                     {"e": json.dumps(explanation, ensure_ascii=False) if explanation else None,
                      "d": json.dumps(details, ensure_ascii=False), "a": application_id})
    with op.batch_alter_table("applications") as batch:
        batch.alter_column("details", existing_type=sa.Text(), nullable=False)
        batch.drop_column("decision_seq")
