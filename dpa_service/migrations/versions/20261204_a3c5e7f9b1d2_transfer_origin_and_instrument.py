"""transfers: where the data comes from (origin), the instrument's date, the importer's certification record

A transfer is judged only by its origin regime's tools (EU/EEA, UK, Swiss law), so the register records the
origin (default "eea", as every transfer so far was an EU/EEA export). A mechanism closed to new contracts is
tested on the date the instrument was concluded, not the transfer's start: existing rows take their start date.
A framework that certifies importers (the DPF) needs a record of who checked the list, when, and the list entry.

Revision ID: a3c5e7f9b1d2
Revises: f3b8d1c5a9e7
Create Date: 2026-12-04 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a3c5e7f9b1d2"
down_revision: str | None = "f3b8d1c5a9e7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no table rebuild); the NOT NULL origin needs a default on SQLite and keeps it.
    op.add_column("transfers", sa.Column("origin", sa.String(length=3), nullable=False, server_default="eea"))
    op.add_column("transfers", sa.Column("instrument_date", sa.Date(), nullable=True))
    op.add_column("transfers", sa.Column("importer_certification", sa.JSON(), nullable=True))
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:  # FORCE ROW LEVEL SECURITY holds for the owner too: see every tenant's rows, this transaction only
        op.execute("SELECT set_config('app.cross_tenant', 'on', true)")
    op.execute("UPDATE transfers SET instrument_date = start_date WHERE instrument_date IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_column("importer_certification")
        batch_op.drop_column("instrument_date")
        batch_op.drop_column("origin")
