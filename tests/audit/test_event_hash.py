"""Chains written before `dpa audit verify` was made fast still verify: the per-event hash is byte for byte the one
the service has always computed (sha256 of the sorted, compact JSON of the event's fields, then `prev_hash`)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from dpa_service.audit.hashing import event_hash, stored_event_matches
from dpa_service.core.clock import rfc3339


def reference_hash(event: Any) -> str:
    """The formula as first written (and as every stored chain was hashed): one json.dumps of the whole body."""
    body = {
        "chain": event.chain,
        "tenant_id": str(event.tenant_id) if event.tenant_id else None,
        "seq": event.seq,
        "at": rfc3339(event.at),
        "actor_id": str(event.actor_id) if event.actor_id else None,
        "actor_role": event.actor_role,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "data": event.data,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256((canonical + event.prev_hash).encode()).hexdigest()


AWKWARD_TEXT = ['quote " and \\ backslash', "Zeile\nneu\t\x01\x1f\x7f", "Ä ß 東京 😀", "\u2028\u2029\u202e", ""]


def events() -> list[SimpleNamespace]:
    tenant = uuid.UUID("0193b0c4-5a6e-7d7f-8a9b-0c1d2e3f4a5b")
    base = dict(
        id=uuid.uuid4(), chain=str(tenant), tenant_id=tenant, seq=7,
        at=datetime(2026, 12, 3, 9, 30, 1, 250, tzinfo=UTC),
        actor_id=uuid.uuid4(), actor_role="owner", action="agreement.created", target_type="agreement",
        target_id=str(uuid.uuid4()), ip="203.0.113.7", user_agent="Mozilla/5.0", data={"status": "draft"},
        prev_hash="a" * 64,
    )  # fmt: skip
    variants: list[dict[str, Any]] = [
        {},
        {
            "chain": "platform",
            "tenant_id": None,
            "actor_id": None,
            "actor_role": None,
            "target_id": None,
            "ip": None,
            "user_agent": None,
            "data": {},
        },
        {"at": datetime(2026, 1, 1, tzinfo=UTC)},  # no microseconds: isoformat drops them
        {"at": datetime(2026, 1, 1, 12, 0, 0, 5)},  # naive, as SQLite hands it back
        {"at": datetime(2026, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))},
        {"seq": 2**40},
        {"data": {"z": 1, "a": [1.5, 1e16, -0.0, True, None, {"y": "x", "b": 2**70}], "Ä": "ö", "": "empty"}},
    ]
    for text in AWKWARD_TEXT:
        variants.append({"action": text, "target_type": text, "target_id": text, "ip": text, "user_agent": text,
                         "actor_role": text, "data": {text: text, "k": [text]}})  # fmt: skip
    return [SimpleNamespace(**{**base, **variant}) for variant in variants]


@pytest.mark.parametrize("event", events(), ids=lambda e: repr(e.action)[:20] + str(e.seq))
def test_an_event_hashes_as_it_always_has(event: SimpleNamespace) -> None:
    assert event_hash(event) == reference_hash(event)  # type: ignore[arg-type]


def _stored_matches(event: SimpleNamespace, data_text: str, digest: str) -> bool:
    return stored_event_matches(
        event.chain, event.tenant_id, event.seq, event.at, event.actor_id, event.actor_role, event.action,
        event.target_type, event.target_id, event.ip, event.user_agent, data_text, event.prev_hash, digest,
    )  # fmt: skip


@pytest.mark.parametrize("event", events(), ids=lambda e: repr(e.action)[:20] + str(e.seq))
def test_verification_accepts_every_stored_event_and_nothing_else(event: SimpleNamespace) -> None:
    """`dpa audit verify` reads `data` as the text the database holds (json.dumps of it, as SQLAlchemy writes it)
    and tries msgspec's bytes before the exact formula: whichever decides, a genuine event passes and a changed
    one does not (floats such as 1e16 and ints past 64 bits spell differently in msgspec)."""
    digest = reference_hash(event)
    stored = json.dumps(event.data)
    assert _stored_matches(event, stored, digest)
    assert not _stored_matches(event, json.dumps({**event.data, "added": 1}), digest)
    assert not _stored_matches(event, stored, "0" * 64)
    assert not _stored_matches(event, "{not json", digest)  # rewritten outside the service: a mismatch, no crash
