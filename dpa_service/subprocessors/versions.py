"""Published lists: immutable, numbered versions, and what Annex III of a DPA shows.

A version is `pending` until its `effective_at`, then `effective`; status is derived from the clock, so reads are
right even when the scheduled job runs late. Versions take effect in the order they are numbered.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.core.clock import as_utc, utcnow
from dpa_service.core.db import serialize
from dpa_service.core.exceptions import Conflict, NotFound
from dpa_service.subprocessors.models import SubprocessorPublic, SubprocessorVersion, VersionPublic

LIST_LOCK_KEY = 0x5B9_2828  # any constant: the advisory lock that serializes writers of the list
_ITEM_NAMESPACE = uuid.UUID("6f1c2d1e-5b8a-4c53-9d0e-2a7f3b9c1e44")
_ITEM_FIELDS = (
    "name", "entity", "address", "purpose", "nature", "duration", "locations", "data_categories",
    "transfer_mechanism", "website",
)  # fmt: skip


def canonical_items(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored form of a list: known fields only, sorted by name (case-insensitive)."""
    rows = [{key: item.get(key) for key in _ITEM_FIELDS if item.get(key) is not None} for item in items]
    return sorted(rows, key=lambda row: row["name"].casefold())


def items_sha256(items: Sequence[dict[str, Any]]) -> str:
    text_ = json.dumps(canonical_items(items), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text_.encode()).hexdigest()


def item_id(name: str) -> str:
    """A sub-processor's id is stable across versions: derived from its name."""
    return str(uuid.uuid5(_ITEM_NAMESPACE, name.casefold()))


def public_item(item: dict[str, Any]) -> SubprocessorPublic:
    fields: dict[str, Any] = {key: item.get(key) for key in _ITEM_FIELDS}
    return SubprocessorPublic(id=item_id(item["name"]), **fields)


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
    query = select(SubprocessorVersion).order_by(col(SubprocessorVersion.number).desc()).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


async def current_version(session: AsyncSession) -> SubprocessorVersion | None:
    """The version in force now."""
    query = (
        select(SubprocessorVersion)
        .where(col(SubprocessorVersion.effective_at) <= utcnow())
        .order_by(col(SubprocessorVersion.number).desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def get_version(session: AsyncSession, number: int) -> SubprocessorVersion:
    query = select(SubprocessorVersion).where(col(SubprocessorVersion.number) == number)
    found = (await session.execute(query)).scalar_one_or_none()
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


async def lock_list(session: AsyncSession) -> None:
    """One writer of the list at a time: two legal users publishing at once get versions N+1 and N+2, not a
    unique-constraint error. (SQLite writers are already serialized by BEGIN IMMEDIATE.)"""
    await serialize(session, LIST_LOCK_KEY)
