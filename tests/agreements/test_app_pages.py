"""A Subscriber's agreement pages: request a DPA through the form generated from the template's schema, fix a
field error, submit, send for signature, download the executed PDF and read the evidence; members read only;
another tenant's agreement is 404 on every page."""

from __future__ import annotations

import hashlib
import re

import httpx
import pytest

from dpa_service.core.db import Database
from dpa_service.core.mailer import read_log
from dpa_service.core.settings import Settings
from tests.helpers.agreements import approve_standard_dpa, new_agreement, to_status
from tests.helpers.api import Api, verify_email
from tests.helpers.pages import Browser
from tests.helpers.subprocessors import publish

pytestmark = pytest.mark.html_face  # see tests/conftest.py: SQLite only


@pytest.fixture
async def owner(admin: Api, db: Database) -> Api:
    await approve_standard_dpa(db)
    return await admin.new_tenant(legal_name="Kestrel & Finch Homeware GmbH")


@pytest.fixture
async def legal(admin: Api) -> Api:
    return await admin.new_staff("legal")


async def _browser(client: httpx.AsyncClient, api: Api) -> Browser:
    browser = Browser(client)
    signed_in = await browser.sign_in_with_key(api.key)
    assert signed_in.status_code == 303, signed_in.text
    return browser


def _request_form(**overrides: str | list[str]) -> dict[str, str | list[str]]:
    """What a Subscriber types into the request form (the controller part comes pre-filled)."""
    form: dict[str, str | list[str]] = {
        "variables.controller.legal_name": "Kestrel & Finch Homeware GmbH",
        "variables.controller.address": "Unter den Linden 1, 10117 Berlin",
        "variables.controller.country": "DE",
        "variables.controller.contact_email": "privacy@kestrel.example",
        "variables.signatory.name": "Olive Owner",
        "variables.signatory.title": "Managing Director",
        "variables.signatory.email": "olive@kestrel.example",
        "variables.processing.subject_matter": "Live chat on our web shop",
        "variables.processing.nature_and_purpose": "Hosting and routing chat conversations",
        "variables.processing.duration": "The term of the Main Agreement",
        "variables.processing.data_subject_categories": "Website visitors\nCustomers",
        "variables.processing.personal_data_categories": "Names\nE-mail addresses\nChat transcripts",
        "variables.processing.retention": "Deleted 30 days after the end of the Main Agreement",
        "variables.transfers.mechanisms": ["scc-2021", "eu-us-dpf"],
        "variables.governing_law": "DE",
        "custom_clauses.0.title": "Audit window",
        "custom_clauses.0.text": "Audits take place within 30 days of notice.",
        "custom_clauses.1.title": "",
        "custom_clauses.1.text": "",
        "custom_clauses.2.title": "",
        "custom_clauses.2.text": "",
    }
    form.update(overrides)
    return form


def _agreement_id(location: str) -> str:
    found = re.fullmatch(r"/app/agreements/([0-9a-f-]{36})", location)
    assert found, location
    return found.group(1)


async def test_a_subscriber_requests_a_dpa_with_a_custom_clause_through_the_form(
    client: httpx.AsyncClient, owner: Api
) -> None:
    browser = await _browser(client, owner)
    form = await browser.get("/app/agreements/new")
    assert form.status_code == 200
    # The form comes from the schema, pre-filled from the tenant profile and the signed-in user.
    assert 'name="variables.processing.data_subject_categories"' in form.text and "One per line" in form.text
    assert 'value="Kestrel &amp; Finch Homeware GmbH"' in form.text
    assert 'value="Olive Owner"' in form.text
    assert "Standard Contractual Clauses" in form.text and 'value="scc-2021"' in form.text
    assert ">Germany</option>" in form.text and ">United States" not in form.text.split("governing_law")[-1]
    assert form.text.count('name="custom_clauses.') >= 6

    created = await browser.post("/app/agreements", _request_form())
    assert created.status_code == 303
    agreement_id = _agreement_id(created.headers["location"])
    page = await browser.get(created.headers["location"])
    assert "Your draft DPA is saved" in page.text and "Audit window" in page.text
    assert "Customers" in page.text and "Standard Contractual Clauses" in page.text
    stored = (await owner.get(f"/agreements/{agreement_id}")).json()
    assert stored["status"] == "draft"
    assert stored["custom_clauses"] == [
        {"title": "Audit window", "text": "Audits take place within 30 days of notice."}
    ]
    assert stored["variables"]["processing"]["data_subject_categories"] == ["Website visitors", "Customers"]
    assert stored["variables"]["transfers"]["mechanisms"] == ["scc-2021", "eu-us-dpf"]


