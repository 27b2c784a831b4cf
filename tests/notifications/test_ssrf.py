"""The SSRF guard (issue 16): the review's targets are refused at registration and at send, by the `ipaddress`
module's classification of every address a host resolves to, with the IPv4 forms hidden inside IPv6 unwrapped;
and a delivery goes to the very address that was checked."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import httpx
import pytest
from sqlalchemy import select

from dpa_service.core.db import Database, Scope
from dpa_service.notifications import ssrf
from dpa_service.notifications.models import WebhookDelivery
from dpa_service.notifications.outbox import enqueue_many
from dpa_service.notifications.worker import deliver_due, fan_out
from tests.helpers.api import Api

PUBLIC_V4 = "93.184.216.34"
# What the (mocked) resolver answers for the host names below.
DNS: dict[str, list[str]] = {
    "localhost": ["127.0.0.1", "::1"],
    "internal.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "mixed.example": [PUBLIC_V4, "10.0.0.5"],  # one private answer among public ones is enough to refuse
    "mapped.example": ["::ffff:192.168.0.1"],
    "nat64.example": ["64:ff9b::a00:1"],
    "multicast.example": ["ff02::1"],
    "public.example": [PUBLIC_V4, "2606:2800:220:1:248:1893:25c8:1946"],
}

REFUSED = [
    # IPv4 loopback, RFC 1918, link-local (cloud metadata), CGNAT, "this network", broadcast, multicast,
    # documentation, benchmarking, reserved, IETF protocol assignments, the 6to4 relay anycast
    "http://127.0.0.1/", "http://127.1.2.3:8080/x", "http://10.0.0.1/", "http://172.16.5.4/", "http://172.31.255.1/",
    "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/", "http://100.127.255.254/",
    "http://0.0.0.0/", "http://0.1.2.3/", "http://255.255.255.255/", "http://224.0.0.1/", "http://239.255.255.250/",
    "http://192.0.2.1/", "http://198.51.100.7/", "http://203.0.113.9/", "http://198.18.0.1/", "http://240.0.0.1/",
    "http://192.0.0.8/", "http://192.88.99.1/",
    # IPv6 loopback, unspecified, ULA fc00::/7, link-local, site-local, multicast, documentation, discard, Teredo
    "http://[::1]/", "http://[::]/", "http://[fc00::1]/", "http://[fd12:3456::1]/", "http://[fe80::1]/",
    "http://[fec0::1]/", "http://[ff02::1]/", "http://[ff05::1:3]/", "http://[2001:db8::1]/", "http://[3fff::1]/",
    "http://[100::1]/", "http://[2001::1]/", "http://[fe80::1%25eth0]/",
    # IPv4-mapped, IPv4-compatible, NAT64 (well-known and local-use) and 6to4 forms of internal addresses
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:10.0.0.1]/", "http://[::ffff:a9fe:a9fe]/", "http://[::127.0.0.1]/",
    "http://[::10.0.0.1]/", "http://[::8.8.8.8]/", "http://[64:ff9b::127.0.0.1]/", "http://[64:ff9b::a00:1]/",
    "http://[64:ff9b:1::1]/", "http://[2002:7f00:1::1]/", "http://[2002:c0a8:101::1]/",
    # IPv4 spelled as one number, in hex, in octal, or shortened (127.0.0.1 to the resolver)
    "http://2130706433/", "http://0x7f.1/", "http://0177.0.0.1/", "http://017700000001/", "http://127.1/",
    "http://0x7f000001/",
    # host names resolving to internal addresses
    "http://localhost/", "http://internal.example/", "http://metadata.example/", "http://mixed.example/",
    "http://mapped.example/", "http://nat64.example/", "http://multicast.example/",
    # not a URL a webhook may use
    "ftp://public.example/", "http://user:pass@public.example/", "http://public.example:0/",
    "http://public.example:99999/", "http://[::1", "http://unknown.example/",
]  # fmt: skip

ALLOWED = [
    f"http://{PUBLIC_V4}/hook", "https://public.example/hook?x=1", "http://[2606:2800:220:1:248:1893:25c8:1946]/",
    "http://[64:ff9b::808:808]/", "http://[2002:808:808::1]/", "http://[::ffff:8.8.8.8]/",
]  # fmt: skip


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    answers = dict(DNS)

    async def resolve(host: str, port: int) -> Sequence[str]:
        if host not in answers:
            raise OSError("Name or service not known")
        return answers[host]

    monkeypatch.setattr(ssrf, "resolve", resolve)
    return answers


def test_the_table_covers_the_reviews_targets() -> None:
    assert len(REFUSED) >= 50


@pytest.mark.parametrize("url", REFUSED)
async def test_internal_targets_are_refused_at_registration_and_at_send(url: str) -> None:
    with pytest.raises(ssrf.UnsafeUrl):
        await ssrf.check_url(url, allow_private=False)
    with pytest.raises(ssrf.UnsafeUrl):
        await ssrf.destination(url, allow_private=False)


@pytest.mark.parametrize("url", ALLOWED)
async def test_public_targets_are_allowed(url: str) -> None:
    await ssrf.check_url(url, allow_private=False)


async def test_a_delivery_connects_to_the_checked_address_with_the_original_host() -> None:
    https = await ssrf.destination("https://public.example/hook?x=1", allow_private=False)
    assert https.url == f"https://{PUBLIC_V4}:443/hook?x=1"
    assert https.headers == {"Host": "public.example"} and https.extensions == {"sni_hostname": "public.example"}
    v6 = await ssrf.destination("http://[2606:2800:220:1:248:1893:25c8:1946]:8080/h", allow_private=False)
    assert v6.url == "http://[2606:2800:220:1:248:1893:25c8:1946]:8080/h"
    assert v6.headers == {"Host": "[2606:2800:220:1:248:1893:25c8:1946]:8080"} and v6.extensions == {}


async def test_registration_refuses_over_the_api_naming_url(admin: Api) -> None:
    owner = await admin.new_tenant()
    for url in ("http://[::ffff:127.0.0.1]/", "http://0x7f.1/", "http://mixed.example/", "http://[64:ff9b::a00:1]/"):
        response = await owner.post("/webhook-endpoints", {"url": url, "events": ["*"]})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "url", url
    assert (await owner.get("/webhook-endpoints")).json()["items"] == []


async def test_a_host_that_resolves_internally_by_send_time_is_not_contacted(
    admin: Api, db: Database, dns: dict[str, list[str]]
) -> None:
    """DNS rebinding: public when registered, internal when sent. The worker checks again and connects to the
    address it checked, never letting the HTTP client resolve the name a second time."""
    owner = await admin.new_tenant()
    created = await owner.post("/webhook-endpoints", {"url": "http://rebind.example/hook", "events": ["*"]})
    assert created.status_code == 422  # not resolvable yet
    dns["rebind.example"] = [PUBLIC_V4]
    created = await owner.post("/webhook-endpoints", {"url": "http://rebind.example/hook", "events": ["*"]})
    assert created.status_code == 201, created.text
    sent: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    async def publish(key: str) -> None:
        async with db.transaction(Scope.system()) as session:
            payload = {"mechanism": "eu-us-dpf", "subject": "Mechanism invalidated"}
            await enqueue_many(session, "transfer.mechanism_invalidated", [(uuid.UUID(owner.tenant_id), key, payload)])
        await fan_out(db)

    secret = owner.client.app.state.secret  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        await publish("first")
        assert await deliver_due(db, secret, allow_private=False, client=client) == 1
        assert [str(r.url) for r in sent] == [f"http://{PUBLIC_V4}/hook"] and sent[0].headers["host"] == (
            "rebind.example"
        )
        dns["rebind.example"] = ["127.0.0.1"]
        await publish("second")
        assert await deliver_due(db, secret, allow_private=False, client=client) == 1
    assert len(sent) == 1, "the internal address was never contacted"
    async with db.transaction(Scope.system(), write=False) as session:
        errors = (await session.execute(select(WebhookDelivery.last_error))).scalars().all()
    assert any(error and "127.0.0.1" in error and "refused" in error for error in errors), errors
