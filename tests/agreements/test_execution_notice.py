"""The signing page promises the executed agreement: when it executes, the signer and the tenant's owners are
e-mailed where to download it, with its SHA-256."""

from __future__ import annotations

import httpx

from dpa_service.core.db import Database
from dpa_service.core.mailer import read_log
from dpa_service.core.settings import Settings
from tests.helpers.agreements import approve_standard_dpa, ok, sign, to_status
from tests.helpers.api import Api
from tests.helpers.receiver import drain


async def test_executing_e_mails_the_signer_and_the_owner_a_link_to_the_executed_pdf(
    admin: Api, db: Database, settings: Settings, client: httpx.AsyncClient
) -> None:
    await approve_standard_dpa(db)
    owner, legal = await admin.new_tenant(), await admin.new_staff("legal")
    owner_email = (await owner.get("/me")).json()["email"]
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    signer = {"name": "Carla Ceo", "email": "carla@signer.example", "title": "Managing Director"}
    assert (await owner.post(f"/agreements/{aid}/signature-requests", {"signer": signer})).status_code == 201
    await drain(client, db)
    link = next(m for m in read_log(settings.var_dir) if m["to"] == "carla@signer.example")["body"]
    await sign(owner, next(word for word in link.split() if "/sign/" in word), typed_name="Carla Ceo")
    await drain(client, db)
    assert not [m for m in read_log(settings.var_dir) if "executed" in m["subject"]], "not before it executes"

    executed = await ok(legal.post(f"/agreements/{aid}/countersign"))
    await drain(client, db)
    notices = [m for m in read_log(settings.var_dir) if m["subject"] == "Your Data Processing Agreement is executed"]
    assert sorted(m["to"] for m in notices) == sorted(["carla@signer.example", owner_email])
    for mail in notices:
        assert f"{settings.public_base_url or 'http://testserver.local'}/app/agreements/{aid}" in mail["body"]
        assert f"SHA-256 of the executed PDF: {executed['document_sha256']}" in mail["body"]