async def test_a_missing_required_field_is_shown_beside_it_with_the_rest_of_the_input_kept(
    client: httpx.AsyncClient, owner: Api
) -> None:
    browser = await _browser(client, owner)
    await browser.get("/app/agreements/new")
    refused = await browser.post("/app/agreements", _request_form(**{"variables.processing.subject_matter": "  "}))
    assert refused.status_code == 422
    field = refused.text.split('id="variables-processing-subject_matter-error"')
    assert len(field) == 2 and field[1].startswith(">is required")
    assert "Website visitors\nCustomers</textarea>" in refused.text
    assert 'value="scc-2021" checked' in refused.text and 'value="eu-us-dpf" checked' in refused.text
    assert 'value="Audit window"' in refused.text and "within 30 days of notice.</textarea>" in refused.text
    assert (await owner.get("/agreements")).json()["items"] == []


async def test_an_incomplete_custom_clause_is_named_beside_its_text(client: httpx.AsyncClient, owner: Api) -> None:
    browser = await _browser(client, owner)
    await browser.get("/app/agreements/new")
    refused = await browser.post("/app/agreements", _request_form(**{"custom_clauses.1.title": "Liability cap"}))
    assert refused.status_code == 422 and 'id="custom_clauses-1-text-error"' in refused.text
    assert 'value="Liability cap"' in refused.text


async def test_submitting_a_draft_with_a_custom_clause_sends_it_to_legal_review(
    client: httpx.AsyncClient, owner: Api
) -> None:
    browser = await _browser(client, owner)
    await browser.get("/app/agreements/new")
    agreement_id = _agreement_id((await browser.post("/app/agreements", _request_form())).headers["location"])
    await browser.get(f"/app/agreements/{agreement_id}")
    submitted = await browser.post(f"/app/agreements/{agreement_id}/submit")
    assert submitted.status_code == 303
    page = await browser.get(submitted.headers["location"])
    assert "legal team reviews your custom clauses" in page.text
    assert (await owner.get(f"/agreements/{agreement_id}")).json()["status"] == "in_legal_review"
    locked = await browser.get(f"/app/agreements/{agreement_id}/edit")
    assert locked.status_code == 409 and "can be edited only while it is a draft" in locked.text


async def test_editing_a_draft_keeps_what_was_not_changed_and_the_preview_is_a_pdf(
    client: httpx.AsyncClient, owner: Api
) -> None:
    agreement = await new_agreement(owner)
    browser = await _browser(client, owner)
    edit = await browser.get(f"/app/agreements/{agreement['id']}/edit")
    assert edit.status_code == 200 and "Customers and prospective customers of the Subscriber\n" in edit.text
    saved = await browser.post(f"/app/agreements/{agreement['id']}/edit", _request_form())
    assert saved.status_code == 303
    stored = (await owner.get(f"/agreements/{agreement['id']}")).json()
    assert stored["variables"]["signatory"]["title"] == "Managing Director"
    assert stored["custom_clauses"][0]["title"] == "Audit window"
    preview = await browser.get(f"/app/agreements/{agreement['id']}/preview")
    assert preview.status_code == 200 and preview.headers["content-type"] == "application/pdf"
    assert preview.content.startswith(b"%PDF") and "attachment" in preview.headers["content-disposition"]


async def test_the_dashboard_shows_what_needs_action_and_pending_subprocessor_changes(
    client: httpx.AsyncClient, owner: Api, legal: Api
) -> None:
    executed = await to_status(owner, legal, "executed")
    change = await publish(legal)
    asked = await to_status(owner, legal, "changes_requested")
    browser = await _browser(client, owner)
    home = await browser.get("/app/")
    assert home.status_code == 200
    assert executed["id"] in home.text and str(executed["effective_date"]) in home.text
    assert "asked for changes" in home.text and "shorter" in home.text and asked["id"] in home.text
    assert change["added"][0]["name"] in home.text and "Object by" in home.text
    assert "Request a DPA" not in home.text  # one is in progress


