"""how each signature was made (typed through a link, a staff action, or applied automatically under a named
standing authority) and when a signing link was first opened

An automatic countersignature records the standing authority it was applied under, and no typed name, consent or
authority confirmation, which nobody gave. Existing rows keep null: how they were made was not recorded.

Revision ID: b3c5d7e9f1a2
Revises: a3c5e7f9b1d2
Create Date: 2026-12-04 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import dpa_service.core.db

revision: str = "b3c5d7e9f1a2"
down_revision: str | None = "a3c5e7f9b1d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (not batch mode): SQLite's batch would rebuild the tables and drop their append-only triggers.
    op.add_column("signatures", sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
    op.add_column("signatures", sa.Column("authority", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
    op.add_column(
        "signature_requests", sa.Column("opened_at", dpa_service.core.db.UTCDateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("signature_requests", "opened_at")
    op.drop_column("signatures", "authority")
    op.drop_column("signatures", "method")
