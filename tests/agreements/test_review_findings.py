"""Guards found in review: links, roles, bad input on the signing page, mail failures, changed documents."""

from __future__ import annotations

import io

import httpx
import pytest
from pypdf import PdfReader

from dpa_service.app import create_app
from dpa_service.core import registry
from dpa_service.core.db import Database
from dpa_service.core.mailer import read_log
from dpa_service.core.settings import Settings
from dpa_service.logs import redact
from tests.conftest import running
from tests.helpers.agreements import approve_standard_dpa, request_own_signature, request_variables, to_status, token_of
from tests.helpers.api import Api


@pytest.fixture
async def parties(admin: Api, db: Database) -> tuple[Api, Api]:
    await approve_standard_dpa(db)
    return await admin.new_tenant(), await admin.new_staff("legal")


async def test_mailed_links_follow_public_base_url_not_the_host_header(
    parties: tuple[Api, Api], settings: Settings
) -> None:
    owner, legal = parties
    app = create_app(settings.model_copy(update={"public_base_url": "https://dpa.processor.example"}))
    async with (
        running(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://attacker.example") as http,
    ):
        tenant_owner = Api(http, owner.key)
        aid = (await to_status(tenant_owner, Api(http, legal.key), "ready_for_signature"))["id"]
        response = await tenant_owner.post(
            f"/agreements/{aid}/signature-requests",
            {"signer": {"name": "Cathy", "email": "cathy@victim.example", "title": "CFO"}},
            headers={"Host": "attacker.example"},
        )
        assert response.status_code == 201
    mail = [m for m in read_log(settings.var_dir) if m["to"] == "cathy@victim.example"][-1]
    assert "https://dpa.processor.example/sign/" in mail["body"] and "attacker.example" not in mail["body"]


async def test_all_staff_read_documents_and_evidence(parties: tuple[Api, Api], admin: Api) -> None:
    owner, legal = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    assert (await admin.get(f"/agreements/{aid}/document")).status_code == 200
    assert (await admin.get(f"/agreements/{aid}/evidence")).status_code == 200


async def test_the_signing_page_answers_bad_input_clearly(parties: tuple[Api, Api], client) -> None:
    owner, legal = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    url = await request_own_signature(owner, aid)
    malformed = await client.post(
        f"/sign/{token_of(url)}", content=b'{"typed_name": ', headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    unknown = await client.post("/sign/no-such-token", json={"typed_name": ""})
    assert unknown.status_code == 404
    page = await client.post("/sign/no-such-token", data={"typed_name": ""})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    form_errors = await client.post(f"/sign/{token_of(url)}", data={"typed_name": "Olive"})
    assert form_errors.status_code == 422 and "authorized to sign" in form_errors.text
    assert (await owner.get(f"/agreements/{aid}")).json()["status"] == "out_for_signature"


async def test_a_mail_failure_does_not_turn_a_committed_request_into_an_error(
    parties: tuple[Api, Api],
    client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner, legal = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]

    async def broken(*_args: object) -> None:
        raise OSError("SMTP server unreachable")

    monkeypatch.setattr(client.app.state.mailer, "send", broken)
    response = await owner.post(
        f"/agreements/{aid}/signature-requests", {"signer": {"name": "C", "email": "c@x.example", "title": "CFO"}}
    )
    assert response.status_code == 201
    assert (await owner.get(f"/agreements/{aid}")).json()["status"] == "out_for_signature"


async def test_countersigning_refuses_when_the_signed_document_would_change(
    parties: tuple[Api, Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, legal = parties
    aid = (await to_status(owner, legal, "signed"))["id"]
    processor = {**registry.processor(), "legal_name": "Renamed Processor Ltd"}
    monkeypatch.setattr(registry, "processor", lambda: processor)
    response = await legal.post(f"/agreements/{aid}/countersign")
    assert response.status_code == 409
    assert (await owner.get(f"/agreements/{aid}")).json()["status"] == "signed"


async def test_a_list_change_after_signing_leaves_the_signed_annex_as_signed(parties: tuple[Api, Api]) -> None:
    owner, legal = parties
    signed = await to_status(owner, legal, "signed")
    pinned = signed["subprocessor_list_version"]
    assert pinned is not None
    change = await legal.post(
        "/subprocessor-changes",
        {
            "add": [
                {
                    "name": "NewCo Analytics",
                    "entity": "NewCo Inc.",
                    "purpose": "Product analytics",
                    "locations": ["US"],
                    "data_categories": ["usage data"],
                    "transfer_mechanism": "scc-2021",
                }
            ],
            "reason": "Better analytics",
        },
    )
    assert change.status_code == 201, change.text
    response = await legal.post(f"/agreements/{signed['id']}/countersign")
    assert response.status_code == 200, response.text
    assert response.json()["subprocessor_list_version"] == pinned
    pdf = await owner.get(f"/agreements/{signed['id']}/document")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert f"pinned to list version {pinned}" in " ".join(text.split())
    assert "NewCo" not in text


def test_signing_tokens_are_cut_out_of_access_logs() -> None:
    assert redact('"POST /sign/abcDEF_123-xyz HTTP/1.1"') == '"POST /sign/<redacted> HTTP/1.1"'
    assert redact("/sign/abc/document") == "/sign/<redacted>/document"


async def test_request_variables_are_enough(parties: tuple[Api, Api]) -> None:
    owner, _ = parties
    assert (await owner.post("/agreements", {"variables": request_variables()})).status_code == 201