@pytest.mark.parametrize("status", ["draft", "ready_for_signature", "out_for_signature"])
async def test_the_dashboard_tells_what_to_do_next_in_every_state_of_a_dpa_in_progress(
    client: httpx.AsyncClient, owner: Api, legal: Api, status: str
) -> None:
    agreement = await to_status(owner, legal, status)
    home = await (await _browser(client, owner)).get("/app/")
    assert home.status_code == 200, home.text
    expected = {"draft": "Review and submit", "ready_for_signature": "Send for signature",
                "out_for_signature": "e-mailed a link"}[status]  # fmt: skip
    assert expected in home.text and agreement["id"] in home.text


async def test_a_new_subscriber_is_offered_to_request_a_dpa(client: httpx.AsyncClient, owner: Api) -> None:
    browser = await _browser(client, owner)
    home = await browser.get("/app/")
    assert "You have no executed DPA yet" in home.text and 'href="/app/agreements/new"' in home.text


async def test_signing_oneself_goes_straight_to_the_signing_page(
    client: httpx.AsyncClient, owner: Api, legal: Api
) -> None:
    agreement = await to_status(owner, legal, "ready_for_signature")
    me = await verify_email(owner)  # only a verified address signs on screen (the next test: an unverified one)
    browser = await _browser(client, owner)
    page = await browser.get(f"/app/agreements/{agreement['id']}")
    assert "Send for signature" in page.text
    sent = await browser.post(
        f"/app/agreements/{agreement['id']}/signature-requests",
        {"signer.name": me["name"], "signer.email": me["email"], "signer.title": "CEO"},
    )
    assert sent.status_code == 303 and "/sign/" in sent.headers["location"]
    signing = await browser.http.get(sent.headers["location"])
    assert signing.status_code == 200 and "Review and sign" in signing.text
    assert (await owner.get(f"/agreements/{agreement['id']}")).json()["status"] == "out_for_signature"


async def test_an_unverified_owner_signing_for_herself_is_sent_to_her_inbox(
    client: httpx.AsyncClient, owner: Api, legal: Api, settings: Settings
) -> None:
    agreement = await to_status(owner, legal, "ready_for_signature")
    me = (await owner.get("/me")).json()
    assert me["email_verified"] is False
    browser = await _browser(client, owner)
    await browser.get(f"/app/agreements/{agreement['id']}")
    sent = await browser.post(
        f"/app/agreements/{agreement['id']}/signature-requests",
        {"signer.name": me["name"], "signer.email": me["email"], "signer.title": "CEO"},
    )
    assert sent.status_code == 303 and sent.headers["location"] == f"/app/agreements/{agreement['id']}"
    page = await browser.get(sent.headers["location"])
    assert f"We e-mailed a signing link to {me['email']}: check your inbox" in page.text
    assert "once your address is confirmed" in page.text
    mails = [m for m in read_log(settings.var_dir) if m["to"] == me["email"] and "/sign/" in m["body"]]
    assert len(mails) == 1
    assert (await owner.get(f"/agreements/{agreement['id']}")).json()["status"] == "out_for_signature"


async def test_a_colleagues_signature_is_requested_by_email(
    client: httpx.AsyncClient, owner: Api, legal: Api, settings: Settings
) -> None:
    agreement = await to_status(owner, legal, "ready_for_signature")
    browser = await _browser(client, owner)
    await browser.get(f"/app/agreements/{agreement['id']}")
    sent = await browser.post(
        f"/app/agreements/{agreement['id']}/signature-requests",
        {"signer.name": "Colin Colleague", "signer.email": "colin@kestrel.example", "signer.title": "CFO"},
    )
    assert sent.status_code == 303 and sent.headers["location"] == f"/app/agreements/{agreement['id']}"
    page = await browser.get(sent.headers["location"])
    assert "We e-mailed a signing link to colin@kestrel.example" in page.text
    mails = [m for m in read_log(settings.var_dir) if m["to"] == "colin@kestrel.example"]
    assert mails and "/sign/" in mails[-1]["body"]


