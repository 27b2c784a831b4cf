"""sign-in links: single-use e-mailed links that open a web session (only their SHA-256 is kept)

Revision ID: b7e2c4d6f8a1
Revises: a1c3e5f7b9d0
Create Date: 2026-12-01 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import dpa_service.core.db
from dpa_service.migrations.security import enable_tenant_rls, grant_app

revision: str = "b7e2c4d6f8a1"
down_revision: str | None = "a1c3e5f7b9d0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", dpa_service.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", dpa_service.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", dpa_service.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("sign_in_links", schema=None) as batch_op:
        batch_op.create_index("ix_sign_in_links_email_created", ["email", "created_at"], unique=False)
    enable_tenant_rls("sign_in_links")
    grant_app("sign_in_links", "SELECT, INSERT, UPDATE")


def downgrade() -> None:
    with op.batch_alter_table("sign_in_links", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_links_email_created")
    op.drop_table("sign_in_links")
