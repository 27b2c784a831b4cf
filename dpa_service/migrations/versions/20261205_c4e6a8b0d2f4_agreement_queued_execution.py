"""a countersignature queued for the worker (`Prefer: respond-async`): when legal gave it, and why it failed

`execution_queued_at` is set while the execution waits for the worker and cleared when it runs; `execution_error`
keeps the reason a queued execution could not happen. Existing rows keep null: nothing was queued.

Revision ID: c4e6a8b0d2f4
Revises: f3b7d1e5a9c2
Create Date: 2026-12-05 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import dpa_service.core.db

revision: str = "c4e6a8b0d2f4"
down_revision: str | None = "f3b7d1e5a9c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (not batch mode): SQLite's batch would rebuild the table and drop its triggers.
    op.add_column(
        "agreements", sa.Column("execution_queued_at", dpa_service.core.db.UTCDateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "agreements", sa.Column("execution_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("agreements", "execution_error")
    op.drop_column("agreements", "execution_queued_at")
