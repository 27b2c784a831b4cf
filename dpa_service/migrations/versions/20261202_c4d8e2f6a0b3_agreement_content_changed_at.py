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

revision: str = "c4d8e2f6a0b3"
down_revision: str | None = "b7e2c4d6f8a1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agreements", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("content_changed_at", dpa_service.core.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute("UPDATE agreements SET content_changed_at = updated_at")
    with op.batch_alter_table("agreements", schema=None) as batch_op:
        batch_op.alter_column(
            "content_changed_at", existing_type=dpa_service.core.db.UTCDateTime(timezone=True), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("agreements", schema=None) as batch_op:
        batch_op.drop_column("content_changed_at")
