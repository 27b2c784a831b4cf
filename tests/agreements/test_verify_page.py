"""Anyone holding a PDF checks it at /verify without signing in: an executed DPA is verified, a changed copy is
not, and the form refuses a missing file or something that is not a PDF beside the file field."""

from __future__ import annotations

import httpx
import pytest

from dpa_service.core.db import Database
from tests.helpers.agreements import approve_standard_dpa, to_status
from tests.helpers.api import Api
from tests.helpers.pages import Browser

pytestmark = pytest.mark.html_face  # see tests/conftest.py: SQLite only


@pytest.fixture
async def executed(admin: Api, db: Database) -> tuple[Api, dict, bytes]:
    await approve_standard_dpa(db)
    owner, legal = await admin.new_tenant(), await admin.new_staff("legal")
    agreement = await to_status(owner, legal, "executed")
    document = await owner.get(f"/agreements/{agreement['id']}/document")
    assert document.status_code == 200
    return owner, agreement, document.content


def _pdf(content: bytes, name: str = "dpa.pdf") -> dict:
    return {"file": (name, content, "application/pdf")}


async def test_the_form_is_public_and_linked_from_every_page(client: httpx.AsyncClient) -> None:
    browser = Browser(client)
    page = await browser.get("/verify")
    assert page.status_code == 200 and "<h1>Verify a PDF</h1>" in page.text
    assert 'enctype="multipart/form-data"' in page.text and 'accept="application/pdf"' in page.text
    assert '<label for="file">PDF file' in page.text
    assert 'href="/verify">Verify a PDF</a>' in (await browser.get("/login")).text


async def test_an_executed_dpa_is_verified_and_one_changed_byte_is_caught(
    client: httpx.AsyncClient, executed: tuple[Api, dict, bytes]
) -> None:
    _, agreement, content = executed
    browser = Browser(client)
    await browser.get("/verify")
    verified = await browser.post("/verify", files=_pdf(content))
    assert verified.status_code == 200
    assert "Verified" in verified.text and "sealed by this service" in verified.text
    assert agreement["id"] not in verified.text, "an anonymous visitor is not told which agreement it is"

    changed = bytearray(content)
    changed[len(changed) // 2] ^= 0x01
    tampered = await browser.post("/verify", files=_pdf(bytes(changed)))
    assert tampered.status_code == 200
    assert "status-tampered" in tampered.text and "changed after it was sealed" in tampered.text
    assert "Verified" not in tampered.text


async def test_the_owning_tenant_signed_in_sees_which_agreement_it_is(
    client: httpx.AsyncClient, executed: tuple[Api, dict, bytes], admin: Api
) -> None:
    owner, agreement, content = executed
    browser = Browser(client)
    await browser.sign_in_with_key(owner.key)
    await browser.get("/verify")
    mine = await browser.post("/verify", files=_pdf(content))
    assert "Verified" in mine.text and agreement["id"] in mine.text
    stranger = Browser(client)
    await stranger.sign_in_with_key((await admin.new_tenant()).key)
    await stranger.get("/verify")
    theirs = await stranger.post("/verify", files=_pdf(content))
    assert "Verified" in theirs.text and agreement["id"] not in theirs.text


async def test_a_pdf_without_our_seal_is_unknown(client: httpx.AsyncClient) -> None:
    browser = Browser(client)
    await browser.get("/verify")
    answer = await browser.post("/verify", files=_pdf(b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n"))
    assert answer.status_code == 200 and "status-unknown" in answer.text and "no seal of this service" in answer.text


async def test_no_file_or_not_a_pdf_is_an_error_beside_the_file_field(client: httpx.AsyncClient) -> None:
    browser = Browser(client)
    await browser.get("/verify")
    missing = await browser.post("/verify", files={"file": ("", b"", "application/octet-stream")})
    assert missing.status_code == 422
    assert 'id="file-error"' in missing.text and "choose the PDF file to check" in missing.text
    not_pdf = await browser.post("/verify", files=_pdf(b"just some text", "notes.pdf"))
    assert not_pdf.status_code == 422 and 'id="file-error"' in not_pdf.text and "is not a PDF file" in not_pdf.text


async def test_posting_without_the_csrf_token_is_refused(client: httpx.AsyncClient, executed: tuple) -> None:
    browser = Browser(client)
    await browser.get("/verify")
    refused = await browser.post("/verify", csrf=False, files=_pdf(executed[2]))
    assert refused.status_code == 403
    assert "Verified" not in refused.text
