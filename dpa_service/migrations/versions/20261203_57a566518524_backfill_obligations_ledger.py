"""backfill the obligations ledger of the DPAs executed before it existed

The ledger is made when a DPA is executed (`obligations.ledger.instantiate` on `AgreementExecuted`), so a DPA
executed before the ledger shipped has no rows and its tenant reads an empty ledger. This makes them as
`instantiate` would have: one row per entry of the agreement's template version's `obligations`, in force from
its execution, ids in the entries' order; a superseded DPA's rows end when it was superseded, naming the DPA that
superseded it. An agreement that already has rows is left alone (and the unique (agreement_id, code) index makes a
second run impossible to double), so the migration is safe to run on a database the ledger already fills.

No audit event is written: the chain records what people and the service did at the time, and the rows only
restate what the executed agreements (already in the chain) imposed.

Revision ID: 57a566518524
Revises: e7a1c9d3f5b2
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from dpa_service.core.db import UTCDateTime
from dpa_service.core.ids import new_id

revision: str = "57a566518524"
down_revision: str | None = "e7a1c9d3f5b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 500  # agreements read (and their rows written) per round

# The columns this migration reads and writes, as they are at this revision (not the models, which move on).
agreements = sa.table(
    "agreements",
    sa.column("id", sa.Uuid()),
    sa.column("tenant_id", sa.Uuid()),
    sa.column("template_id", sa.Uuid()),
    sa.column("status", sa.String()),
    sa.column("executed_at", UTCDateTime()),
    sa.column("superseded_by", sa.Uuid()),
    sa.column("superseded_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)
template_versions = sa.table("template_versions", sa.column("id", sa.Uuid()), sa.column("obligations", sa.JSON()))
obligations = sa.table(
    "obligations",
    sa.column("id", sa.Uuid()),
    sa.column("tenant_id", sa.Uuid()),
    sa.column("agreement_id", sa.Uuid()),
    sa.column("template_id", sa.Uuid()),
    sa.column("code", sa.String()),
    sa.column("title", sa.String()),
    sa.column("clause", sa.String()),
    sa.column("summary", sa.Text()),
    sa.column("deadline", sa.JSON()),
    sa.column("in_force_from", UTCDateTime()),
    sa.column("ended_at", UTCDateTime()),
    sa.column("superseded_by", sa.Uuid()),
)


def _rows(agreement: Any, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The agreement's ledger rows, as `ledger.instantiate` makes them (ids sorted: the ledger reads by id)."""
    entries = [e for e in entries if isinstance(e, dict) and e.get("code")]
    ids = sorted(new_id() for _ in entries)
    superseded = agreement.status == "superseded"
    ended_at = (agreement.superseded_at or agreement.updated_at) if superseded else None
    return [
        {
            "id": row_id,
            "tenant_id": agreement.tenant_id,
            "agreement_id": agreement.id,
            "template_id": agreement.template_id,
            "code": str(entry["code"]),
            "title": str(entry.get("title") or entry["code"]),
            "clause": str(entry.get("clause") or ""),
            "summary": str(entry.get("summary") or ""),
            "deadline": dict(entry["deadline"]) if isinstance(entry.get("deadline"), dict) else {},
            "in_force_from": agreement.executed_at,
            "ended_at": ended_at,
            "superseded_by": agreement.superseded_by if superseded else None,
        }
        for entry, row_id in zip(entries, ids, strict=True)
    ]


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:  # agreements and obligations have FORCE ROW LEVEL SECURITY: read and write every tenant's rows
        op.execute("SELECT set_config('app.cross_tenant', 'on', true)")
    has_rows = sa.exists().where(obligations.c.agreement_id == agreements.c.id)
    pending = (
        sa.select(agreements)
        .where(
            agreements.c.status.in_(("executed", "superseded")),
            agreements.c.executed_at.is_not(None),
            ~has_rows,
        )
        .order_by(agreements.c.id)
        .limit(_BATCH)
    )
    versions: dict[Any, list[dict[str, Any]]] = {}
    after = None
    while True:
        batch = bind.execute(pending.where(agreements.c.id > after) if after is not None else pending).all()
        if not batch:
            break
        wanted = {a.template_id for a in batch} - versions.keys()
        if wanted:
            query = sa.select(template_versions).where(template_versions.c.id.in_(wanted))
            versions.update({v.id: list(v.obligations or []) for v in bind.execute(query)})
        rows = [row for a in batch for row in _rows(a, versions.get(a.template_id, []))]
        if rows:
            bind.execute(obligations.insert(), rows)
        after = batch[-1].id
    if postgres:  # the rest of this run's migrations see only what RLS allows
        op.execute("SELECT set_config('app.cross_tenant', 'off', true)")


def downgrade() -> None:
    # The rows cannot be told from those the ledger made itself, and attestations point at them: they stay.
    pass
