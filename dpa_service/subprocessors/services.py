"""The sub-processor list as other domains and the API use it: the list in force, versions, and Annex III.

Other domains call only these functions (and react to events); the rules live in the modules beside this one:
`versions` (immutable list versions), `registry_sync`, `publishing` (changes with notice), `answers` (objections and
acceptances), `authorization` (what each tenant authorized), `deemed` (the scheduled job).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import NotFound
from dpa_service.core.identity import Principal
from dpa_service.http.pagination import Page
from dpa_service.subprocessors import answers, authorization, publishing, versions
from dpa_service.subprocessors.models import ChangePublic, ObjectionPublic, TenantAuthorization, VersionPublic


async def listing_for(db: Database, scope: Scope, pinned: int | None) -> tuple[int, dict[str, Any]]:
    """The list an agreement's document shows (Annex III): the version it pinned, else the one in force now."""
    async with db.transaction(scope, write=False) as session:
        return await versions.listing_for(session, pinned)


async def current_version_number(db: Database, scope: Scope) -> int | None:
    """The number of the list version in force now (None before the first list is loaded)."""
    async with db.transaction(scope, write=False) as session:
        version = await versions.current_version(session)
    return version.number if version else None


async def current_list(db: Database, principal: Principal) -> VersionPublic:
    async with db.transaction(principal.scope, write=False) as session:
        version = await versions.current_version(session)
    if version is None:
        raise NotFound("No sub-processor list has been published yet.")
    return versions.version_public(version)


async def list_version(db: Database, principal: Principal, number: int) -> VersionPublic:
    async with db.transaction(principal.scope, write=False) as session:
        return versions.version_public(await versions.get_version(session, number))


async def tenant_authorization(db: Database, principal: Principal) -> TenantAuthorization:
    """What the caller's tenant authorized and the changes still pending its answer (GET /tenant/subprocessors)."""
    return await authorization.tenant_authorization(db, principal)


async def pending_changes(db: Database, principal: Principal, *, limit: int) -> Page[ChangePublic]:
    """Published changes whose notice period is still running (legal's overview counts them)."""
    return await publishing.list_changes(db, principal, status="pending", cursor=None, limit=limit)


async def open_objections(db: Database, principal: Principal, *, limit: int) -> Page[ObjectionPublic]:
    """Objections not yet resolved, all tenants for staff."""
    return await answers.list_objections(
        db, principal, tenant_id=None, change_id=None, status="open", cursor=None, limit=limit
    )


async def authorized_lists(
    db: Database, scope: Scope, tenant_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, TenantAuthorization]:
    """What each of `tenant_ids` authorized (tenants without an executed DPA are left out), in a fixed number of
    queries for the whole batch: the records of processing export reads tenants 500 at a time."""
    if not tenant_ids:
        return {}
    async with db.transaction(scope, write=False) as session:
        return await authorization.authorizations_of(session, tenant_ids)
