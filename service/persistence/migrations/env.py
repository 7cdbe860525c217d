"""Alembic's environment: the audit trail's tables and the service's, in one history.

Run only through :mod:`service.persistence.migrations` (``flashloan db upgrade``), which hands over
a
connection already inside its transaction and holding the migration lock; the revisions
join that transaction, which commits when the upgrade is done.
"""

from __future__ import annotations

from alembic import context

from audit.schema import metadata as audit_metadata
from service.persistence.tables import metadata as service_metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError('migrations run on a live connection: use "flashloan db upgrade"')

context.configure(
    connection=connection,
    target_metadata=[audit_metadata, service_metadata],
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
