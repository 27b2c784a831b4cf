"""A Subscriber signs through DocuSign in a real browser: `dpa serve` pointed at the DocuSign stand-in (the real
SDK, HTTPS with a test CA made for this module), embedded signing in DocuSign's view, the Connect message posted
back to the service, and legal seeing the envelope and its events."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from dpa_service.agreements.docusign_standin import StandIn
from tests.e2e.conftest import LiveServer, _free_port, serving
from tests.e2e.support import sign_in_by_email, sign_in_with_key
from tests.helpers.agreements import request_variables


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    server = StandIn(tmp_path_factory.mktemp("standin"), deliver_connect=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def docusign_server(tmp_path_factory: pytest.TempPathFactory, standin: StandIn) -> Iterator[LiveServer]:
    """`dpa demo` then `dpa serve` with the DOCUSIGN_* settings the stand-in prints (PUBLIC_BASE_URL: Connect
    must reach the service)."""
    var_dir = tmp_path_factory.mktemp("live-docusign")
    port = _free_port()
    with serving(var_dir, port, **standin.environment(), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}") as server:
        yield server


def _wait_for(check: Any, what: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_subscriber_signs_in_docusigns_view_and_legal_sees_the_envelope(
    docusign_server: LiveServer, standin: StandIn, browser: Any
) -> None:
    server = docusign_server
    owner_key = server.keys["tenants"]["Acme Retail"]["api_key"]
    with server.api(owner_key) as api:
        me = api.get("/me").json()
        created = api.post("/agreements", json={"template_key": "standard-dpa", "variables": request_variables()})
        agreement_id = str(created.json()["id"])
        assert api.post(f"/agreements/{agreement_id}/submit").status_code == 200

    context = browser.new_context(ignore_https_errors=True)  # the stand-in's certificate is from a test CA
    page = context.new_page()
    sign_in_by_email(page, server, me["email"])  # signing in by e-mail link verifies the address: embedded signing
    page.goto(f"{server.url}/app/agreements/{agreement_id}")
    page.fill("#signer-name", me["name"])
    page.fill("#signer-email", me["email"])
    page.fill("#signer-title", "Managing Director")
    page.select_option("#provider", "docusign")
    page.get_by_role("button", name="Send for signature").click()
    page.wait_for_url(f"{server.url}/app/agreements/{agreement_id}", timeout=30_000)
    assert "Your DocuSign envelope is ready" in page.content()
    page.get_by_role("link", name="Sign in DocuSign").click()
    page.wait_for_url(f"{standin.base_uri}/signing/**", timeout=30_000)

    # DocuSign's view (the stand-in's), opened for her: she reviews and finishes there.
    assert page.url.startswith(standin.base_uri + "/signing/"), page.url
    assert "Please review and act on this document" in page.content()
    page.get_by_role("button", name="Finish").click()
    page.wait_for_url(f"{server.url}/app/agreements/{agreement_id}", timeout=30_000)
    assert page.url.startswith(f"{server.url}/app/agreements/{agreement_id}"), page.url
    assert "You signed in DocuSign" in page.content()

    with server.api(owner_key) as api:
        _wait_for(lambda: api.get(f"/agreements/{agreement_id}").json()["status"] == "signed", "Connect: signed")
        (envelope,) = api.get(f"/agreements/{agreement_id}/docusign").json()
    assert envelope["status"] == "completed" and envelope["combined_sha256"]

    legal = context.new_page()
    sign_in_with_key(legal, server, server.keys["staff"]["legal"]["api_key"])
    legal.goto(f"{server.url}/staff/agreements/{agreement_id}")
    text = legal.content()
    assert f"Envelope {envelope['envelope_id']}: completed" in text
    assert "envelope-completed" in text and "DocuSign audit events" in text
    context.close()
