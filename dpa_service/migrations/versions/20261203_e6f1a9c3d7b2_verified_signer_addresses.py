"""verified signer addresses: users.email_verified_at / email_verification, email_confirmations, one account per
address, and how each signer's address was verified in the signing evidence

Embedded signing is for a user whose address was verified (a confirmation link, or sign-in by e-mail link), and the
evidence records how and when. Existing users start unverified, except those who already signed in with an e-mailed
sign-in link: the used links in `sign_in_links` show they read mail sent to the address, so they are backfilled as
verified by `sign_in_link` at the first such sign-in (when a link is used, every open link of the user is marked
used at that moment, so the earliest `used_at` is that sign-in). Existing signatures keep null: how their signer's
address was verified was not recorded.

An address now belongs to one account across every tenant and the staff (`uq_users_email`). A database in which
two accounts share an address cannot take the index: the upgrade stops and names the addresses, for an operator
to decide which account keeps each (nothing here can tell which one is legitimate).

Revision ID: e6f1a9c3d7b2
Revises: 57a566518524
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import dpa_service.core.db
from dpa_service.migrations.security import enable_tenant_rls, grant_app

revision: str = "e6f1a9c3d7b2"
down_revision: str | None = "57a566518524"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = dpa_service.core.db.UTCDateTime(timezone=True)
_METHOD = sqlmodel.sql.sqltypes.AutoString(length=20)


def _refuse_shared_addresses() -> None:
    shared = op.get_bind().execute(
        sa.text("SELECT email, count(*) FROM users GROUP BY email HAVING count(*) > 1 ORDER BY email LIMIT 20")
    ).all()
    if shared:
        listed = ", ".join(f"{email} ({count} accounts)" for email, count in shared)
        raise RuntimeError(
            f"These e-mail addresses belong to more than one account: {listed}. An address may now belong to one "
            "account only; decide which account keeps each, remove or re-address the others, then upgrade again."
        )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # FORCE ROW LEVEL SECURITY holds for the owner too: see every tenant's rows, this transaction only.
        op.execute("SELECT set_config('app.cross_tenant', 'on', true)")
    _refuse_shared_addresses()
    # Plain ADD COLUMN (not batch mode): SQLite's batch would rebuild the tables and drop their append-only triggers.
    op.add_column("users", sa.Column("email_verified_at", _UTC, nullable=True))
    op.add_column("users", sa.Column("email_verification", _METHOD, nullable=True))
    op.create_index("uq_users_email", "users", ["email"], unique=True)
    op.add_column("signature_requests", sa.Column("signer_email_verified_at", _UTC, nullable=True))
    op.add_column("signature_requests", sa.Column("signer_email_verification", _METHOD, nullable=True))
    op.add_column("signatures", sa.Column("email_verified_at", _UTC, nullable=True))
    op.add_column("signatures", sa.Column("email_verification", _METHOD, nullable=True))

    op.create_table(
        "email_confirmations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("expires_at", _UTC, nullable=False),
        sa.Column("used_at", _UTC, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_email_confirmations_user_created", "email_confirmations", ["user_id", "created_at"])
    enable_tenant_rls("email_confirmations")
    grant_app("email_confirmations", "SELECT, INSERT, UPDATE")

    op.execute(
        """
        UPDATE users SET
            email_verified_at = (
                SELECT min(l.used_at) FROM sign_in_links l
                WHERE l.user_id = users.id AND l.email = users.email AND l.used_at IS NOT NULL
            ),
            email_verification = 'sign_in_link'
        WHERE EXISTS (
            SELECT 1 FROM sign_in_links l
            WHERE l.user_id = users.id AND l.email = users.email AND l.used_at IS NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.drop_index("ix_email_confirmations_user_created", table_name="email_confirmations")
    op.drop_table("email_confirmations")
    # ALTER TABLE ... DROP COLUMN on both databases (SQLite 3.35+), so SQLite keeps the append-only triggers.
    for table, column in (
        ("signatures", "email_verification"),
        ("signatures", "email_verified_at"),
        ("signature_requests", "signer_email_verification"),
        ("signature_requests", "signer_email_verified_at"),
        ("users", "email_verification"),
        ("users", "email_verified_at"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.drop_index("uq_users_email", table_name="users")
