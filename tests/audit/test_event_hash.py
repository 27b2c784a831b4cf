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

from dpa_service.audit import hashing
from dpa_service.audit.hashing import event_hash, stored_event_matches
from dpa_service.core.clock import rfc3339


def reference_hash(event: Any) -> str:
    """The formula as first written (and as every stored chain was hashed): one json.dumps of the whole body."""
    return hashlib.sha256((_canonical_body(event) + event.prev_hash).encode()).hexdigest()


def _canonical_body(event: Any) -> str:
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
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


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


def _holds_a_float(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_a_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_a_float(v) for v in value)
    return isinstance(value, float)


@pytest.mark.parametrize(
    "event", [e for e in events() if not _holds_a_float(e.data)], ids=lambda e: repr(e.action)[:20] + str(e.seq)
)
def test_the_fast_path_alone_accepts_an_event_without_floats(
    event: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """msgspec's bytes are canonical_json's for everything but floats: the exact formula is not even asked."""

    def never(*args: object, **kwargs: object) -> str:
        raise AssertionError("the exact formula was needed")

    monkeypatch.setattr(hashing, "hash_of", never)
    assert _stored_matches(event, json.dumps(event.data), reference_hash(event))


def test_a_float_goes_to_the_exact_formula() -> None:
    """A digest over msgspec's spelling of a float (1e16, not canonical_json's 1e+16) must not pass."""
    event = events()[0]
    event.data = {"a": 1e16}
    assert _stored_matches(event, json.dumps(event.data), reference_hash(event))
    spelled = hashlib.sha256((_canonical_body(event).replace("1e+16", "1e16") + event.prev_hash).encode()).hexdigest()
    assert spelled != reference_hash(event)
    assert not _stored_matches(event, json.dumps(event.data), spelled)


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
    assert not _stored_matches(SimpleNamespace(**{**vars(event), "action": "forged"}), stored, digest)
    assert not _stored_matches(SimpleNamespace(**{**vars(event), "seq": event.seq + 1}), stored, digest)
