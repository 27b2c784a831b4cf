"""re-papering campaigns: legal's campaigns and the link from each to every tenant's new draft

`campaigns` is the processor's own record across tenants (staff read it; not tenant-owned). `campaign_agreements`
is tenant-owned (row-level security forced): one row per tenant and campaign (unique), so a campaign run twice
never makes a second draft; the application may insert and stamp rows, never delete them.

Revision ID: f3b8d1c5a9e7
Revises: b3f7c1d9e5a2
Create Date: 2026-12-04 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import dpa_service.core.db
from dpa_service.migrations.security import enable_tenant_rls, freeze_columns, grant_app

revision: str = "f3b8d1c5a9e7"
down_revision: str | None = "b3f7c1d9e5a2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=True),
        sa.Column("template_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("template_version", sa.Integer(), nullable=True),
        sa.Column("replace_mechanism", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("replacement_mechanism", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", dpa_service.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_run_at", dpa_service.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["template_id"], ["template_versions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "campaign_agreements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("agreement_id", sa.Uuid(), nullable=False),
        sa.Column("previous_agreement_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", dpa_service.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("notified_at", dpa_service.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"]),
        sa.ForeignKeyConstraint(["agreement_id"], ["agreements.id"]),
        sa.ForeignKeyConstraint(["previous_agreement_id"], ["agreements.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agreement_id"),
    )
    with op.batch_alter_table("campaign_agreements", schema=None) as batch_op:
        batch_op.create_index("uq_campaign_agreements_campaign_tenant", ["campaign_id", "tenant_id"], unique=True)
        batch_op.create_index("ix_campaign_agreements_campaign_agreement", ["campaign_id", "agreement_id"])
        batch_op.create_index("ix_campaign_agreements_tenant_id_id", ["tenant_id", "id"])
    grant_app("campaigns", "SELECT, INSERT, UPDATE")
    enable_tenant_rls("campaign_agreements")
    grant_app("campaign_agreements", "SELECT, INSERT, UPDATE")
    # Which draft a campaign made for which tenant, replacing which DPA: fixed once written.
    freeze_columns("campaign_agreements", ["tenant_id", "campaign_id", "agreement_id", "previous_agreement_id"])


def downgrade() -> None:
    with op.batch_alter_table("campaign_agreements", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_agreements_tenant_id_id")
        batch_op.drop_index("ix_campaign_agreements_campaign_agreement")
        batch_op.drop_index("uq_campaign_agreements_campaign_tenant")
    op.drop_table("campaign_agreements")
    op.drop_table("campaigns")
