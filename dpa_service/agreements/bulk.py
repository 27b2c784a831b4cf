"""Agreements for many tenants at once: finding the executed DPAs a fan-out concerns, creating a draft for each in
bulk statements, and reading the statuses of a set of agreements in one query.

A re-papering campaign (legal moves thousands of tenants to a new template version or away from an invalidated
transfer mechanism) uses these, through `agreements.services`. The agreements domain knows nothing of campaigns:
it is given plain data (tenants, template versions, variables, the audit data to record) and a Core `SELECT` of
agreement ids where a set of agreements is meant (the caller's own link table, say), and hands back ids, counts
and statuses. Thousands of drafts cost a handful of statements, not a round trip each: one selection query, one
`INSERT` per thousand drafts, and the audit events through `audit.record_many`. Nothing is rendered: a draft's
PDF is built when someone looks at it, as for any draft.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, TextClause, and_, exists, func, insert, literal, or_, select, text
from sqlalchemy.orm import aliased
from sqlmodel import col

from dpa_service.agreements.lifecycle import BEFORE_EXECUTION
from dpa_service.agreements.models import Agreement, AgreementStatus
from dpa_service.audit import services as audit
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.events import checks
from dpa_service.core.identity import Actor
from dpa_service.core.ids import new_id
from dpa_service.template_versions import services as templates

WRITE_BATCH = 1000  # rows per INSERT
AGREEMENTS = Agreement.__table__  # type: ignore[attr-defined]  # Core inserts: rows, not tracked ORM instances
# Not yet executed, voided or superseded: a draft on its way (signed included: it waits for the countersignature).
OPEN_STATUSES = tuple(status.value for status in (*BEFORE_EXECUTION, AgreementStatus.SIGNED))


@dataclass(frozen=True)
class ExecutedDpa:
    """A tenant's current executed DPA as a fan-out needs it; `blocked`: the tenant already has an open agreement
    among the `blocked_by` set the caller passed."""

    tenant_id: uuid.UUID
    agreement_id: uuid.UUID
    template_id: uuid.UUID
    template_key: str
    template_version: int
    variables: dict[str, Any]
    custom_clauses: list[dict[str, str]]
    executed_at: datetime | None
    blocked: bool


def _relies_on(dialect: str, mechanism: str) -> TextClause:
    """`variables.transfers.mechanisms` lists `mechanism` (JSON stored as json on PostgreSQL, text on SQLite)."""
    if dialect == "postgresql":
        sql = (
            "((agreements.variables)::jsonb -> 'transfers' -> 'mechanisms') "
            "@> jsonb_build_array(CAST(:mechanism AS text))"
        )
    else:
        sql = (
            "EXISTS (SELECT 1 FROM json_each(agreements.variables, '$.transfers.mechanisms') AS m "
            "WHERE m.value = :mechanism)"
        )
    return text(sql).bindparams(mechanism=mechanism)


async def executed_matching(
    db: Database,
    scope: Scope,
    *,
    older_than: tuple[str, int] | None = None,
    relying_on: str | None = None,
    skip_tenants: Select[Any] | None = None,
    blocked_by: Select[Any] | None = None,
) -> list[ExecutedDpa]:
    """Every tenant's current executed DPA that is on an older version of a template key (`older_than`: key and
    version) or relies on the transfer mechanism `relying_on` (either matches), in one query, by tenant.

    `skip_tenants` (a SELECT of tenant ids) leaves those tenants out; `blocked_by` (a SELECT of agreement ids)
    marks each tenant that has an open (not yet executed, voided or superseded) agreement among them."""
    if older_than is None and relying_on is None:
        raise ValueError("say which executed DPAs: older_than and/or relying_on")
    async with db.transaction(scope, write=False) as session:
        dialect = session.get_bind().dialect.name
        wanted: list[ColumnElement[bool] | TextClause] = []
        if older_than is not None:
            key, version = older_than
            wanted.append(and_(col(Agreement.template_key) == key, col(Agreement.template_version) < version))
        if relying_on is not None:
            wanted.append(_relies_on(dialect, relying_on))
        blocked: ColumnElement[bool] = literal(False)
        if blocked_by is not None:
            other = aliased(Agreement)
            blocked = exists().where(
                col(other.tenant_id) == col(Agreement.tenant_id),
                col(other.status).in_(OPEN_STATUSES),
                col(other.id).in_(blocked_by),
            )
        query = (
            select(
                col(Agreement.tenant_id), col(Agreement.id), col(Agreement.template_id), col(Agreement.template_key),
                col(Agreement.template_version), col(Agreement.variables), col(Agreement.custom_clauses),
                col(Agreement.executed_at), blocked.label("blocked"),
            )
            .where(col(Agreement.status) == AgreementStatus.EXECUTED.value, or_(*wanted))
            .order_by(col(Agreement.tenant_id))
        )  # fmt: skip
        if skip_tenants is not None:
            query = query.where(col(Agreement.tenant_id).not_in(skip_tenants))
        rows = (await session.execute(query)).all()
    return [
        ExecutedDpa(
            tenant_id=row[0], agreement_id=row[1], template_id=row[2], template_key=row[3], template_version=row[4],
            variables=row[5], custom_clauses=row[6], executed_at=row[7], blocked=bool(row[8]),
        )
        for row in rows
    ]  # fmt: skip


@dataclass(frozen=True)
class NewDraft:
    """One draft to create: on `template_id` for `tenant_id`, with these variables and custom clauses; `audit` is
    added to its `agreement.created` event (what the caller wants the tenant's chain to say about why)."""

    tenant_id: uuid.UUID
    template_id: uuid.UUID
    variables: dict[str, Any]
    custom_clauses: list[dict[str, str]] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DraftsCreated:
    """The new draft of each tenant (by tenant), and the tenants refused one with the reason (a tenant in exit)."""

    created: dict[uuid.UUID, uuid.UUID]
    refused: dict[uuid.UUID, str]


async def create_drafts(db: Database, actor: Actor, scope: Scope, drafts: Sequence[NewDraft]) -> DraftsCreated:
    """A draft agreement per entry (at most one per tenant), in bulk statements in the caller's transaction (or one
    of its own): the same draft `create_agreement` makes, audited `agreement.created` in each tenant's chain.

    A tenant another domain refuses a new DPA (`core.events.checks`: a tenant in exit) is left out and reported.
    The variables are the caller's (carried from an executed DPA, say) and are checked against the template's
    schema when the Subscriber submits, as every draft's are; nothing is rendered here."""
    if len({draft.tenant_id for draft in drafts}) != len(drafts):
        raise ValueError("one draft per tenant")
    refused = await checks.refusing_new_agreement(db, scope, [draft.tenant_id for draft in drafts])
    kept = [draft for draft in drafts if draft.tenant_id not in refused]
    versions = {v: await templates.version_by_id(db, scope, v) for v in {draft.template_id for draft in kept}}
    now = utcnow()
    rows: list[dict[str, Any]] = []
    events: list[tuple[uuid.UUID | None, uuid.UUID | str | None, dict[str, Any] | None]] = []
    for draft in kept:
        version = versions[draft.template_id]
        agreement_id = new_id()
        rows.append(
            {
                "id": agreement_id, "tenant_id": draft.tenant_id, "template_id": version.id,
                "template_key": version.key, "template_version": version.version, "template_sha256": version.sha256,
                "status": AgreementStatus.DRAFT.value, "variables": draft.variables,
                "custom_clauses": draft.custom_clauses, "created_by": actor.user_id, "created_at": now,
                "updated_at": now, "content_changed_at": now,
            }
        )  # fmt: skip
        events.append(
            (
                draft.tenant_id,
                agreement_id,
                {
                    "template": f"{version.key} v{version.version}",
                    "template_sha256": version.sha256,
                    "custom_clauses": len(draft.custom_clauses),
                    **draft.audit,
                },
            )
        )
    async with db.transaction(scope) as session:
        for start in range(0, len(rows), WRITE_BATCH):
            await session.execute(insert(AGREEMENTS), rows[start : start + WRITE_BATCH])
        await audit.record_many(session, actor, "agreement.created", "agreement", events)
    return DraftsCreated({row["tenant_id"]: row["id"] for row in rows}, refused)


async def status_counts(db: Database, scope: Scope, among: Select[Any, Any]) -> dict[Any, dict[str, int]]:
    """How many agreements are in each status, per group: `among` selects (group key, agreement id) rows (a
    campaign's links, say) and the answer maps each group key to its counts by status. One aggregate query."""
    links = among.subquery()
    group, agreement_id = list(links.c)[:2]
    query = (
        select(group, col(Agreement.status), func.count())
        .join(links, agreement_id == col(Agreement.id))
        .group_by(group, col(Agreement.status))
    )
    counts: dict[Any, dict[str, int]] = {}
    async with db.transaction(scope, write=False) as session:
        for key, status, count in (await session.execute(query)).all():
            counts.setdefault(key, {})[status] = count
    return counts


@dataclass(frozen=True)
class AgreementState:
    """Where one agreement stands, for a list of many (its status, why it was voided, when it moved)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    status: str
    template_version: int
    updated_at: datetime
    signed_at: datetime | None
    executed_at: datetime | None
    voided_at: datetime | None
    void_reason: str | None


async def states(db: Database, scope: Scope, agreement_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, AgreementState]:
    """The state of each of `agreement_ids` (a page of them) that the scope may see: one query."""
    if not agreement_ids:
        return {}
    query = select(
        col(Agreement.id), col(Agreement.tenant_id), col(Agreement.status), col(Agreement.template_version),
        col(Agreement.updated_at), col(Agreement.signed_at), col(Agreement.executed_at), col(Agreement.voided_at),
        col(Agreement.void_reason),
    ).where(col(Agreement.id).in_(list(agreement_ids)))  # fmt: skip
    async with db.transaction(scope, write=False) as session:
        if scope.tenant_id is not None:
            query = query.where(col(Agreement.tenant_id) == scope.tenant_id)
        return {row[0]: AgreementState(*row) for row in (await session.execute(query)).all()}
