"""Rules of the sub-processor list (GDPR Art. 28(2), clause 6 of the standard DPA).

* Every published list is an immutable, numbered version. A change publishes the next version with a notice
  period; it is `pending` until `effective_at`, then `effective`. Status is derived from the clock, so reads
  are right even when the scheduled job (`record_deemed_acceptances`) runs late.
* Versions take effect in the order they are numbered: a change never takes effect before the pending version
  it builds on (its notice is lengthened to that date if need be).
* A tenant's authorized list is the version its executed DPA pinned, advanced by each later change it accepted
  (expressly, deemed at the deadline, or by withdrawing its objection), in order: an objection that stands
  stops the chain, since each version builds on the one before.
* Publishing writes one outbox message per tenant with an executed DPA, in the same transaction.

This domain reads the agreements table for one fact only, each tenant's executed DPA and the list version it
pinned (`_executed`), so that a change can reach 10,000 tenants in one query.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dpa_service.agreements.models import Agreement, AgreementStatus
from dpa_service.audit import services as audit
from dpa_service.core import registry
from dpa_service.core.clock import as_utc, rfc3339, utcnow
from dpa_service.core.db import Database, Scope, tenant_of
from dpa_service.core.exceptions import Conflict, FieldError, InvalidInput, NotFound
from dpa_service.core.identity import Actor
from dpa_service.core.ids import new_id
from dpa_service.notifications.outbox import enqueue_many
from dpa_service.subprocessors.models import (
    STANDARD_NOTICE_DAYS,
    Acceptance,
    AcceptanceKind,
    AcceptancePublic,
    ChangeCreate,
    ChangePublic,
    ChangeState,
    Objection,
    ObjectionCreate,
    ObjectionOutcome,
    ObjectionPublic,
    ObjectionResolve,
    PendingChange,
    ProposalPublish,
    SubprocessorChange,
    SubprocessorPublic,
    SubprocessorVersion,
    TenantAuthorization,
    VersionPublic,
)
from dpa_service.transfers import services as transfers
from dpa_service.transfers.assessment import listing_problem

PUBLISHED_TOPIC = "subprocessor.change_published"
RESOLVED_TOPIC = "subprocessor.objection_resolved"
LIST_LOCK_KEY = 0x5B9_2828  # any constant: the advisory lock that serializes writers of the list
_ITEM_NAMESPACE = uuid.UUID("6f1c2d1e-5b8a-4c53-9d0e-2a7f3b9c1e44")
_ITEM_FIELDS = ("name", "entity", "purpose", "locations", "data_categories", "transfer_mechanism", "website")


# --- Versions ------------------------------------------------------------------------------------------------


def canonical_items(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored form of a list: known fields only, sorted by name (case-insensitive)."""
    rows = [{key: item.get(key) for key in _ITEM_FIELDS if item.get(key) is not None} for item in items]
    return sorted(rows, key=lambda row: row["name"].casefold())


