"""Legal's template pages: a new version through the form, four eyes shown and enforced, preview and diff."""

from __future__ import annotations

import re

import httpx
import pytest

from dpa_service.core.db import Database
from dpa_service.template_versions.bundle import shipped_bundles
from tests.helpers.agreements import approve_standard_dpa
from tests.helpers.api import Api
from tests.helpers.pages import Browser

pytestmark = pytest.mark.html_face  # see tests/conftest.py: SQLite only

OLD_LINE = "Signed by the authorised representatives of the parties on the dates stated below."
NEW_LINE = "Signed by the authorised representatives of the parties on the dates shown below."


def _standard_source() -> str:
    return next(b for b in shipped_bundles() if b.key == "standard-dpa").source


async def _signed_in(client: httpx.AsyncClient, api: Api) -> Browser:
    browser = Browser(client)
    assert (await browser.sign_in_with_key(api.key)).status_code == 303
    return browser


def _created_id(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    found = re.search(r"/staff/templates/([0-9a-f-]{36})$", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


async def test_legal_writes_a_version_fixes_a_field_error_and_a_second_legal_user_approves_it(
    client: httpx.AsyncClient, admin: Api, db: Database
) -> None:
    await approve_standard_dpa(db)
    author, reviewer = await admin.new_staff("legal"), await admin.new_staff("legal")
    browser = await _signed_in(client, author)
    form = await browser.get("/staff/templates/new")
    assert form.status_code == 200 and '<label for="source">' in form.text

    source = _standard_source().replace(OLD_LINE, NEW_LINE)
    refused = await browser.post(
        "/staff/templates", {"key": "Standard DPA!", "title": "Standard DPA 2027", "source": source}
    )
    assert refused.status_code == 422
    assert 'id="key-error"' in refused.text
    assert 'value="Standard DPA!"' in refused.text and 'value="Standard DPA 2027"' in refused.text
    assert "dates shown below" in refused.text  # the source typed is kept

    bad_schema = await browser.post(
        "/staff/templates",
        {"key": "standard-dpa", "title": "Standard DPA 2027", "source": source, "variables_schema": "{oops"},
    )
    assert bad_schema.status_code == 422 and 'id="variables_schema-error"' in bad_schema.text

    saved = await browser.post(
        "/staff/templates", {"key": "standard-dpa", "title": "Standard DPA 2027", "source": source}
    )
    version_id = _created_id(saved)
    page = await browser.get(f"/staff/templates/{version_id}")
    assert "is saved as a draft" in page.text and "Submit for review" in page.text

    await browser.post(f"/staff/templates/{version_id}/submit")
    page = await browser.get(f"/staff/templates/{version_id}")
    assert "in review" in page.text
    assert "You wrote this version: another legal user must approve it" in page.text
    assert re.search(r"<button[^>]*disabled[^>]*>Approve</button>", page.text)
    assert "Approve this version" not in page.text

    forced = await browser.post(f"/staff/templates/{version_id}/approve")
    assert forced.status_code == 403 and "text/html" in forced.headers["content-type"]
    assert "Four eyes" in forced.text
    assert (await author.get(f"/templates/{version_id}")).json()["status"] == "in_review"

    second = await _signed_in(client, reviewer)
    page = await second.get(f"/staff/templates/{version_id}")
    assert "Approve this version" in page.text
    approved = await second.post(f"/staff/templates/{version_id}/approve")
    assert approved.status_code == 303
    page = await second.get(f"/staff/templates/{version_id}")
    assert "is approved" in page.text and "current" in page.text
    listing = await second.get("/staff/templates", key="standard-dpa")
    assert "Standard DPA 2027" in listing.text and ">legal<" in listing.text  # the author's and approver's names


async def test_the_diff_shows_a_changed_line_on_both_sides_and_the_preview_is_a_pdf(
    client: httpx.AsyncClient, admin: Api, db: Database
) -> None:
    await approve_standard_dpa(db)
    legal = await admin.new_staff("legal")
    browser = await _signed_in(client, legal)
    first = next(v for v in (await legal.get("/templates", key="standard-dpa")).json()["items"] if v["version"] == 1)
    source = _standard_source().replace(OLD_LINE, NEW_LINE)
    second = _created_id(
        await browser.post("/staff/templates", {"key": "standard-dpa", "title": "Standard DPA", "source": source})
    )

    page = await browser.get(f"/staff/templates/{second}")
    assert f'value="{first["id"]}"' in page.text  # offered to compare against
    diff = await browser.get(f"/staff/templates/{second}/diff", against=first["id"])
    assert diff.status_code == 200, diff.text
    assert re.search(
        r'class="removed"><span aria-hidden="true">\u2212 </span><span class="visually-hidden">Removed: </span>'
        + re.escape(OLD_LINE),
        diff.text,
    )
    assert re.search(
        r'class="added"><span aria-hidden="true">\+ </span><span class="visually-hidden">Added: </span>'
        + re.escape(NEW_LINE),
        diff.text,
    )
    assert "Version 1 (old)" in diff.text and "Version 2 (new)" in diff.text

    preview = await browser.get(f"/staff/templates/{second}/preview")
    assert preview.status_code == 200 and preview.content.startswith(b"%PDF")


async def test_subscribers_and_sales_get_404_on_template_pages(client: httpx.AsyncClient, admin: Api) -> None:
    owner, sales = await admin.new_tenant(), await admin.new_staff("sales")
    for api in (owner, sales):
        browser = await _signed_in(client, api)
        assert (await browser.get("/staff/templates")).status_code == 404
        assert (
            await browser.post("/staff/templates", {"key": "x-dpa", "title": "x", "source": "x"})
        ).status_code == 404
