"""Sales' contracts in a real browser against a real `dpa serve` (issue 13, Must show 5): sales creates a contract for
Acme Retail (a mistake first, named beside its field with the rest kept), attaches Acme's DPA from the select, is
refused the close while the DPA is still on its way (the gate's reason shown beside the form), closes it won once the
DPA is executed, and downloads the bundle. Every page passes axe-core with no serious or critical violation."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from pathlib import Path
from typing import Any

from tests.e2e.conftest import LiveServer
from tests.e2e.support import accessible, screenshot, sign_in_by_email
from tests.helpers.agreements import request_variables

SIGNER = "cfo@acme-retail.example"


def _signing_link(server: LiveServer) -> str:
    deadline = time.monotonic() + 60  # the worker's round, on busy cores
    while time.monotonic() < deadline:
        for mail in reversed(server.mails()):
            if mail["to"] == SIGNER and (found := re.search(r"/sign/([A-Za-z0-9_-]+)", mail["body"] or "")):
                return found.group(1)
        time.sleep(0.25)
    raise AssertionError("no signing link was e-mailed to the signer")


def test_sales_attach_the_dpa_the_close_waits_for_its_execution_then_won_and_the_bundle(
    live_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    acme = live_server.keys["tenants"]["Acme Retail"]
    owner, legal = live_server.api(acme["api_key"]), live_server.api(live_server.keys["staff"]["legal"]["api_key"])
    draft = owner.post("/agreements", json={"template_key": "standard-dpa", "variables": request_variables()})
    assert draft.status_code == 201, draft.text
    agreement_id = draft.json()["id"]
    assert owner.post(f"/agreements/{agreement_id}/submit").status_code == 200

    seen: list[str] = []
    sales = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True).new_page()
    sign_in_by_email(sales, live_server, live_server.keys["staff"]["sales"]["email"])
    sales.get_by_role("link", name="Contracts").click()
    assert sales.locator("h1").inner_text() == "Contracts"
    accessible(sales, seen)
    sales.select_option("form[method=post] #tenant_id", acme["id"])
    sales.fill("#reference", "CRM-2041")
    sales.fill("#title", "Acme Retail: live chat, 200 seats")
    sales.fill("#value", "48000.00")
    sales.fill("#currency", "EURO")
    sales.get_by_role("button", name="Create the contract").click()
    assert sales.locator("#currency-error").is_visible(), "the currency is named beside its field"
    assert sales.input_value("#reference") == "CRM-2041" and sales.input_value("#value") == "48000.00"
    accessible(sales, seen)
    sales.fill("#currency", "EUR")
    sales.get_by_role("button", name="Create the contract").click()
    sales.wait_for_load_state()
    assert "/staff/contracts/" in sales.url and "missing" in sales.locator("#dpa-status").inner_text()
    contract_url = sales.url

    sales.select_option("#agreement_id", agreement_id)
    sales.get_by_role("button", name="Attach").click()
    sales.wait_for_load_state()
    assert "in progress" in sales.locator("#dpa-status").inner_text()
    sales.select_option("#outcome", "won")
    sales.get_by_role("button", name="Close the contract").click()
    refusal = sales.locator("#outcome-error")
    assert refusal.is_visible() and "only in progress (ready_for_signature)" in refusal.inner_text()
    accessible(sales, seen)
    screenshot(sales, "contract-close-refused", tmp_path)

    # Acme's CFO signs from the e-mailed link and legal countersigns: the DPA is executed.
    sent = owner.post(f"/agreements/{agreement_id}/signature-requests",
                      json={"signer": {"name": "Casey CFO", "email": SIGNER, "title": "CFO"}})  # fmt: skip
    assert sent.status_code == 201, sent.text
    signed = owner.post(f"{live_server.url}/sign/{_signing_link(live_server)}",
                        json={"typed_name": "Casey CFO", "consent": True, "authority_confirmed": True})  # fmt: skip
    assert signed.status_code == 200, signed.text
    assert legal.post(f"/agreements/{agreement_id}/countersign").status_code == 200

    sales.goto(contract_url)
    assert "executed" in sales.locator("#dpa-status").inner_text()
    sales.select_option("#outcome", "won")
    sales.get_by_role("button", name="Close the contract").click()
    sales.wait_for_load_state()
    assert "closed: won" in sales.locator(".flash").inner_text()
    accessible(sales, seen)
    with sales.expect_download() as download:
        sales.get_by_role("link", name="Download the bundle of CRM-2041").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    manifest = json.loads(archive.read("manifest.json"))
    assert [a["agreement_id"] for a in manifest["agreements"]] == [agreement_id]
    assert {"manifest.json.sig", "seal-public-key.pem", f"dpa-{agreement_id}-executed.pdf"} <= set(archive.namelist())
    assert len(seen) >= 4
