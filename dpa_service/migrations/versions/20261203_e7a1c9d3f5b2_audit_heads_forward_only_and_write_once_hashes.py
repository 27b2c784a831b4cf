"""audit heads only move forward; the hashes that name what was signed are write-once

Until now anyone with the owner's login could delete a chain's last event and rewind `audit_heads` to match, and
`dpa audit verify` saw a consistent chain. Heads now refuse DELETE (and TRUNCATE) and any UPDATE that lowers `seq`,
rewrites the hash at the same `seq`, or moves the head to another chain or tenant, for everyone, the owner
included; the application role loses DELETE on them too. (An owner who drops or disables the triggers is caught
by the signed checkpoints kept outside the database: `dpa audit verify`.)

The columns that say what was signed and when it was executed are write-once: `agreements.document_sha256`
(with `sealed_at`, `executed_at`, `effective_date`), set from NULL at execution and never changed or cleared after,
and `signature_requests.document_sha256`, set when the link is made. (`signatures` and `agreement_documents` are
append-only already.)

Revision ID: e7a1c9d3f5b2
Revises: d5e9f3a7b1c4
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

from alembic import op

from dpa_service.migrations.security import app_role, drop_trigger, forward_only, write_once_columns

revision: str = "e7a1c9d3f5b2"
down_revision: str | None = "d5e9f3a7b1c4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WRITE_ONCE = {
    "agreements": ["document_sha256", "sealed_at", "executed_at", "effective_date"],
    "signature_requests": ["document_sha256"],
}


def upgrade() -> None:
    # Triggers only: SQLite's batch mode would rebuild the tables and drop the triggers they already have.
    forward_only("audit_heads", counter="seq", fixed=["chain", "tenant_id"], advances=["hash"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f'REVOKE DELETE, TRUNCATE ON TABLE audit_heads FROM "{app_role()}"')
    for table, columns in WRITE_ONCE.items():
        write_once_columns(table, columns)


def downgrade() -> None:
    for table in WRITE_ONCE:
        drop_trigger(table, f"{table}_write_once")
    drop_trigger("audit_heads", "audit_heads_forward_only")
    drop_trigger("audit_heads", "audit_heads_no_delete")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f'GRANT DELETE ON TABLE audit_heads TO "{app_role()}"')
        op.execute("DROP FUNCTION IF EXISTS dpa_reject_rewind()")
        op.execute("DROP FUNCTION IF EXISTS dpa_reject_rewrite()")
