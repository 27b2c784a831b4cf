"""The exit through the API: a termination gives the Subscriber's deletion its due date and stops new DPAs; the
processor's deletion certificate is a sealed PDF that verifies like an executed DPA (API, `dpa verify`, pdfsig)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from dpa_service.core.mailer import read_log
from dpa_service.core.settings import Settings
from dpa_service.obligations.exit import deletion_days
from tests.conftest import IN_CI
from tests.helpers.agreements import approve_standard_dpa, request_variables, to_status
from tests.helpers.api import Api
from tests.helpers.isolation import Probe, assert_isolated
from tests.helpers.receiver import drain
from tests.templates.conftest import pdf_text, squash

CERTIFICATE = {
    "systems": ["Production chat database (eu-west-1)", "Encrypted backups (eu-central-1)"],
    "statement": "All chat transcripts, visitor profiles and attachments of the Subscriber were erased.",
}


def today() -> date:
    return utcnow().date()


@pytest.fixture
async def legal(admin: Api) -> Api:
    return await admin.new_staff("legal")


async def audited(api: Api, action: str) -> list[dict]:
    return [e for e in await api.all("/audit-events") if e["action"] == action]


async def test_a_termination_sets_the_deletion_due_date_and_refuses_new_dpas(
    admin: Api, legal: Api, db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    await approve_standard_dpa(db)
    owner = await admin.new_tenant()
    await to_status(owner, legal, "executed")  # the deletion days come from its template version's obligations
    ready = await to_status(owner, legal, "ready_for_signature")
    ends_on = today() + timedelta(days=10)

    recorded = await owner.post("/tenant/termination", {"ends_on": ends_on.isoformat(), "reason": "Switching"})
    assert recorded.status_code == 201, recorded.text
    body = recorded.json()
    assert body["tenant_id"] == owner.tenant_id and body["recorded_by"] == owner.user_id
    # Clause 9.7: 30 days after clause 10.2's 30-day export window ends, so 60 days after the main agreement.
    assert body["ends_on"] == ends_on.isoformat() and body["deletion_days"] == 60
    assert body["deletion_due_on"] == (ends_on + timedelta(days=60)).isoformat()
    # Clause 10.2: 30 days to export, then the processor deletes within a further 30.
    assert body["processor_deletion_due_on"] == (ends_on + timedelta(days=60)).isoformat()
    assert body["deletion_certificate_id"] is None
    assert (await owner.get("/tenant/termination")).json() == body
    assert (await legal.get("/tenant/termination", tenant_id=owner.tenant_id)).json() == body

    again = await legal.post("/tenant/termination", {"tenant_id": owner.tenant_id, "ends_on": ends_on.isoformat()})
    assert again.status_code == 409

    refused = await owner.post("/agreements", {"template_key": "standard-dpa", "variables": request_variables()})
    assert refused.status_code == 409 and refused.headers["content-type"].startswith("application/problem+json")
    assert f"ends on {ends_on.isoformat()}" in refused.json()["detail"]
    me = (await owner.get("/me")).json()
    unsent = await owner.post(
        f"/agreements/{ready['id']}/signature-requests",
        {"provider": "builtin", "signer": {"name": me["name"], "email": me["email"], "title": "CEO"}},
    )
    assert unsent.status_code == 409 and f"ends on {ends_on.isoformat()}" in unsent.json()["detail"]
    assert (await owner.get(f"/agreements/{ready['id']}")).json()["status"] == "ready_for_signature"

    [event] = await audited(owner, "tenant.termination_recorded")
    assert event["target_id"] == owner.tenant_id and event["actor_id"] == owner.user_id
    await drain(client, db)
    [mail] = [m for m in read_log(settings.var_dir) if m["subject"] == f"Your main agreement ends on {ends_on}"]
    assert mail["to"] == me["email"] and str(ends_on + timedelta(days=60)) in mail["body"]


def test_the_deletion_days_come_from_the_template_versions_obligations() -> None:
    entry = {"code": "delete_end_user_data", "deadline": {"rule": "within_days_of_termination", "days": 45}}
    assert deletion_days([{"code": "breach_notice_72h", "deadline": {"rule": "x", "hours": 72}}, entry]) == 45
    assert deletion_days([]) == 30  # a version without the obligation: the service's fallback


async def test_who_may_record_a_termination_and_which_dates(admin: Api, legal: Api) -> None:
    owner = await admin.new_tenant()
    yesterday = (today() - timedelta(days=1)).isoformat()
    for role in ("admin", "member"):
        user = await owner.new_user(role)
        assert (await user.post("/tenant/termination", {"ends_on": today().isoformat()})).status_code == 403
    sales = await admin.new_staff("sales")
    assert (
        await sales.post("/tenant/termination", {"tenant_id": owner.tenant_id, "ends_on": yesterday})
    ).status_code == 403
    assert (await sales.get("/tenant/termination", tenant_id=owner.tenant_id)).status_code == 403
    assert (
        await admin.post("/tenant/termination", {"tenant_id": owner.tenant_id, "ends_on": yesterday})
    ).status_code == 403

    def field(response: httpx.Response) -> list[str]:
        assert response.status_code == 422, response.text
        return [e["field"] for e in response.json()["errors"]]

    assert field(await owner.post("/tenant/termination", {"ends_on": yesterday})) == ["ends_on"]
    assert field(await owner.post("/tenant/termination", {"ends_on": "31.01.2027"})) == ["ends_on"]
    for extreme in ("9999-12-31", "0001-01-01"):  # the calendar's ends: refused before any date arithmetic
        assert field(await owner.post("/tenant/termination", {"ends_on": extreme})) == ["ends_on"]
    assert field(await owner.post("/tenant/termination", {"ends_on": today().isoformat(), "why": "x"})) == ["why"]
    too_old = (today() - timedelta(days=400)).isoformat()
    assert field(await legal.post("/tenant/termination", {"tenant_id": owner.tenant_id, "ends_on": too_old})) == [
        "ends_on"
    ]
    assert field(await legal.post("/tenant/termination", {"ends_on": yesterday})) == ["tenant_id"]
    unknown = "0190a0a0-0000-7000-8000-000000000000"
    assert field(await legal.post("/tenant/termination", {"tenant_id": unknown, "ends_on": yesterday})) == ["tenant_id"]
    assert (await owner.get("/tenant/termination")).status_code == 404  # nothing was written

    # Legal records terminations after the fact (up to a year back); the owner's own is today at the earliest.
    late = await legal.post("/tenant/termination", {"tenant_id": owner.tenant_id, "ends_on": yesterday})
    assert late.status_code == 201 and late.json()["recorded_by_role"] == "legal"
    member = await owner.new_user("member")
    assert (await member.get("/tenant/termination")).json()["ends_on"] == yesterday


async def issue(legal: Api, tenant_id: str, deleted_on: date) -> httpx.Response:
    return await legal.post(
        "/tenant/deletion-certificate", {"tenant_id": tenant_id, "deleted_on": deleted_on.isoformat(), **CERTIFICATE}
    )


async def verify(client: httpx.AsyncClient, content: bytes, key: str | None = None) -> dict:
    headers = {"Content-Type": "application/pdf", **({"Authorization": f"Bearer {key}"} if key else {})}
    response = await client.post("/api/v1/documents/verify", content=content, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def dpa_verify(settings: Settings, path: Path) -> subprocess.CompletedProcess[str]:
    """`dpa verify` as the operator runs it where the service's var dir and database are."""
    env = {**os.environ, "DPA_VAR_DIR": str(settings.var_dir), "DATABASE_URL": settings.database.url}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return subprocess.run(
        [sys.executable, "-m", "dpa_service", "verify", str(path)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


async def test_the_deletion_certificate_is_sealed_and_verifies_with_the_api_the_cli_and_pdfsig(
    admin: Api, legal: Api, client: httpx.AsyncClient, db: Database, settings: Settings, backend: str
) -> None:
    owner = await admin.new_tenant()
    never_terminated = await admin.new_tenant()
    assert (await issue(legal, never_terminated.tenant_id, today())).status_code == 409
    ends_on = today() - timedelta(days=40)
    await legal.post("/tenant/termination", {"tenant_id": owner.tenant_id, "ends_on": ends_on.isoformat()})
    # Before the end, inside the Subscriber's 30-day export window (clause 10.2), in the future, the calendar's ends.
    for deleted_on in (ends_on - timedelta(days=1), ends_on + timedelta(days=29), today() + timedelta(days=1),
                       date.min, date.max):  # fmt: skip
        bad = await issue(legal, owner.tenant_id, deleted_on)
        assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["deleted_on"], bad.text
    window = (await issue(legal, owner.tenant_id, ends_on + timedelta(days=29))).json()["errors"][0]["message"]
    assert "export window" in window and str(ends_on + timedelta(days=30)) in window
    assert (await owner.post("/tenant/deletion-certificate", {"tenant_id": owner.tenant_id})).status_code == 403

    issued = await issue(legal, owner.tenant_id, today() - timedelta(days=2))
    assert issued.status_code == 201, issued.text
    certificate = issued.json()
    assert len(certificate["document_sha256"]) == 64 and certificate["systems"] == CERTIFICATE["systems"]
    exit_now = (await owner.get("/tenant/termination")).json()
    assert exit_now["deletion_certificate_id"] == certificate["id"]
    assert exit_now["processor_deletion_due_on"] == (ends_on + timedelta(days=60)).isoformat()

    document = await owner.get(f"/deletion-certificates/{certificate['id']}/document")
    assert document.status_code == 200 and document.headers["content-type"] == "application/pdf"
    assert document.headers["x-content-sha256"] == certificate["document_sha256"]
    assert hashlib.sha256(document.content).hexdigest() == certificate["document_sha256"]
    assert document.headers["cache-control"] == "no-store"
    text = squash(pdf_text(document.content))
    tenant = (await owner.get("/tenant")).json()
    legal_me = (await legal.get("/me")).json()
    processor = registry.processor()["legal_name"]
    for expected in (tenant["legal_name"], processor, *CERTIFICATE["systems"], CERTIFICATE["statement"],
                     ends_on.isoformat(), legal_me["name"], "Article 28(3)(g)"):  # fmt: skip
        assert squash(expected) in text, expected

    mine = await verify(client, document.content, owner.key)
    assert mine["status"] == "verified" and mine["deletion_certificate_id"] == certificate["id"]
    assert mine["kind"] == "deletion_certificate" and mine["agreement_id"] is None
    anonymous = await verify(client, document.content)
    assert anonymous["status"] == "verified" and anonymous["deletion_certificate_id"] is None
    assert (await verify(client, document.content, never_terminated.key))["deletion_certificate_id"] is None
    flipped = bytearray(document.content)
    flipped[len(flipped) // 3] ^= 0x01
    assert (await verify(client, bytes(flipped)))["status"] == "tampered"

    # Outside the service: the CLI reads the same record through the same service (one backend is enough for a
    # subprocess that starts its own document pool, several seconds), and poppler checks the seal independently.
    path = settings.var_dir / "deletion-certificate.pdf"
    path.write_bytes(document.content)
    if backend == "sqlite":
        checked = await asyncio.to_thread(dpa_verify, settings, path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert json.loads(checked.stdout)["deletion_certificate_id"] == certificate["id"]
    [event] = await audited(owner, "deletion_certificate.issued")
    assert event["target_id"] == certificate["id"] and event["actor_id"] == legal.user_id
    await drain(client, db)
    me = (await owner.get("/me")).json()
    [mail] = [m for m in read_log(settings.var_dir) if m["subject"].startswith("Deletion certificate")]
    assert mail["to"] == me["email"] and certificate["document_sha256"] in mail["body"]

    # Last, since it may skip: poppler's pdfsig, an independent validator, accepts the seal.
    if not shutil.which("pdfsig"):
        if IN_CI:
            raise AssertionError("CI checks the seal with pdfsig: install poppler-utils (scripts/_env.sh does)")
        pytest.skip("pdfsig is not installed (apt-get install poppler-utils); everything before it was checked")
    out = await asyncio.to_thread(subprocess.run, ["pdfsig", str(path)], capture_output=True, text=True)
    assert "Signature is Valid" in out.stdout, out.stdout


async def test_exit_endpoints_are_isolated_between_tenants(admin: Api, legal: Api) -> None:
    owner = await admin.new_tenant()
    intruder = await admin.new_tenant()
    ends_on = today() - timedelta(days=30)  # the export window is over: the processor may certify today
    await legal.post("/tenant/termination", {"tenant_id": owner.tenant_id, "ends_on": ends_on.isoformat()})
    certificate = (await issue(legal, owner.tenant_id, today())).json()
    cid = certificate["id"]
    await assert_isolated(
        owner,
        intruder,
        [
            Probe(
                "deletion certificate",
                cid,
                direct=[
                    ("GET", f"/deletion-certificates/{cid}", None),
                    ("GET", f"/deletion-certificates/{cid}/document", None),
                ],
                lists=["/deletion-certificates"],
            ),
            Probe(
                "termination",
                owner.tenant_id,
                direct=[
                    ("GET", "/tenant/termination", None),
                    ("POST", "/tenant/termination", {"tenant_id": owner.tenant_id, "ends_on": ends_on.isoformat()}),
                ],
            ),
        ],
    )
    member = await owner.new_user("member")
    assert (await member.get(f"/deletion-certificates/{cid}/document")).status_code == 200
    assert (await legal.get("/deletion-certificates", tenant_id=owner.tenant_id)).json()["items"][0]["id"] == cid
    sales = await admin.new_staff("sales")
    assert (await sales.get(f"/deletion-certificates/{cid}/document")).status_code == 403
    assert (await intruder.get("/tenant/termination")).status_code == 404