async def test_a_signer_without_an_email_is_refused_beside_the_field(
    client: httpx.AsyncClient, owner: Api, legal: Api
) -> None:
    agreement = await to_status(owner, legal, "ready_for_signature")
    browser = await _browser(client, owner)
    await browser.get(f"/app/agreements/{agreement['id']}")
    refused = await browser.post(
        f"/app/agreements/{agreement['id']}/signature-requests",
        {"signer.name": "Colin Colleague", "signer.email": "", "signer.title": "CFO"},
    )
    assert refused.status_code == 422 and 'id="signer-email-error"' in refused.text
    assert 'value="Colin Colleague"' in refused.text
    assert (await owner.get(f"/agreements/{agreement['id']}")).json()["status"] == "ready_for_signature"


async def test_the_executed_pdf_downloads_with_the_apis_sha256_and_the_evidence_is_readable(
    client: httpx.AsyncClient, owner: Api, legal: Api
) -> None:
    agreement = await to_status(owner, legal, "executed")
    browser = await _browser(client, owner)
    pdf = await browser.get(f"/app/agreements/{agreement['id']}/document")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(pdf.content).hexdigest() == agreement["document_sha256"]
    assert pdf.headers["x-content-sha256"] == agreement["document_sha256"]
    evidence = await browser.get(f"/app/agreements/{agreement['id']}/evidence")
    assert evidence.status_code == 200 and "Olive Owner" in evidence.text and "Typed name" in evidence.text
    assert "by opening the confirmation link e-mailed to it" in evidence.text  # how her address was verified
    assert agreement["document_sha256"] in evidence.text
    certificate = await browser.get(f"/app/agreements/{agreement['id']}/certificate")
    assert "part of the executed PDF" in certificate.text


async def test_a_member_sees_agreements_but_cannot_send_them_for_signature(
    client: httpx.AsyncClient, owner: Api, legal: Api
) -> None:
    agreement = await to_status(owner, legal, "ready_for_signature")
    member = await owner.new_user("member")
    browser = await _browser(client, member)
    page = await browser.get(f"/app/agreements/{agreement['id']}")
    assert page.status_code == 200 and "An owner or admin of your organisation sends it" in page.text
    assert "signer.email" not in page.text
    assert (await browser.get("/app/agreements")).status_code == 200
    refused = await browser.post(
        f"/app/agreements/{agreement['id']}/signature-requests",
        {"signer.name": "M", "signer.email": "m@x.example", "signer.title": "M"},
    )
    assert refused.status_code == 404
    assert (await owner.get(f"/agreements/{agreement['id']}")).json()["status"] == "ready_for_signature"


@pytest.mark.parametrize("role", ["owner", "member"])
async def test_a_subscriber_voids_before_signing_as_the_api_allows(
    client: httpx.AsyncClient, owner: Api, role: str
) -> None:
    agreement = await new_agreement(owner)
    browser = await _browser(client, owner if role == "owner" else await owner.new_user("member"))
    await browser.get(f"/app/agreements/{agreement['id']}")
    voided = await browser.post(f"/app/agreements/{agreement['id']}/void", {"reason": "Wrong entity"})
    assert voided.status_code == 303
    page = await browser.get(voided.headers["location"])
    assert "voided" in page.text and "Wrong entity" in page.text


async def test_another_tenants_agreement_pages_are_404(
    client: httpx.AsyncClient, admin: Api, owner: Api, legal: Api
) -> None:
    agreement = await to_status(owner, legal, "executed")
    other = await _browser(client, await admin.new_tenant())
    base = f"/app/agreements/{agreement['id']}"
    for path in ("", "/edit", "/preview", "/document", "/certificate", "/evidence"):
        assert (await other.get(base + path)).status_code == 404, path
    for path in ("/edit", "/submit", "/void", "/signature-requests"):
        assert (await other.post(base + path, {"signer.name": "X"})).status_code == 404, path
    assert agreement["id"] not in (await other.get("/app/agreements")).text


async def test_the_list_filters_by_status(client: httpx.AsyncClient, owner: Api, legal: Api) -> None:
    draft = await new_agreement(owner)
    voided = await to_status(owner, legal, "voided")
    browser = await _browser(client, owner)
    everything = await browser.get("/app/agreements")
    assert draft["id"] in everything.text and voided["id"] in everything.text
    only_voided = await browser.get("/app/agreements", status="voided")
    assert voided["id"] in only_voided.text and draft["id"] not in only_voided.text
