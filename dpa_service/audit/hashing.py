"""How an audit event is hashed: `sha256(canonical_json(event) + prev_hash)`, the one formula every writer and the
verifier share (stored hashes depend on these exact bytes)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from dpa_service.audit.models import AuditEvent
from dpa_service.core.clock import as_utc

# One encoder made once: json.dumps with these options would build a new one per call (a third of a hash's time).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_json(value: Any) -> str:
    return _CANONICAL.encode(value)


# json.dumps(ensure_ascii=False)'s own string encoder (C): a field encoded with it reads as canonical_json has it.
_string = json.encoder.encode_basestring


def _rfc3339(value: datetime) -> str:
    """`rfc3339`, without converting a value that is in UTC already (as every stored one is on PostgreSQL)."""
    return (value if value.tzinfo is UTC else as_utc(value)).isoformat()[:-6] + "Z"  # [:-6]: the "+00:00"


def _around_data(
    chain: str,
    tenant_id: uuid.UUID | None,
    seq: int,
    at: datetime,
    actor_id: uuid.UUID | None,
    actor_role: str | None,
    action: str,
    target_type: str,
    target_id: str | None,
    ip: str | None,
    user_agent: str | None,
) -> tuple[str, str]:
    """`canonical_json` of the event's fields (the keys sorted) up to `"data":` and after its value: the one byte
    layout `hash_of` and `stored_event_matches` both hash. Written out field by field rather than as one
    `canonical_json(dict)`: the same bytes (a test compares the two on awkward values), in a third of the time."""
    # Conditional expressions, not a helper per optional field: this runs once per event of every verification.
    actor = "null" if actor_id is None else f'"{actor_id}"'  # a UUID's text needs no escaping
    tenant = "null" if tenant_id is None else f'"{tenant_id}"'
    before = (
        f'{{"action":{_string(action)},"actor_id":{actor},'
        f'"actor_role":{"null" if actor_role is None else _string(actor_role)},"at":"{_rfc3339(at)}",'
        f'"chain":{_string(chain)},"data":'
    )
    after = (
        f',"ip":{"null" if ip is None else _string(ip)},"seq":{int(seq)},'
        f'"target_id":{"null" if target_id is None else _string(target_id)},"target_type":{_string(target_type)},'
        f'"tenant_id":{tenant},"user_agent":{"null" if user_agent is None else _string(user_agent)}}}'
    )
    return before, after


def hash_of(
    chain: str,
    tenant_id: uuid.UUID | None,
    seq: int,
    at: datetime,
    actor_id: uuid.UUID | None,
    actor_role: str | None,
    action: str,
    target_type: str,
    target_id: str | None,
    ip: str | None,
    user_agent: str | None,
    data: Any,
    prev_hash: str,
) -> str:
    """sha256 of `canonical_json` of the event's fields (the keys sorted) followed by `prev_hash`."""
    before, after = _around_data(
        chain, tenant_id, seq, at, actor_id, actor_role, action, target_type, target_id, ip, user_agent
    )
    return hashlib.sha256(f"{before}{_CANONICAL.encode(data)}{after}{prev_hash}".encode()).hexdigest()


def _no_floats(text: str) -> float:
    raise ValueError("a float: the exact formula spells it")


# msgspec's sorted encoding of parsed JSON is canonical_json's bytes for the values events hold (strings, ints,
# lists, objects), at a fifth of the stdlib's parse and encode. Floats are where the two spell a value differently
# (1e16 against 1e+16), so an event holding one goes to the exact formula: a digest over msgspec's spelling of a
# float must not pass.
_parse_json = msgspec.json.Decoder(float_hook=_no_floats).decode
_sorted_json = msgspec.json.Encoder(order="sorted").encode


def stored_event_matches(
    chain: str,
    tenant_id: uuid.UUID | None,
    seq: int,
    at: datetime,
    actor_id: uuid.UUID | None,
    actor_role: str | None,
    action: str,
    target_type: str,
    target_id: str | None,
    ip: str | None,
    user_agent: str | None,
    data_text: str,
    prev_hash: str,
    digest: str,
) -> bool:
    """Whether a stored event (`data` as its stored JSON text) hashes to `digest`, as `dpa audit verify` asks of
    every event. The bytes are built with msgspec first; only when those do not match does `hash_of`, the exact
    formula, decide. Without floats the fast bytes are canonical_json's, byte for byte, so the fast path saves time
    and never changes a verdict."""
    try:
        data = _sorted_json(_parse_json(data_text))
    except (msgspec.DecodeError, msgspec.EncodeError, OverflowError):
        data = None
    if data is not None:
        before, after = _around_data(
            chain, tenant_id, seq, at, actor_id, actor_role, action, target_type, target_id, ip, user_agent
        )
        digest_of = hashlib.sha256(before.encode())
        digest_of.update(data)
        digest_of.update(f"{after}{prev_hash}".encode())
        if digest_of.hexdigest() == digest:
            return True
    try:
        parsed = json.loads(data_text)
    except ValueError:  # not JSON at all: rewritten outside the service
        return False
    exact = hash_of(chain, tenant_id, seq, at, actor_id, actor_role, action, target_type, target_id, ip, user_agent,
                    parsed, prev_hash)  # fmt: skip
    return exact == digest


_HASHED = ("chain", "tenant_id", "seq", "at", "actor_id", "actor_role", "action", "target_type", "target_id", "ip",
           "user_agent", "data")  # fmt: skip


def row_hash(fields: Mapping[str, Any], prev_hash: str) -> str:
    """`hash_of` a row about to be inserted (the fan-outs build plain rows, not AuditEvent objects)."""
    return hash_of(**{name: fields[name] for name in _HASHED}, prev_hash=prev_hash)


def event_hash(event: AuditEvent) -> str:
    return hash_of(**{name: getattr(event, name) for name in _HASHED}, prev_hash=event.prev_hash)
