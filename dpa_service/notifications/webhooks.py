"""Webhook signatures, endpoint secrets and the SSRF guard.

Deliveries carry `DPA-Signature: t=<unix>,v1=<hex hmac-sha256(secret, "<t>.<body>")>` and `DPA-Event-Id`
(receivers de-duplicate on it). Endpoint secrets are shown once and stored encrypted with a key derived from
the service secret, since the service must sign with them. URLs must be http(s) and resolve only to public
addresses unless DPA_WEBHOOK_ALLOW_PRIVATE is set (development only): the guard is `ssrf`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from dpa_service.core.secrets import Sealer
from dpa_service.notifications.ssrf import UnsafeUrl, check_url

__all__ = ["UnsafeUrl", "check_url", "new_secret", "open_secret", "signature_header", "verify_signature"]


@lru_cache(maxsize=4)
def _sealer(app_secret: bytes) -> Sealer:
    return Sealer(app_secret, b"dpa webhook endpoint secret")


def new_secret(app_secret: bytes) -> tuple[str, bytes]:
    """A new endpoint secret (shown once) and its sealed form for storage."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    return secret, _sealer(app_secret).seal(secret.encode())


def open_secret(app_secret: bytes, sealed: bytes) -> str:
    return _sealer(app_secret).open(sealed).decode()


def signature_header(secret: str, timestamp: int, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


SIGNATURE_TOLERANCE_SECONDS = 300


def verify_signature(
    secret: str, header: str, body: bytes, *, now: float, tolerance: int = SIGNATURE_TOLERANCE_SECONDS
) -> bool:
    """What a receiver checks (README, "Receiving webhooks"): the HMAC of `<t>.<body>` matches, compared in
    constant time, and `t` is within `tolerance` seconds of the receiver's clock, so a captured delivery cannot be
    replayed later. De-duplicate on `DPA-Event-Id` as well: a retry re-sends the same event."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp, signature = parts.get("t", ""), parts.get("v1", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)
