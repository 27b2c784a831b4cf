"""Publishing changes to the list (GDPR Art. 28(2), clause 6 of the standard DPA).

A change publishes the next version with a notice period (at least 30 days, clause 6.2; shorter only when urgent,
clause 6.6); it is `pending` until `effective_at`, then `effective`. A change never takes effect before the pending
version it builds on (its notice is lengthened to that date if need be). Publishing writes one outbox message per
tenant with an executed DPA, in the same transaction, addressed also to that DPA's Annex I.A contact.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core import registry
from dpa_service.core.clock import as_utc, rfc3339, utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import Conflict, FieldError, InvalidInput, NotFound
from dpa_service.core.identity import Actor, Principal
from dpa_service.http.pagination import Page, decode_id_cursor, page_of
from dpa_service.notifications.outbox import enqueue_many
from dpa_service.subprocessors.authorization import current_authorizations
from dpa_service.subprocessors.models import (
    STANDARD_NOTICE_DAYS,
    ChangeCreate,
    ChangePublic,
    ChangeState,
    ProposalPublish,
    SubprocessorChange,
    SubprocessorVersion,
)
from dpa_service.subprocessors.registry_sync import diff
from dpa_service.subprocessors.versions import canonical_items, items_sha256, latest_version, lock_list, status_of
from dpa_service.transfers import services as transfers

PUBLISHED_TOPIC = "subprocessor.change_published"


def change_public(change: SubprocessorChange, *, staff: bool = True) -> ChangePublic:
    deadline = change.effective_at
    return ChangePublic(
        id=change.id,
        status=change.state if change.state != ChangeState.PUBLISHED.value else status_of(change.effective_at),
        version=change.version,
        base_version=change.base_version,
        added=change.added,
        removed=change.removed,
        notice_days=change.notice_days,
        urgent=change.urgent,
        reason=change.reason,
        published_at=change.published_at,
        effective_at=change.effective_at,
        objection_deadline=deadline,
        notified_tenants=change.notified_tenants if staff else None,  # how many customers: not for customers
        proposed_items=change.proposed_items if change.state == ChangeState.PROPOSED.value else None,
    )


def _check_notice(notice_days: int, urgent: bool) -> None:
    if notice_days < STANDARD_NOTICE_DAYS and not urgent:
        raise InvalidInput.field(
            "notice_days",
            f"the DPA promises at least {STANDARD_NOTICE_DAYS} days' notice (clause 6.2); "
            "a shorter notice needs urgent: true (clause 6.6)",
        )


def _apply(
    base: Sequence[dict[str, Any]], data: ChangeCreate, invalid_from: dict[str, date]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The next list from `base` and the change; each mistake names its field. A new sub-processor's transfer
    mechanism must cover each of its locations from the day the change takes effect."""
    present = {item["name"].casefold(): item for item in base}
    errors: list[FieldError] = []
    if not data.add and not data.remove:
        errors.append(FieldError("add", "a change must add or remove at least one sub-processor"))
    removing: set[str] = set()
    for index, name in enumerate(data.remove):
        key = name.casefold()
        if key not in present:
            errors.append(FieldError(f"remove.{index}", f"{name!r} is not on the current list"))
        elif key in removing:
            errors.append(FieldError(f"remove.{index}", f"{name!r} is listed twice"))
        removing.add(key)
    adding: set[str] = set()
    for index, item in enumerate(data.add):
        key = item.name.casefold()
        if key in present and key not in removing:
            errors.append(
                FieldError(f"add.{index}.name", f"{item.name!r} is already listed; remove it too to replace its entry")
            )
        elif key in adding:
            errors.append(FieldError(f"add.{index}.name", f"{item.name!r} is listed twice"))
        adding.add(key)
    effective_day = (utcnow() + timedelta(days=data.notice_days)).date()
    for index, item in enumerate(data.add):
        for location in item.locations:
            if item.transfer_mechanism is None:  # only EEA locations: the item's validator made sure
                continue
            problem = transfers.listing_problem(item.transfer_mechanism, location, effective_day, invalid_from)
            if problem:
                errors.append(
                    FieldError(f"add.{index}.transfer_mechanism", f"for {location} from {effective_day}: {problem}")
                )
    if errors:
        raise InvalidInput("The change does not fit the current sub-processor list.", errors)
    added = canonical_items([item.model_dump(exclude_none=True) for item in data.add])
    kept = [item for key, item in present.items() if key not in removing]
    return canonical_items([*kept, *added]), added


