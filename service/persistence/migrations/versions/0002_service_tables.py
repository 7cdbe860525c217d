"""The service's tables: API keys, consents, applications, idempotency keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

The same schema as the first hand-written service migration.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(27), nullable=False),
        sa.Column("revoked_at", sa.String(27)),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_table(
        "consents",
        sa.Column("consent_id", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("granted_at", sa.String(27), nullable=False),
        sa.Column("expires_at", sa.String(27), nullable=False),
        sa.Column("text_version", sa.String(40), nullable=False),
        sa.Column("created_at", sa.String(27), nullable=False),
        sa.Column("withdrawn_at", sa.String(27)),
        sa.PrimaryKeyConstraint("consent_id"),
    )
    op.create_index("ix_consents_channel", "consents", ["channel", "created_at"])
    op.create_table(
        "applications",
        sa.Column("application_id", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("consent_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16)),
        sa.Column("grade", sa.String(4)),
        sa.Column("model_version", sa.String(64)),
        sa.Column("decided_by", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(27), nullable=False),
        sa.Column("updated_at", sa.String(27), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("explanation", sa.Text()),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("application_id"),
    )
    op.create_index("ix_applications_status", "applications", ["status", "created_at"])
    op.create_index("ix_applications_channel", "applications", ["channel", "created_at"])
    op.create_table(
        "idempotency_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("application_id", sa.String(40)),
        sa.Column("status_code", sa.Integer()),
        sa.Column("response", sa.Text()),
        sa.Column("created_at", sa.String(27), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "idempotency_key"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_index("ix_applications_channel", table_name="applications")
    op.drop_index("ix_applications_status", table_name="applications")
    op.drop_table("applications")
    op.drop_index("ix_consents_channel", table_name="consents")
    op.drop_table("consents")
    op.drop_table("api_keys")