def items_sha256(items: Sequence[dict[str, Any]]) -> str:
    text = json.dumps(canonical_items(items), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def item_id(name: str) -> str:
    """A sub-processor's id is stable across versions: derived from its name."""
    return str(uuid.uuid5(_ITEM_NAMESPACE, name.casefold()))


def public_item(item: dict[str, Any]) -> SubprocessorPublic:
    return SubprocessorPublic(id=item_id(item["name"]), **{key: item.get(key) for key in _ITEM_FIELDS})


def status_of(effective_at: datetime | None, now: datetime | None = None) -> str:
    if effective_at is None:
        return "proposed"
    return "effective" if as_utc(effective_at) <= (now or utcnow()) else "pending"


def version_public(version: SubprocessorVersion) -> VersionPublic:
    return VersionPublic(
        version=version.number,
        published_at=version.published_at,
        effective_at=version.effective_at,
        status=status_of(version.effective_at),
        reason=version.reason,
        sha256=version.sha256,
        change_id=version.change_id,
        items=[public_item(item) for item in version.items],
    )


async def latest_version(session: AsyncSession) -> SubprocessorVersion | None:
    """The highest-numbered version, pending or not: the base of the next change."""
    query = select(SubprocessorVersion).order_by(SubprocessorVersion.number.desc()).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


async def current_version(session: AsyncSession) -> SubprocessorVersion | None:
    """The version in force now."""
    query = (
        select(SubprocessorVersion)
        .where(SubprocessorVersion.effective_at <= utcnow())
        .order_by(SubprocessorVersion.number.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def get_version(session: AsyncSession, number: int) -> SubprocessorVersion:
    found = (
        await session.execute(select(SubprocessorVersion).where(SubprocessorVersion.number == number))
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"There is no sub-processor list version {number}.")
    return found


@lru_cache(maxsize=64)
def _annex_listing(number: int, effective_at: str, items_json: str) -> dict[str, Any]:
    return {"version": number, "effective_at": effective_at, "items": json.loads(items_json)}


def annex_listing(version: SubprocessorVersion) -> dict[str, Any]:
    """What Annex III renders from: a version is immutable, so its listing is cached by number."""
    return _annex_listing(
        version.number, as_utc(version.effective_at).date().isoformat(), json.dumps(version.items, sort_keys=True)
    )


async def listing_for(session: AsyncSession, pinned: int | None) -> tuple[int, dict[str, Any]]:
    """The list an agreement's document shows: the version it pinned, else the one in force now."""
    version = await get_version(session, pinned) if pinned is not None else await current_version(session)
    if version is None:
        raise Conflict("No sub-processor list has been published yet: run `dpa registry sync`.")
    return version.number, annex_listing(version)


async def _lock_list(session: AsyncSession) -> None:
    """One writer of the list at a time: two legal users publishing at once get versions N+1 and N+2, not a
    unique-constraint error. (SQLite writers are already serialized by BEGIN IMMEDIATE.)"""
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LIST_LOCK_KEY})


# --- Seeding and the registry file -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    action: str  # seeded | unchanged | proposed | already_proposed
    version: int | None
    change_id: uuid.UUID | None


def _registry_items() -> list[dict[str, Any]]:
    return canonical_items(registry.subprocessor_seed().get("items", []))


def _diff(base: Sequence[dict[str, Any]], target: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """What turns `base` into `target`: changed entries count as removed and added again (a replacement)."""
    before = {item["name"].casefold(): item for item in canonical_items(base)}
    after = {item["name"].casefold(): item for item in canonical_items(target)}
    removed = [before[key]["name"] for key in before if key not in after or after[key] != before[key]]
    added = [after[key] for key in after if key not in before or after[key] != before[key]]
    return added, removed


async def sync_registry(session: AsyncSession, actor: Actor) -> SyncResult:
    """Load `registry/subprocessors.yaml` (idempotent).

    The first load is version 1, in force at once (no DPA authorized anything before it). Afterwards a file
    that differs from the latest version becomes a *proposed* change that legal publishes with notice; a newer
    file replaces an unpublished proposal.
    """
    items = _registry_items()
    digest = items_sha256(items)
    await _lock_list(session)
    latest = await latest_version(session)
    if latest is None:
        now = utcnow()
        version = SubprocessorVersion(
            number=1,
            items=items,
            sha256=digest,
            reason="Initial list loaded from the registry",
            published_by=actor.user_id,
            published_at=now,
            effective_at=now,
        )
        session.add(version)
        await session.flush()
        await audit.record(
            session,
            actor,
            "subprocessor_list.seeded",
            "subprocessor_version",
            "1",
            tenant_id=None,
            data={"sha256": digest},
        )
        return SyncResult("seeded", 1, None)
    if latest.sha256 == digest:
        return SyncResult("unchanged", latest.number, None)
    proposals = (
        (
            await session.execute(
                select(SubprocessorChange)
                .where(SubprocessorChange.state == ChangeState.PROPOSED.value)
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    for proposal in proposals:
        if proposal.source_sha256 == digest:
            return SyncResult("already_proposed", None, proposal.id)
        proposal.state = ChangeState.WITHDRAWN.value
        await audit.record(
            session, actor, "subprocessor_change.withdrawn", "subprocessor_change", proposal.id, tenant_id=None
        )
    added, removed = _diff(latest.items, items)
    change = SubprocessorChange(
        state=ChangeState.PROPOSED.value,
        base_version=latest.number,
        added=added,
        removed=removed,
        proposed_items=items,
        source_sha256=digest,
        reason="Registry file changed; awaiting publication by legal",
    )
    session.add(change)
    await session.flush()
    await audit.record(
        session,
        actor,
        "subprocessor_change.proposed",
        "subprocessor_change",
        change.id,
        tenant_id=None,
        data={"base_version": latest.number, "added": [a["name"] for a in added], "removed": removed},
    )
    return SyncResult("proposed", None, change.id)


async def ensure_seeded(db: Database) -> None:
    """A service that has never loaded the list loads version 1 (so drafts and countersignatures work)."""
    async with db.transaction(Scope.system(), write=False) as session:
        if await latest_version(session) is not None:
            return
    async with db.transaction(Scope.system()) as session:
        if await latest_version(session) is None:  # another worker may have won the race
            await sync_registry(session, Actor.system("startup"))


# --- Publishing changes ------------------------------------------------------------------------------------------


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
            problem = listing_problem(item.transfer_mechanism, location, effective_day, invalid_from)
            if problem:
                errors.append(
                    FieldError(f"add.{index}.transfer_mechanism", f"for {location} from {effective_day}: {problem}")
                )
    if errors:
        raise InvalidInput("The change does not fit the current sub-processor list.", errors)
    added = canonical_items([item.model_dump(exclude_none=True) for item in data.add])
    kept = [item for key, item in present.items() if key not in removing]
    return canonical_items([*kept, *added]), added


def _executed() -> Any:
    """Each tenant's executed DPA, the list version it pinned and its Annex I.A contact address (one per tenant:
    executing supersedes)."""
    contact = Agreement.variables["controller"]["contact_email"].as_string().label("contact_email")
    return select(Agreement.tenant_id, Agreement.subprocessor_list_version, Agreement.id, contact).where(
        Agreement.status == AgreementStatus.EXECUTED.value
    )


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
    recipients = (await session.execute(_executed())).all()
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
                SubprocessorChange.state == ChangeState.PUBLISHED.value,
                SubprocessorChange.version > pinned,
                SubprocessorChange.effective_at > utcnow(),
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
        where = ", ".join(registry.country_name(code) for code in item.get("locations", []))
        lines.append(f"Added: {item['name']} ({item['entity']}), {item['purpose']}; located in {where};")
        lines.append(f"       transfer mechanism: {item['transfer_mechanism']}")
    lines += [f"Removed: {name}" for name in change.removed]
    lines += [
        "",
        f"Reason: {change.reason}",
        f"The new list (version {number}) takes effect on {rfc3339(effective_at)}.",
        "You may object until then (POST /api/v1/subprocessor-changes/{id}/objections). Without an objection,"
        " the change is deemed accepted on that date.".replace("{id}", str(change.id)),
    ]
    return "\n".join(lines)


async def publish_change(session: AsyncSession, actor: Actor, data: ChangeCreate) -> SubprocessorChange:
    """Legal publishes a change: the next version, pending for the notice period, every relying tenant told."""
    _check_notice(data.notice_days, data.urgent)
    await _lock_list(session)
    latest = await latest_version(session)
    if latest is None:
        raise Conflict("No sub-processor list has been loaded yet: run `dpa registry sync` first.")
    items, added = _apply(latest.items, data, await transfers.invalidations(session))
    removed = [item["name"] for item in latest.items if item["name"].casefold() in {n.casefold() for n in data.remove}]
    change = SubprocessorChange(added=added, removed=removed)
    return await _publish(
        session, actor, change, items, notice_days=data.notice_days, urgent=data.urgent, reason=data.reason
    )


async def publish_proposal(
    session: AsyncSession, actor: Actor, change_id: uuid.UUID, data: ProposalPublish
) -> SubprocessorChange:
    """Legal publishes the list proposed by `dpa registry sync`, as it stands against the latest version."""
    _check_notice(data.notice_days, data.urgent)
    await _lock_list(session)
    change = await session.get(SubprocessorChange, change_id, with_for_update=True)
    if change is None:
        raise NotFound("No such sub-processor change.")
    if change.state != ChangeState.PROPOSED.value:
        raise Conflict(f"Only a proposed change can be published; this one is {change_public(change).status}.")
    latest = await latest_version(session)
    if latest is not None and change.base_version != latest.number:
        raise Conflict(
            f"This proposal was made against list version {change.base_version}, and version {latest.number} has "
            "been published since: publishing it would undo that change. Run `dpa registry sync` again."
        )
    items = canonical_items(change.proposed_items or [])
    if latest is not None:
        change.added, change.removed = _diff(latest.items, items)
        if not change.added and not change.removed:
            raise Conflict("The proposed list is the same as the latest version: nothing to publish.")
    return await _publish(
        session, actor, change, items, notice_days=data.notice_days, urgent=data.urgent, reason=data.reason
    )


async def get_change(session: AsyncSession, change_id: uuid.UUID, *, staff: bool) -> SubprocessorChange:
    change = await session.get(SubprocessorChange, change_id)
    if change is None or (not staff and change.state != ChangeState.PUBLISHED.value):
        raise NotFound("No such sub-processor change.")
    return change


async def list_changes(
    session: AsyncSession, *, staff: bool, status: str | None, before: uuid.UUID | None, limit: int
) -> list[SubprocessorChange]:
    """Changes, newest first (ids are time-ordered); staff also see open proposals, withdrawn ones on request."""
    query = select(SubprocessorChange)
    now = utcnow()
    if not staff or status in ("pending", "effective"):
        query = query.where(SubprocessorChange.state == ChangeState.PUBLISHED.value)
    elif status is None:
        query = query.where(SubprocessorChange.state != ChangeState.WITHDRAWN.value)
    if status == "pending":
        query = query.where(SubprocessorChange.effective_at > now)
    elif status == "effective":
        query = query.where(SubprocessorChange.effective_at <= now)
    elif status in ("proposed", "withdrawn"):
        query = query.where(SubprocessorChange.state == status)
    if before is not None:
        query = query.where(SubprocessorChange.id < before)
    query = query.order_by(SubprocessorChange.id.desc())
    return list((await session.execute(query.limit(limit + 1))).scalars())


# --- A tenant's answer: objections and acceptances ----------------------------------------------------------


async def _executed_of(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[uuid.UUID, int | None] | None:
    """The tenant's executed DPA and the list version it pinned."""
    row = (await session.execute(_executed().where(Agreement.tenant_id == tenant_id).limit(1))).first()
    return (row.id, row.subprocessor_list_version) if row else None


async def _open_for_answer(session: AsyncSession, tenant_id: uuid.UUID, change_id: uuid.UUID) -> SubprocessorChange:
    """The change a tenant may still object to or accept, or the 409 that says why not.

    The change row is share-locked before the clock is read: the deemed-acceptance job locks it exclusively, so
    an answer given in time is committed before the job looks for answers, and one given late sees the deadline
    passed."""
    change = await session.get(SubprocessorChange, change_id, with_for_update={"read": True})
    if change is None or change.state != ChangeState.PUBLISHED.value:
        raise NotFound("No such sub-processor change.")
    if session.bind.dialect.name == "postgresql":  # one answer at a time per tenant and change (two admins)
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"answer:{tenant_id}:{change.id}"}
        )
    executed = await _executed_of(session, tenant_id)
    if executed is None:
        raise Conflict("Only a Subscriber with an executed DPA can answer a sub-processor change.")
    pinned = executed[1] or 0
    if change.version is not None and change.version <= pinned:
        raise Conflict(f"Your executed DPA already authorizes list version {pinned}, which includes this change.")
    if as_utc(change.effective_at) <= utcnow():  # type: ignore[arg-type]
        raise Conflict(
            f"The notice period ended on {rfc3339(change.effective_at)}: the change is effective."  # type: ignore[arg-type]
        )
    if await _objection_of(session, tenant_id, change.id) is not None:
        raise Conflict("Your organisation has objected to this change; legal resolves the objection.")
    if await _acceptance_of(session, tenant_id, change.id) is not None:
        raise Conflict("Your organisation has already accepted this change.")
    return change


def _own_tenant(session: AsyncSession) -> uuid.UUID:
    tenant_id = tenant_of(session)
    if tenant_id is None:
        raise NotFound("No such sub-processor change.")
    return tenant_id


async def object_to(session: AsyncSession, actor: Actor, change_id: uuid.UUID, data: ObjectionCreate) -> Objection:
    tenant_id = _own_tenant(session)
    change = await _open_for_answer(session, tenant_id, change_id)
    objection = Objection(
        id=new_id(),
        tenant_id=tenant_id,
        change_id=change.id,
        version=change.version or 0,
        reason=data.reason,
        raised_by=actor.user_id,
        raised_at=utcnow(),
    )
    session.add(objection)
    await _flush_once(session, "Your organisation has already objected to this change.")
    await audit.record(
        session,
        actor,
        "subprocessor_change.objected",
        "subprocessor_objection",
        objection.id,
        tenant_id=tenant_id,
        data={"change_id": str(change.id), "version": change.version, "reason": data.reason},
    )
    return objection


async def accept(session: AsyncSession, actor: Actor, change_id: uuid.UUID) -> Acceptance:
    """A tenant accepts a pending change expressly (it then needs no deemed acceptance)."""
    tenant_id = _own_tenant(session)
    change = await _open_for_answer(session, tenant_id, change_id)
    acceptance = Acceptance(
        id=new_id(),
        tenant_id=tenant_id,
        change_id=change.id,
        version=change.version or 0,
        kind=AcceptanceKind.EXPRESS.value,
        accepted_at=utcnow(),
        accepted_by=actor.user_id,
    )
    session.add(acceptance)
    await _flush_once(session, "Your organisation has already answered this change.")
    await audit.record(
        session,
        actor,
        "subprocessor_change.accepted",
        "subprocessor_change",
        change.id,
        tenant_id=tenant_id,
        data={"version": change.version, "kind": acceptance.kind},
    )
    return acceptance


async def _flush_once(session: AsyncSession, message: str) -> None:
    """A second answer racing the first (same tenant, same change) meets the unique index: 409, not 500."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(message) from exc


async def _objection_of(session: AsyncSession, tenant_id: uuid.UUID, change_id: uuid.UUID) -> Objection | None:
    query = select(Objection).where(Objection.tenant_id == tenant_id, Objection.change_id == change_id)
    return (await session.execute(query)).scalar_one_or_none()


async def _acceptance_of(session: AsyncSession, tenant_id: uuid.UUID, change_id: uuid.UUID) -> Acceptance | None:
    query = select(Acceptance).where(Acceptance.tenant_id == tenant_id, Acceptance.change_id == change_id)
    return (await session.execute(query)).scalar_one_or_none()


def objection_public(objection: Objection) -> ObjectionPublic:
    return ObjectionPublic.model_validate(
        {**objection.model_dump(), "status": "resolved" if objection.resolved_at else "open"}
    )


async def list_objections(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID | None,
    change_id: uuid.UUID | None,
    status: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[Objection]:
    query = select(Objection)
    if (tenant := tenant_of(session, tenant_id)) is not None:
        query = query.where(Objection.tenant_id == tenant)
    if change_id is not None:
        query = query.where(Objection.change_id == change_id)
    if status == "open":
        query = query.where(Objection.resolved_at.is_(None))
    elif status == "resolved":
        query = query.where(Objection.resolved_at.is_not(None))
    if after is not None:
        query = query.where(Objection.id > after)
    return list((await session.execute(query.order_by(Objection.id).limit(limit + 1))).scalars())


async def get_objection(session: AsyncSession, objection_id: uuid.UUID) -> Objection:
    query = select(Objection).where(Objection.id == objection_id)
    if (tenant := tenant_of(session)) is not None:
        query = query.where(Objection.tenant_id == tenant)
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        raise NotFound("No such objection.")
    return found


async def resolve_objection(
    session: AsyncSession, actor: Actor, objection_id: uuid.UUID, data: ObjectionResolve
) -> Objection:
    """Legal's answer to an objection; the tenant is told of it."""
    objection = await _open_objection(session, objection_id)
    await _close(session, actor, objection, data.resolution, data.outcome, accepted_by=None)
    # The tenant hears of every resolution, in the words recorded: nothing is decided behind its back.
    await enqueue_many(
        session,
        RESOLVED_TOPIC,
        [
            (
                objection.tenant_id,
                f"{RESOLVED_TOPIC}:{objection.id}",
                {
                    "objection_id": str(objection.id),
                    "change_id": str(objection.change_id),
                    "version": objection.version,
                    "outcome": objection.outcome,
                    "resolution": data.resolution,
                    "subject": f"Your objection to sub-processor list version {objection.version}: {objection.outcome}",
                    "text": f"The processor's legal team resolved your objection ({objection.outcome}):\n\n"
                    f"{data.resolution}",
                },
            )
        ],
    )
    return objection


async def withdraw_objection(session: AsyncSession, actor: Actor, objection_id: uuid.UUID) -> Objection:
    """The tenant itself withdraws its objection: that is its acceptance of the change, signed by the user."""
    objection = await _open_objection(session, objection_id)
    await _close(
        session,
        actor,
        objection,
        "Withdrawn by the Subscriber",
        ObjectionOutcome.WITHDRAWN,
        accepted_by=actor.user_id,
    )
    return objection


async def _open_objection(session: AsyncSession, objection_id: uuid.UUID) -> Objection:
    query = select(Objection).where(Objection.id == objection_id).with_for_update()
    if (tenant := tenant_of(session)) is not None:
        query = query.where(Objection.tenant_id == tenant)
    objection = (await session.execute(query)).scalar_one_or_none()
    if objection is None:
        raise NotFound("No such objection.")
    if objection.resolved_at is not None:
        raise Conflict("This objection is already resolved.")
    return objection


async def _close(
    session: AsyncSession,
    actor: Actor,
    objection: Objection,
    resolution: str,
    outcome: ObjectionOutcome,
    *,
    accepted_by: uuid.UUID | None,
) -> None:
    """Record the resolution (and, when withdrawn, the tenant's acceptance dated now), audited in its chain."""
    now = utcnow()
    objection.resolution, objection.outcome = resolution, outcome.value
    objection.resolved_by, objection.resolved_at = actor.user_id, now
    if (
        outcome == ObjectionOutcome.WITHDRAWN
        and await _acceptance_of(session, objection.tenant_id, objection.change_id) is None
    ):
        session.add(
            Acceptance(
                id=new_id(),
                tenant_id=objection.tenant_id,
                change_id=objection.change_id,
                version=objection.version,
                kind=AcceptanceKind.OBJECTION_WITHDRAWN.value,
                accepted_at=now,
                accepted_by=accepted_by,
            )
        )
    await session.flush()
    await audit.record(
        session,
        actor,
        "subprocessor_objection.resolved",
        "subprocessor_objection",
        objection.id,
        tenant_id=objection.tenant_id,
        data={"change_id": str(objection.change_id), "outcome": objection.outcome, "resolution": resolution},
    )


# --- The authorized set ----------------------------------------------------------------------------------------


def _acceptance_public(acceptance: Acceptance) -> AcceptancePublic:
    return AcceptancePublic.model_validate(acceptance, from_attributes=True)


async def tenant_authorization(session: AsyncSession) -> TenantAuthorization:
    tenant_id = _own_tenant(session)
    executed = await _executed_of(session, tenant_id)
    if executed is None:
        return TenantAuthorization(
            authorized_version=None,
            agreement_id=None,
            effective_at=None,
            items=[],
            accepted_changes=[],
            pending_changes=[],
            objected_changes=[],
        )
    agreement_id, pinned = executed
    authorized = await get_version(session, pinned) if pinned else await current_version(session)
    changes = (
        (
            await session.execute(
                select(SubprocessorChange)
                .where(
                    SubprocessorChange.state == ChangeState.PUBLISHED.value,
                    SubprocessorChange.version > (authorized.number if authorized else 0),
                )
                .order_by(SubprocessorChange.version)
            )
        )
        .scalars()
        .all()
    )
    ids = [change.id for change in changes]
    objections = {
        o.change_id: o
        for o in (
            await session.execute(
                select(Objection).where(Objection.tenant_id == tenant_id, Objection.change_id.in_(ids))
            )
        ).scalars()
    }
    acceptances = {
        a.change_id: a
        for a in (
            await session.execute(
                select(Acceptance).where(Acceptance.tenant_id == tenant_id, Acceptance.change_id.in_(ids))
            )
        ).scalars()
    }
    now = utcnow()
    number = authorized.number if authorized else None
    chain_intact = True
    accepted: list[AcceptancePublic] = []
    pending: list[PendingChange] = []
    objected: list[PendingChange] = []
    for change in changes:
        objection = objections.get(change.id)
        acceptance = acceptances.get(change.id)
        effective = as_utc(change.effective_at) <= now  # type: ignore[arg-type]
        answer = _acceptance_public(acceptance) if acceptance else None
        if answer is None and effective and objection is None:
            # Deemed at the deadline; the job writes the row, but the answer does not wait for it.
            answer = AcceptancePublic(
                id=None,
                tenant_id=tenant_id,
                change_id=change.id,
                version=change.version or 0,
                kind=AcceptanceKind.DEEMED.value,
                accepted_at=change.effective_at,  # type: ignore[arg-type]
                accepted_by=None,
            )
        entry = PendingChange(
            id=change.id,
            version=change.version or 0,
            effective_at=change.effective_at,  # type: ignore[arg-type]
            added=change.added,
            removed=change.removed,
            reason=change.reason,
            objection=objection_public(objection) if objection else None,
            accepted=answer,
        )
        if not effective:
            pending.append(entry)
            continue
        if answer is None:
            objected.append(entry)
            chain_intact = False
            continue
        accepted.append(answer)
        if chain_intact:
            number = change.version
    moved = number is not None and (authorized is None or number != authorized.number)
    version = await get_version(session, number) if moved else authorized  # type: ignore[arg-type]
    return TenantAuthorization(
        authorized_version=number,
        agreement_id=agreement_id,
        effective_at=version.effective_at if version else None,
        items=[public_item(item) for item in version.items] if version else [],
        accepted_changes=accepted,
        pending_changes=pending,
        objected_changes=objected,
    )


# --- The scheduled job -----------------------------------------------------------------------------------------

DEEMED_BATCH = 500


async def record_deemed_acceptances(db: Database) -> int:
    """Write a deemed acceptance, dated at the deadline, for each tenant that did not object to an effective
    change; then mark the change recorded. Idempotent and safe to run late or twice."""
    recorded = 0
    async with db.transaction(Scope.system(), write=False) as session:
        due = list(
            (
                await session.execute(
                    select(SubprocessorChange.id)
                    .where(
                        SubprocessorChange.state == ChangeState.PUBLISHED.value,
                        SubprocessorChange.effective_at <= utcnow(),
                        SubprocessorChange.effective_recorded_at.is_(None),
                    )
                    .order_by(SubprocessorChange.version)
                )
            ).scalars()
        )
    actor = Actor.system("deemed-acceptance")
    for change_id in due:
        while True:
            async with db.transaction(Scope.system()) as session:
                change = await session.get(SubprocessorChange, change_id, with_for_update=True)
                if change is None or change.effective_recorded_at is not None:
                    break
                answered = (
                    select(Objection.tenant_id)
                    .where(Objection.change_id == change.id)
                    .union(select(Acceptance.tenant_id).where(Acceptance.change_id == change.id))
                )
                pinned = func.coalesce(Agreement.subprocessor_list_version, 0)
                tenants = list(
                    (
                        await session.execute(
                            select(Agreement.tenant_id)
                            .where(
                                Agreement.status == AgreementStatus.EXECUTED.value,
                                pinned < change.version,
                                Agreement.tenant_id.not_in(answered),
                            )
                            .limit(DEEMED_BATCH)
                        )
                    ).scalars()
                )
                for tenant_id in tenants:
                    session.add(
                        Acceptance(
                            id=new_id(),
                            tenant_id=tenant_id,
                            change_id=change.id,
                            version=change.version or 0,
                            kind=AcceptanceKind.DEEMED.value,
                            accepted_at=change.effective_at,  # type: ignore[arg-type]
                        )
                    )
                    await audit.record(
                        session,
                        actor,
                        "subprocessor_change.deemed_accepted",
                        "subprocessor_change",
                        change.id,
                        tenant_id=tenant_id,
                        data={"version": change.version, "deadline": rfc3339(change.effective_at)},  # type: ignore[arg-type]
                    )
                recorded += len(tenants)
                if len(tenants) < DEEMED_BATCH:
                    change.effective_recorded_at = utcnow()
                    await audit.record(
                        session,
                        actor,
                        "subprocessor_change.effective",
                        "subprocessor_change",
                        change.id,
                        tenant_id=None,
                        data={"version": change.version, "effective_at": rfc3339(change.effective_at)},  # type: ignore[arg-type]
                    )
                    break
    return recorded
