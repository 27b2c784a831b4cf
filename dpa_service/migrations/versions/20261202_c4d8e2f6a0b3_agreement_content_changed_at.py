"""agreements.content_changed_at: when the text last changed (the draft PDF's date); updated_at is any change

Until now `updated_at` moved only on an edit, because the draft PDF prints its date and the PDF a signer saw must
rebuild byte for byte at the countersignature. The date now has a column of its own, so `updated_at` can follow
every change of status. Existing rows get the value their PDF was built from.

Revision ID: c4d8e2f6a0b3
Revises: b7e2c4d6f8a1
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dpa_service.core.db
from dpa_service.migrations.security import freeze_columns

revision: str = "c4d8e2f6a0b3"
down_revision: str | None = "b7e2c4d6f8a1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN: SQLite's batch mode would rebuild the table and drop its content-frozen trigger. SQLite
    # adds a NOT NULL column only with a default, so one is given (and kept there; the application always sets
    # the value), then every existing row takes the date its PDF was built from.
    op.add_column(
        "agreements",
        sa.Column(
            "content_changed_at",
            dpa_service.core.db.UTCDateTime(timezone=True),
            nullable=False,
            server_default=sa.text("'1970-01-01 00:00:00'"),
        ),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:  # FORCE ROW LEVEL SECURITY holds for the owner too: see every tenant's rows, this transaction only
        op.execute("SELECT set_config('app.cross_tenant', 'on', true)")
    op.execute("UPDATE agreements SET content_changed_at = updated_at")
    if postgres:
        op.alter_column("agreements", "content_changed_at", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("agreements", schema=None) as batch_op:
        batch_op.drop_column("content_changed_at")
    if op.get_bind().dialect.name == "sqlite":  # the rebuilt table lost its trigger: make it again
        freeze_columns("agreements", ["tenant_id", "template_id", "template_key", "template_version", "template_sha256"])