def _addressed(payload: dict[str, Any], contact_email: str | None) -> dict[str, Any]:
    """Clause 6.2 promises the notice by e-mail to the DPA's contact address as well as to the tenant's owners
    and admins (the worker adds those)."""
    return {**payload, "email_also": [contact_email]} if contact_email else payload


async def _publish(
    session: AsyncSession,
    actor: Actor,
    change: SubprocessorChange,
    items: list[dict[str, Any]],
    *,
    notice_days: int,
    urgent: bool,
    reason: str,
) -> SubprocessorChange:
    latest = await latest_version(session)
    number = (latest.number if latest else 0) + 1
    now = utcnow()
    # A version builds on the one before it, so it cannot take effect earlier: a longer notice than asked for
    # is always allowed (clause 6.2 sets a minimum), a shorter one would reorder the list's history.
    effective_at = max(now + timedelta(days=notice_days), as_utc(latest.effective_at) if latest else now)
    change.state, change.version, change.base_version = (
        ChangeState.PUBLISHED.value,
        number,
        latest.number if latest else None,
    )
    change.notice_days, change.urgent, change.reason = notice_days, urgent, reason
    change.published_at, change.published_by, change.effective_at = now, actor.user_id, effective_at
    session.add(change)
    await session.flush()
    session.add(
        SubprocessorVersion(
            number=number,
            items=items,
            sha256=items_sha256(items),
            reason=reason,
            change_id=change.id,
            published_by=actor.user_id,
            published_at=now,
            effective_at=effective_at,
        )
    )
    payload = _notice_payload(change)
    recipients = (await session.execute(current_authorizations())).all()
    change.notified_tenants = await enqueue_many(
        session,
        PUBLISHED_TOPIC,
        (
            (row.tenant_id, f"{PUBLISHED_TOPIC}:{change.id}:{row.tenant_id}", _addressed(payload, row.contact_email))
            for row in recipients
        ),
    )
    await audit.record(
        session,
        actor,
        "subprocessor_change.published",
        "subprocessor_change",
        change.id,
        tenant_id=None,
        data={
            "version": number,
            "effective_at": rfc3339(effective_at),
            "added": [item["name"] for item in change.added],
            "removed": change.removed,
            "notice_days": notice_days,
            "urgent": urgent,
            "notified_tenants": change.notified_tenants,
        },
    )
    return change


def _notice_payload(change: SubprocessorChange) -> dict[str, Any]:
    number, effective_at = change.version or 0, as_utc(change.effective_at)  # type: ignore[arg-type]
    return {
        "change_id": str(change.id),
        "version": number,
        "effective_at": rfc3339(effective_at),
        "objection_deadline": rfc3339(effective_at),
        "added": change.added,
        "removed": change.removed,
        "reason": change.reason,
        "urgent": change.urgent,
        "subject": f"Sub-processor change: list version {number} takes effect {effective_at.date().isoformat()}",
        "text": _notice_text(change, number, effective_at),
    }


async def notify_pending_changes(
    session: AsyncSession, tenant_id: uuid.UUID, pinned: int, contact_email: str | None
) -> int:
    """A DPA executed while changes are pending: its tenant gets their notice now (once each), so it can still
    object before their deadlines."""
    pending = (
        await session.execute(
            select(SubprocessorChange).where(
                col(SubprocessorChange.state) == ChangeState.PUBLISHED.value,
                col(SubprocessorChange.version) > pinned,
                col(SubprocessorChange.effective_at) > utcnow(),
            )
        )
    ).scalars()
    return await enqueue_many(
        session,
        PUBLISHED_TOPIC,
        (
            (
                tenant_id,
                f"{PUBLISHED_TOPIC}:{change.id}:{tenant_id}",
                _addressed(_notice_payload(change), contact_email),
            )
            for change in pending
        ),
    )


def _notice_text(change: SubprocessorChange, number: int, effective_at: datetime) -> str:
    lines = [
        "We intend to change the sub-processors that process personal data on your behalf (GDPR Art. 28(2),",
        "clause 6 of your Data Processing Agreement).",
        "",
    ]
    for item in change.added:
        where = ", ".join(registry.location_name(code) for code in item.get("locations", []))
        mechanism = item.get("transfer_mechanism") or registry.NO_MECHANISM_NAME
        lines.append(f"Added: {item['name']} ({item['entity']}), {item['purpose']}; located in {where};")
        lines.append(f"       transfer mechanism: {mechanism}")
    lines += [f"Removed: {name}" for name in change.removed]
    lines += [
        "",
        f"Reason: {change.reason}",
        f"The new list (version {number}) takes effect on {rfc3339(effective_at)}.",
        "You may object until then (POST /api/v1/subprocessor-changes/{id}/objections). Without an objection,"
        " the change is deemed accepted on that date.".replace("{id}", str(change.id)),
    ]
    return "\n".join(lines)


