"""DocuSign as a second signature provider: envelopes, the Connect events applied to them, outbox jobs (the
envelope's creation, retried with backoff), and which provider took each signature

Revision ID: f3b7d1e5a9c2
Revises: b3c5d7e9f1a2
Create Date: 2026-12-04 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import dpa_service.core.db
from dpa_service.migrations.security import enable_tenant_rls, freeze_columns, grant_app, write_once_columns

revision: str = "f3b7d1e5a9c2"
down_revision: str | None = "b3c5d7e9f1a2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = dpa_service.core.db.UTCDateTime(timezone=True)


def _str(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    # Plain ADD COLUMN (not batch mode): SQLite's batch would rebuild the table and drop its append-only triggers.
    op.add_column("signatures", sa.Column("provider", _str(20), nullable=False, server_default="builtin"))
    op.create_table(
        "outbox_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("topic", _str(100), nullable=False),
        sa.Column("dedupe_key", _str(200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", _str(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _UTC, nullable=False),
        sa.Column("last_error", _str(500), nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("finished_at", _UTC, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index("ix_outbox_jobs_due", "outbox_jobs", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_jobs_tenant_id", "outbox_jobs", ["tenant_id"])
    enable_tenant_rls("outbox_jobs")
    grant_app("outbox_jobs", "SELECT, INSERT, UPDATE")

    op.create_table(
        "docusign_envelopes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("agreement_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("envelope_id", _str(64), nullable=True),
        sa.Column("status", _str(20), nullable=False),
        sa.Column("status_changed_at", _UTC, nullable=True),
        sa.Column("reason", _str(1000), nullable=True),
        sa.Column("embedded", sa.Boolean(), nullable=False),
        sa.Column("client_user_id", _str(100), nullable=True),
        sa.Column("countersign_in_envelope", sa.Boolean(), nullable=False),
        sa.Column("document_pdf", sa.LargeBinary(), nullable=False),
        sa.Column("document_sha256", _str(64), nullable=False),
        sa.Column("combined_pdf", sa.LargeBinary(), nullable=True),
        sa.Column("combined_sha256", _str(64), nullable=True),
        sa.Column("certificate_pdf", sa.LargeBinary(), nullable=True),
        sa.Column("certificate_sha256", _str(64), nullable=True),
        sa.Column("audit_events", sa.JSON(), nullable=False),
        sa.Column("last_message_at", _UTC, nullable=True),
        sa.Column("last_polled_at", _UTC, nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("sent_at", _UTC, nullable=True),
        sa.Column("completed_at", _UTC, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(["agreement_id"], ["agreements.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["signature_requests.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
        sa.UniqueConstraint("envelope_id"),
    )
    op.create_index("ix_docusign_envelopes_tenant_agreement", "docusign_envelopes", ["tenant_id", "agreement_id"])
    enable_tenant_rls("docusign_envelopes")
    grant_app("docusign_envelopes", "SELECT, INSERT, UPDATE")
    # Evidence: what was sent is fixed when the row is made; what DocuSign returned is kept as first stored.
    freeze_columns("docusign_envelopes", ["tenant_id", "agreement_id", "request_id", "document_pdf", "document_sha256"])
    write_once_columns(
        "docusign_envelopes",
        ["envelope_id", "combined_pdf", "combined_sha256", "certificate_pdf", "certificate_sha256"],
    )

    op.create_table(
        "docusign_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("envelope_row_id", sa.Uuid(), nullable=False),
        sa.Column("key", _str(64), nullable=False),
        sa.Column("event", _str(100), nullable=False),
        sa.Column("source", _str(20), nullable=False),
        sa.Column("recipient_email", _str(320), nullable=True),
        sa.Column("recipient_status", _str(40), nullable=True),
        sa.Column("occurred_at", _UTC, nullable=True),
        sa.Column("received_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(["envelope_row_id"], ["docusign_envelopes.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_docusign_events_tenant_envelope", "docusign_events", ["tenant_id", "envelope_row_id"])
    enable_tenant_rls("docusign_events")
    grant_app("docusign_events", "SELECT, INSERT")


def downgrade() -> None:
    op.drop_table("docusign_events")
    op.drop_table("docusign_envelopes")
    op.drop_table("outbox_jobs")
    op.execute("ALTER TABLE signatures DROP COLUMN provider")
