"""subprocessor authorizations: the subprocessors domain's own record of what each executed DPA authorized

Revision ID: a1c3e5f7b9d0
Revises: d52ce87afd34
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import dpa_service.core.db
from dpa_service.migrations.security import enable_tenant_rls, grant_app

revision: str = "a1c3e5f7b9d0"
down_revision: str | None = "d52ce87afd34"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subprocessor_authorizations",
        sa.Column("agreement_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("list_version", sa.Integer(), nullable=False),
        sa.Column("contact_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("authorized_at", dpa_service.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", dpa_service.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["agreement_id"], ["agreements.id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("agreement_id"),
    )
    with op.batch_alter_table("subprocessor_authorizations", schema=None) as batch_op:
        batch_op.create_index("ix_subprocessor_authorizations_tenant_ended", ["tenant_id", "ended_at"], unique=False)

    # What existing executed and superseded DPAs pinned, read once from the agreements (as the old code did).
    if op.get_bind().dialect.name == "postgresql":
        contact = "variables -> 'controller' ->> 'contact_email'"
    else:
        contact = "json_extract(variables, '$.controller.contact_email')"
    if op.get_bind().dialect.name == "postgresql":  # agreements has FORCE ROW LEVEL SECURITY: read every tenant's
        op.execute("SELECT set_config('app.cross_tenant', 'on', true)")
    op.execute(
        "INSERT INTO subprocessor_authorizations "
        "(agreement_id, tenant_id, list_version, contact_email, authorized_at, ended_at) "
        f"SELECT id, tenant_id, COALESCE(subprocessor_list_version, 1), {contact}, executed_at, "
        "CASE WHEN status = 'superseded' THEN superseded_at END "
        "FROM agreements WHERE status IN ('executed', 'superseded') AND executed_at IS NOT NULL"
    )
    if op.get_bind().dialect.name == "postgresql":  # the rest of this run's migrations see only what RLS allows
        op.execute("SELECT set_config('app.cross_tenant', 'off', true)")

    enable_tenant_rls("subprocessor_authorizations")
    grant_app("subprocessor_authorizations", "SELECT, INSERT, UPDATE")


def downgrade() -> None:
    with op.batch_alter_table("subprocessor_authorizations", schema=None) as batch_op:
        batch_op.drop_index("ix_subprocessor_authorizations_tenant_ended")
    op.drop_table("subprocessor_authorizations")