async def publish_change(db: Database, actor: Actor, data: ChangeCreate) -> ChangePublic:
    """Legal publishes a change: the next version, pending for the notice period, every relying tenant told."""
    _check_notice(data.notice_days, data.urgent)
    async with db.transaction(Scope.system()) as session:
        await lock_list(session)
        latest = await latest_version(session)
        if latest is None:
            raise Conflict("No sub-processor list has been loaded yet: run `dpa registry sync` first.")
        items, added = _apply(latest.items, data, await transfers.invalidations(db, Scope.system()))
        gone = {name.casefold() for name in data.remove}
        removed = [item["name"] for item in latest.items if item["name"].casefold() in gone]
        change = SubprocessorChange(added=added, removed=removed)
        await _publish(
            session, actor, change, items, notice_days=data.notice_days, urgent=data.urgent, reason=data.reason
        )
        return change_public(change)


async def publish_proposal(db: Database, actor: Actor, change_id: uuid.UUID, data: ProposalPublish) -> ChangePublic:
    """Legal publishes the list proposed by `dpa registry sync`, as it stands against the latest version."""
    _check_notice(data.notice_days, data.urgent)
    async with db.transaction(Scope.system()) as session:
        await lock_list(session)
        change = await session.get(SubprocessorChange, change_id, with_for_update=True)
        if change is None:
            raise NotFound("No such sub-processor change.")
        if change.state != ChangeState.PROPOSED.value:
            raise Conflict(f"Only a proposed change can be published; this one is {change_public(change).status}.")
        latest = await latest_version(session)
        if latest is not None and change.base_version != latest.number:
            raise Conflict(
                f"This proposal was made against list version {change.base_version}, and version {latest.number} "
                "has been published since: publishing it would undo that change. Run `dpa registry sync` again."
            )
        items = canonical_items(change.proposed_items or [])
        if latest is not None:
            change.added, change.removed = diff(latest.items, items)
            if not change.added and not change.removed:
                raise Conflict("The proposed list is the same as the latest version: nothing to publish.")
        await _publish(
            session, actor, change, items, notice_days=data.notice_days, urgent=data.urgent, reason=data.reason
        )
        return change_public(change)


async def get_change(db: Database, principal: Principal, change_id: uuid.UUID) -> ChangePublic:
    """A change; proposals are for staff only."""
    async with db.transaction(principal.scope, write=False) as session:
        change = await session.get(SubprocessorChange, change_id)
    if change is None or (not principal.is_staff and change.state != ChangeState.PUBLISHED.value):
        raise NotFound("No such sub-processor change.")
    return change_public(change, staff=principal.is_staff)


async def _changes(
    session: AsyncSession, *, staff: bool, status: str | None, before: uuid.UUID | None, limit: int
) -> list[SubprocessorChange]:
    """Changes, newest first (ids are time-ordered); staff also see open proposals, withdrawn ones on request."""
    query = select(SubprocessorChange)
    now = utcnow()
    if not staff or status in ("pending", "effective"):
        query = query.where(col(SubprocessorChange.state) == ChangeState.PUBLISHED.value)
    elif status is None:
        query = query.where(col(SubprocessorChange.state) != ChangeState.WITHDRAWN.value)
    if status == "pending":
        query = query.where(col(SubprocessorChange.effective_at) > now)
    elif status == "effective":
        query = query.where(col(SubprocessorChange.effective_at) <= now)
    elif status in ("proposed", "withdrawn"):
        query = query.where(col(SubprocessorChange.state) == status)
    if before is not None:
        query = query.where(col(SubprocessorChange.id) < before)
    query = query.order_by(col(SubprocessorChange.id).desc())
    return list((await session.execute(query.limit(limit + 1))).scalars())


async def list_changes(
    db: Database, principal: Principal, *, status: str | None, cursor: str | None, limit: int
) -> Page[ChangePublic]:
    async with db.transaction(principal.scope, write=False) as session:
        rows = await _changes(
            session, staff=principal.is_staff, status=status, before=decode_id_cursor(cursor), limit=limit
        )
    return page_of(rows, limit, lambda c: change_public(c, staff=principal.is_staff), lambda c: str(c.id))
