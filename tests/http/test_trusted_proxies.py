"""Client addresses come from trusted proxies only (issue 16): `X-Forwarded-For` is believed only from a peer in
DPA_TRUSTED_PROXIES, so a client cannot choose the address that signing evidence and rate limits record."""

from __future__ import annotations

import httpx
import pytest

from dpa_service.app import create_app
from dpa_service.core.db import Database
from dpa_service.core.settings import Settings
from dpa_service.http.proxies import forwarded_client, parse_networks
from tests.conftest import running
from tests.helpers.agreements import approve_standard_dpa, request_own_signature, to_status, token_of
from tests.helpers.api import Api

TRUSTED = parse_networks("10.0.0.0/8, 2001:db8:1::/48")


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("198.51.100.9", ["6.6.6.6"], "198.51.100.9"),  # not a proxy of ours: the header is the client's invention
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", ["203.0.113.7"], "203.0.113.7"),
        ("10.0.0.2", ["6.6.6.6, 203.0.113.7"], "203.0.113.7"),  # what the client sent itself is left of its address
        ("10.0.0.2", ["6.6.6.6, 203.0.113.7, 10.1.1.1"], "203.0.113.7"),  # trusted hops are skipped
        ("10.0.0.2", ["6.6.6.6", "203.0.113.7"], "203.0.113.7"),  # the header sent twice is one list
        ("10.0.0.2", ["10.9.9.9, 10.1.1.1"], "10.9.9.9"),  # all trusted: the farthest one
        ("10.0.0.2", ["6.6.6.6, garbage"], "10.0.0.2"),  # an unreadable hop: as far as we can see
        ("10.0.0.2", ["203.0.113.7:5123"], "203.0.113.7"),
        ("10.0.0.2", ["[2001:db8:2::5]:443"], "2001:db8:2::5"),
        ("2001:db8:1::3", ["2001:db8:2::5"], "2001:db8:2::5"),
        ("::ffff:10.0.0.2", ["203.0.113.7"], "203.0.113.7"),
    ],
)
def test_the_forwarded_list_is_walked_from_the_right_skipping_trusted_hops(
    peer: str, forwarded: list[str], client: str
) -> None:
    assert forwarded_client(peer, forwarded, TRUSTED) == client


def test_a_bad_trusted_proxy_setting_refuses_to_start(tmp_path) -> None:
    from dpa_service.core.settings import Environment

    with pytest.raises(ValueError, match="DPA_TRUSTED_PROXIES"):
        Environment(DPA_VAR_DIR=tmp_path, DPA_TRUSTED_PROXIES="10.0.0.0/8, nonsense").to_settings()
    settings = Environment(DPA_VAR_DIR=tmp_path, DPA_TRUSTED_PROXIES="10.0.0.0/8, ::1").to_settings()
    assert settings.trusted_proxies == ("10.0.0.0/8", "::1")


async def _sign(owner: Api, legal: Api, http: httpx.AsyncClient, forwarded_for: str) -> dict:
    agreement = await to_status(owner, legal, "ready_for_signature")
    signing_url = await request_own_signature(owner, agreement["id"])  # verifies the owner's address first
    me = (await owner.get("/me")).json()
    signed = await http.post(
        f"/sign/{token_of(signing_url)}",
        json={"typed_name": me["name"], "consent": True, "authority_confirmed": True},
        headers={"X-Forwarded-For": forwarded_for},
    )
    assert signed.status_code == 200, signed.text
    return (await owner.get(f"/agreements/{agreement['id']}/evidence")).json()["signatures"][0]


async def test_signing_evidence_records_the_peer_unless_a_trusted_proxy_forwards(
    admin: Api, client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    await approve_standard_dpa(db)
    owner = await admin.new_tenant()
    legal = await admin.new_staff("legal")
    # The test transport's peer is 127.0.0.1, not a trusted proxy by default: the header changes nothing.
    assert (await _sign(owner, legal, client, "6.6.6.6"))["ip"] == "127.0.0.1"

    proxied = create_app(settings.model_copy(update={"trusted_proxies": ("127.0.0.1/32",)}))
    async with running(proxied):
        transport = httpx.ASGITransport(app=proxied, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
            evidence = await _sign(owner, legal, http, "6.6.6.6, 203.0.113.7")
    assert evidence["ip"] == "203.0.113.7"
