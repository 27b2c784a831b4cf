"""Loading `registry/subprocessors.yaml`: version 1 on a fresh service, a proposed change for legal afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.identity import Actor
from dpa_service.subprocessors.models import ChangeState, SubprocessorChange, SubprocessorVersion
from dpa_service.subprocessors.versions import canonical_items, items_sha256, latest_version, lock_list


@dataclass(frozen=True)
class SyncResult:
    action: str  # seeded | unchanged | proposed | already_proposed
    version: int | None
    change_id: uuid.UUID | None


def _registry_items() -> list[dict[str, Any]]:
    return canonical_items(registry.subprocessor_seed().get("items", []))


def diff(base: Sequence[dict[str, Any]], target: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """What turns `base` into `target`: changed entries count as removed and added again (a replacement)."""
    before = {item["name"].casefold(): item for item in canonical_items(base)}
    after = {item["name"].casefold(): item for item in canonical_items(target)}
    removed = [before[key]["name"] for key in before if key not in after or after[key] != before[key]]
    added = [after[key] for key in after if key not in before or after[key] != before[key]]
    return added, removed


async def sync_registry(db: Database, actor: Actor, items: Sequence[dict[str, Any]] | None = None) -> SyncResult:
    """Load `registry/subprocessors.yaml` (idempotent), or `items` instead (the demo's list of another year).

    The first load is version 1, in force at once (no DPA authorized anything before it). Afterwards a file
    that differs from the latest version becomes a *proposed* change that legal publishes with notice; a newer
    file replaces an unpublished proposal.
    """
    items = _registry_items() if items is None else canonical_items(items)
    digest = items_sha256(items)
    async with db.transaction(Scope.system()) as session:
        await lock_list(session)
        latest = await latest_version(session)
        if latest is None:
            now = utcnow()
            session.add(
                SubprocessorVersion(
                    number=1,
                    items=items,
                    sha256=digest,
                    reason="Initial list loaded from the registry",
                    published_by=actor.user_id,
                    published_at=now,
                    effective_at=now,
                )
            )
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
            await session.execute(
                select(SubprocessorChange)
                .where(col(SubprocessorChange.state) == ChangeState.PROPOSED.value)
                .with_for_update()
            )
        ).scalars()
        for proposal in list(proposals):
            if proposal.source_sha256 == digest:
                return SyncResult("already_proposed", None, proposal.id)
            proposal.state = ChangeState.WITHDRAWN.value
            await audit.record(
                session, actor, "subprocessor_change.withdrawn", "subprocessor_change", proposal.id, tenant_id=None
            )
        added, removed = diff(latest.items, items)
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
            await sync_registry(db, Actor.system("startup"))
