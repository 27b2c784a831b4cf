"""DocuSign as a second signature provider, against the stand-in, with the real SDK (issue 14, "Must show").

The stand-in is a local HTTPS server with a test CA made for the test; the service reaches it through
docusign-esign exactly as it would reach DocuSign. Connect messages the stand-in signs are handed to the service's
`POST /webhooks/docusign` by the test (the service under test has no listening socket).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from dpa_service.agreements import docusign
from dpa_service.agreements.docusign_standin import ACCOUNT_ID, INTEGRATION_KEY, USER_ID, StandIn
from dpa_service.agreements.models import DocuSignEnvelope, DocuSignEvent
from dpa_service.core.db import Database, Scope
from dpa_service.core.settings import DocuSignSettings, Settings
from dpa_service.notifications.jobs import run_due_jobs
from tests.conftest import app_for, running
from tests.helpers.agreements import approve_standard_dpa, ok, to_status
from tests.helpers.api import Api, bootstrap_admin, verify_email
from tests.helpers.isolation import Probe, assert_isolated


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[StandIn]:
    server = StandIn(tmp_path / "standin", hmac_keys=("old-connect-key", "new-connect-key")).start()
    yield server
    server.stop()


def docusign_settings(standin: StandIn, **overrides: Any) -> DocuSignSettings:
    values: dict[str, Any] = {
        "base_uri": standin.base_uri,
        "oauth_host": standin.oauth_host,
        "integration_key": INTEGRATION_KEY,
        "user_id": USER_ID,
        "account_id": ACCOUNT_ID,
        "private_key_path": standin.private_key_path,
        "connect_hmac_keys": (SecretStr("new-connect-key"),),
        "ca_bundle": standin.ca_path,
        "first_retry_seconds": 0,
        "create_attempts": 3,
        "read_timeout": 1.0,
        "connect_timeout": 1.0,
    }
    return DocuSignSettings(**{**values, **overrides})


@pytest.fixture
def countersign_in_envelope() -> bool:
    return False


@pytest.fixture
async def service(
    settings: Settings, standin: StandIn, countersign_in_envelope: bool
) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings.model_copy(
        update={"docusign": docusign_settings(standin, countersign_in_envelope=countersign_in_envelope)}
    )
    app = app_for(configured)
    async with running(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


@pytest.fixture
async def parties(service: httpx.AsyncClient, db: Database) -> tuple[Api, Api, Api]:
    admin = await bootstrap_admin(service, db)
    await approve_standard_dpa(db)
    owner = await admin.new_tenant(admin_name="Olive Owner")
    return owner, await admin.new_staff("legal"), await admin.new_tenant(admin_name="Bob Other")


async def request_docusign(owner: Api, agreement_id: str, signer: dict[str, str] | None = None) -> dict[str, Any]:
    if signer is None:
        me = await verify_email(owner)
        signer = {"name": me["name"], "email": me["email"], "title": "CEO"}
    response = await owner.post(
        f"/agreements/{agreement_id}/signature-requests", {"provider": "docusign", "signer": signer}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def envelope_created(db: Database, standin: StandIn, *, late_creations: bool = False) -> str:
    """The worker runs the queued job: the stand-in now holds the envelope (exactly one new one, unless earlier
    attempts that timed out may still be finishing there: `late_creations`, as DocuSign's can)."""
    before = set(standin.envelopes)
    assert await run_due_jobs(db) >= 1
    if not late_creations:
        (envelope_id,) = set(standin.envelopes) - before
        return envelope_id
    async with db.transaction(Scope.system(), write=False) as session:
        stored = await session.scalar(
            select(DocuSignEnvelope.envelope_id)
            .where(DocuSignEnvelope.status == "sent")
            .order_by(DocuSignEnvelope.status_changed_at.desc())  # type: ignore[union-attr]
            .limit(1)
        )
    assert stored in set(standin.envelopes) - before, "the envelope the service recorded is the one just created"
    return str(stored)


async def deliver(service: httpx.AsyncClient, standin: StandIn, *, since: int = 0) -> list[httpx.Response]:
    """Hand the stand-in's Connect messages to the service, as DocuSign would post them."""
    answers = []
    for message in standin.connect[since:]:
        answers.append(await service.post("/webhooks/docusign", content=message.body, headers=message.headers))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    return answers


async def test_embedded_docusign_signing_to_a_sealed_executed_dpa(
    parties: tuple[Api, Api, Api], service: httpx.AsyncClient, db: Database, standin: StandIn
) -> None:
    owner, legal, _ = parties
    agreement = await to_status(owner, legal, "ready_for_signature")
    aid = agreement["id"]
    draft = await owner.get(f"/agreements/{aid}/document")

    requested = await request_docusign(owner, aid)
    assert requested["envelope_status"] == "creating"
    assert requested["signing_url"].endswith(f"/app/agreements/{aid}/docusign/sign"), "embedded: the caller signs"
    assert (await owner.get(f"/agreements/{aid}")).json()["status"] == "ready_for_signature"

    envelope_id = await envelope_created(db, standin)
    sent = standin.envelopes[envelope_id]
    assert sent.document == draft.content, "the envelope carries the exact PDF the signer reviews"
    assert requested["document_sha256"] == hashlib.sha256(sent.document).hexdigest()
    subscriber = sent.definition["recipients"]["signers"][0]
    assert subscriber["routingOrder"] == "1" and subscriber["clientUserId"]
    assert subscriber["tabs"]["signHereTabs"][0]["anchorString"] == "[[SIG_SUBSCRIBER]]"
    assert sent.definition["notification"]["expirations"]["expireAfter"] == "14"
    assert (await owner.get(f"/agreements/{aid}")).json()["status"] == "out_for_signature"

    # The signer opens DocuSign's view from the agreement page and finishes there.
    view = await docusign.recipient_view(
        db, service.app.state.docusign, await principal_of(owner, db), uuid.UUID(aid), "http://back.example/x"
    )
    assert view.startswith(standin.base_uri + "/signing/")
    standin.sign(envelope_id)
    await deliver(service, standin)

    signed = (await owner.get(f"/agreements/{aid}")).json()
    assert signed["status"] == "signed"
    executed = await ok(legal.post(f"/agreements/{aid}/countersign"))
    assert executed["status"] == "executed" and executed["document_sha256"]

    evidence = (await owner.get(f"/agreements/{aid}/evidence")).json()
    (envelope,) = evidence["docusign"]
    assert envelope["envelope_id"] == envelope_id and envelope["status"] == "completed"
    served = await standin_documents(standin, envelope_id)
    assert envelope["combined_sha256"] == hashlib.sha256(served["combined"]).hexdigest()
    assert envelope["certificate_sha256"] == hashlib.sha256(served["certificate"]).hexdigest()
    assert {e["event"] for e in envelope["recipient_events"]} >= {"envelope-sent", "envelope-completed"}
    assert [e["Action"] for e in envelope["audit_events"]][-1] == "Envelope completed"
    roles = {s["role"]: s for s in evidence["signatures"]}
    assert roles["subscriber"]["provider"] == "docusign" and roles["processor"]["provider"] == "builtin"
    assert roles["subscriber"]["document_sha256"] == requested["document_sha256"]
    # The evidence says what happened in DocuSign, no more: its disclosure accepted, none of our texts shown.
    assert roles["subscriber"]["method"] == "docusign" and roles["subscriber"]["consent"] is True
    assert roles["subscriber"]["consent_text_sha256"] is None and roles["subscriber"]["authority_confirmed"] is None

    pdf = await owner.get(f"/agreements/{aid}/document")
    verified = await service.post(
        "/api/v1/documents/verify", content=pdf.content, headers={"Content-Type": "application/pdf"}
    )
    assert verified.json()["status"] == "verified"


async def standin_documents(standin: StandIn, envelope_id: str) -> dict[str, bytes]:
    client = docusign.DocuSignClient(docusign_settings(standin))
    return {name: await client.document(envelope_id, name) for name in ("combined", "certificate")}


async def principal_of(api: Api, db: Database) -> Any:
    from dpa_service.users.keys import authenticate

    principal = await authenticate(db, api.key)
    assert principal is not None
    return principal


@pytest.mark.parametrize("countersign_in_envelope", [True])
async def test_email_signing_with_the_countersignature_in_the_envelope_executes_on_completion(
    parties: tuple[Api, Api, Api], service: httpx.AsyncClient, db: Database, standin: StandIn
) -> None:
    owner, legal, _ = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    requested = await request_docusign(
        owner, aid, {"name": "Cleo CFO", "email": "cfo@subscriber.example", "title": "CFO"}
    )
    assert requested["signing_url"] is None, "someone else signs from DocuSign's e-mail only"
    envelope_id = await envelope_created(db, standin)
    signers = standin.envelopes[envelope_id].definition["recipients"]["signers"]
    assert [s["routingOrder"] for s in signers] == ["1", "2"] and "clientUserId" not in signers[0]

    standin.sign(envelope_id, "1")
    await deliver(service, standin)
    assert (await owner.get(f"/agreements/{aid}")).json()["status"] == "out_for_signature", "2 has not signed"
    mark = len(standin.connect)
    standin.sign(envelope_id, "2")
    await deliver(service, standin, since=mark)
    executed = (await owner.get(f"/agreements/{aid}")).json()
    assert executed["status"] == "executed", "DocuSign carried the countersignature"
    evidence = (await owner.get(f"/agreements/{aid}/evidence")).json()
    assert {s["role"]: s["provider"] for s in evidence["signatures"]} == {
        "subscriber": "docusign",
        "processor": "docusign",
    }


async def test_connect_signatures_are_checked_before_anything_is_read(
    parties: tuple[Api, Api, Api], service: httpx.AsyncClient, db: Database, standin: StandIn
) -> None:
    owner, legal, _ = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    await request_docusign(owner, aid)
    envelope_id = await envelope_created(db, standin)
    standin.sign(envelope_id)
    body = standin.connect_body(envelope_id, "envelope-completed")

    refused = [
        await service.post("/webhooks/docusign", content=body, headers=standin.signed_headers(body, ("wrong",))),
        await service.post("/webhooks/docusign", content=body, headers={"Content-Type": "application/json"}),
        await service.post(
            "/webhooks/docusign", content=body.replace(b"completed", b"voided"), headers=standin.signed_headers(body)
        ),
        await service.post("/webhooks/docusign", content=b"not json", headers=standin.signed_headers(b"x")),
    ]
    assert [r.status_code for r in refused] == [401, 401, 401, 401]
    assert (await owner.get(f"/agreements/{aid}")).json()["status"] == "out_for_signature"

    # Rotation: the message is signed with the old and the new key; the service knows only the new one.
    assert (await service.post("/webhooks/docusign", content=body, headers=standin.signed_headers(body))).json() == {
        "status": "applied"
    }
    assert (await owner.get(f"/agreements/{aid}")).json()["status"] == "signed"
    replay = await service.post("/webhooks/docusign", content=body, headers=standin.signed_headers(body))
    assert replay.status_code == 200 and replay.json() == {"status": "ignored"}
    audit = (await owner.get("/audit-events", limit=200)).json()["items"]
    assert [e["action"] for e in audit].count("agreement.sign") == 1


async def test_declined_then_completed_out_of_order_never_revives_the_request(
    parties: tuple[Api, Api, Api], service: httpx.AsyncClient, db: Database, standin: StandIn
) -> None:
    owner, legal, _ = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    await request_docusign(owner, aid)
    envelope_id = await envelope_created(db, standin)
    standin.decline(envelope_id, "Our counsel wants changes")
    declined = standin.connect_body(envelope_id, "envelope-declined")
    standin.envelopes[envelope_id].status = "completed"  # a forged-order "completed" DocuSign signed anyway
    completed = standin.connect_body(envelope_id, "envelope-completed")
    for body in (declined, completed):
        assert (await service.post("/webhooks/docusign", content=body, headers=standin.signed_headers(body))).is_success

    agreement = (await owner.get(f"/agreements/{aid}")).json()
    assert agreement["status"] == "ready_for_signature", "declined ends the request; completed after it is ignored"
    (envelope,) = (await owner.get(f"/agreements/{aid}/docusign")).json()
    assert envelope["status"] == "declined" and envelope["reason"] == "Our counsel wants changes"
    assert envelope["combined_sha256"] is None
    assert (await owner.get(f"/agreements/{aid}/evidence")).json()["signatures"] == []


async def test_a_burst_of_a_thousand_connect_messages_is_applied_once_each(
    parties: tuple[Api, Api, Api], service: httpx.AsyncClient, db: Database, standin: StandIn
) -> None:
    owner, legal, _ = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    await request_docusign(owner, aid)
    envelope_id = await envelope_created(db, standin)
    bodies = []
    for n in range(1000):  # a thousand distinct recipient events, each sent twice, all at once
        body = standin.connect_body(envelope_id, "recipient-delivered", "1")
        bodies.append(
            body.replace(
                b'"generatedDateTime": "',
                f'"generatedDateTime": "2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000Z", "x": "'.encode(),
            )
        )
    gate = asyncio.Semaphore(50)

    async def post(body: bytes) -> int:
        async with gate:
            response = await service.post("/webhooks/docusign", content=body, headers=standin.signed_headers(body))
            return response.status_code

    statuses = await asyncio.gather(*(post(b) for b in [*bodies, *bodies]))
    assert set(statuses) == {200}
    async with db.transaction(Scope.system(), write=False) as session:
        events = (await session.execute(select(func.count()).select_from(DocuSignEvent))).scalar_one()
    assert events == 1000
    assert (await owner.get(f"/agreements/{aid}")).json()["status"] == "out_for_signature"


async def test_envelope_creation_retries_503_and_timeouts_then_reports_a_failed_request(
    parties: tuple[Api, Api, Api], service: httpx.AsyncClient, db: Database, standin: StandIn
) -> None:
    owner, legal, _ = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    assert await run_due_jobs(db) == 1  # the worker renders the ready draft ahead (agreements.prerender)
    standin.fail_creates = 1
    await request_docusign(owner, aid)
    assert await run_due_jobs(db) == 1 and not standin.envelopes, "503: tried again later"
    standin.fail_creates, standin.create_delay = 0, 1.5  # then it answers too late (read timeout 1 s)
    assert await run_due_jobs(db) == 1
    assert await run_due_jobs(db) == 1  # the third attempt is the last
    assert await run_due_jobs(db) == 0

    agreement = (await owner.get(f"/agreements/{aid}")).json()
    assert agreement["status"] == "ready_for_signature", "nothing half-made"
    (envelope,) = (await owner.get(f"/agreements/{aid}/docusign")).json()
    assert envelope["status"] == "failed" and "gave up after 3 attempts" in envelope["reason"]
    assert envelope["envelope_id"] is None
    audit = [e["action"] for e in (await owner.get("/audit-events", limit=200)).json()["items"]]
    assert "agreement.docusign_failed" in audit
    standin.create_delay = 0
    await request_docusign(owner, aid)  # a new request works once DocuSign is back
    await envelope_created(db, standin, late_creations=True)
    assert (await owner.get(f"/agreements/{aid}")).json()["status"] == "out_for_signature"


async def test_consent_required_is_a_clear_problem_naming_the_consent_url(
    parties: tuple[Api, Api, Api],
    service: httpx.AsyncClient,
    db: Database,
    standin: StandIn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner, legal, _ = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    assert await run_due_jobs(db) == 1  # the worker renders the ready draft ahead (agreements.prerender)
    standin.consent_required = True
    await request_docusign(owner, aid)
    with caplog.at_level(logging.ERROR, "dpa_service"):
        assert await run_due_jobs(db) == 1
    assert f"https://{standin.oauth_host}/oauth/auth?" in caplog.text and "consent_required" in caplog.text
    (envelope,) = (await owner.get(f"/agreements/{aid}/docusign")).json()
    assert envelope["status"] == "failed", "no retry: consent must be granted first"
    assert "has not granted this integration key consent" in envelope["reason"]
    assert f"client_id={INTEGRATION_KEY}" in envelope["reason"]


async def test_another_tenant_can_neither_create_an_envelope_nor_see_its_events(
    parties: tuple[Api, Api, Api],
    service: httpx.AsyncClient,
    db: Database,
    standin: StandIn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner, legal, other = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    signer = {"name": "Bob Other", "email": "bob@other.example", "title": "CEO"}
    refused = await other.post(f"/agreements/{aid}/signature-requests", {"provider": "docusign", "signer": signer})
    assert refused.status_code == 404 and not standin.envelopes
    await request_docusign(owner, aid)
    envelope_id = await envelope_created(db, standin)
    sign_as_b = {"provider": "docusign", "signer": signer}
    await assert_isolated(
        owner,
        other,
        [
            Probe(
                "envelope",
                envelope_id,
                direct=[
                    ("GET", f"/agreements/{aid}/docusign", None),
                    ("GET", f"/agreements/{aid}/evidence", None),
                    ("POST", f"/agreements/{aid}/signature-requests", sign_as_b),
                ],
                lists=["/agreements"],
            )
        ],
    )
    assert len(standin.envelopes) == 1, "B's attempt made no envelope"
    assert len((await legal.get(f"/agreements/{aid}/docusign")).json()) == 1

    # A message for an envelope this service never created: logged, attached to nobody.
    stranger = standin.connect_body(envelope_id, "envelope-completed").replace(envelope_id.encode(), b"0" * 36)
    with caplog.at_level(logging.WARNING, "dpa_service"):
        answer = await service.post("/webhooks/docusign", content=stranger, headers=standin.signed_headers(stranger))
    assert answer.json() == {"status": "ignored"} and "never created" in caplog.text
    async with db.transaction(Scope.system(), write=False) as session:
        assert (await session.execute(select(func.count()).select_from(DocuSignEvent))).scalar_one() == 0


async def test_no_sdk_call_runs_on_the_event_loop(
    parties: tuple[Api, Api, Api], service: httpx.AsyncClient, db: Database, standin: StandIn
) -> None:
    owner, legal, _ = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    await request_docusign(owner, aid)
    standin.create_delay = 0.8  # DocuSign takes its time; the service must keep answering meanwhile
    lags: list[float] = []

    async def probe() -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - started - 0.01)

    probing = asyncio.create_task(probe())
    started = time.perf_counter()
    await envelope_created(db, standin)
    took = time.perf_counter() - started
    probing.cancel()
    assert took >= 0.8 and len(lags) > 30, "the probe kept running while the envelope was created"
    # A blocking SDK call would stall the loop for the whole 0.8 s; below half of it is scheduling noise on a busy
    # machine (CI shares two cores among several workers).
    assert max(lags) < 0.4, f"the event loop stalled for {max(lags):.3f} s"


async def test_docusign_without_configuration_stays_422_naming_provider(
    admin: Api, db: Database, client: httpx.AsyncClient
) -> None:
    await approve_standard_dpa(db)
    owner, legal = await admin.new_tenant(), await admin.new_staff("legal")
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    signer = {"name": "A", "email": "a@x.example", "title": "T"}
    refused = await owner.post(f"/agreements/{aid}/signature-requests", {"provider": "docusign", "signer": signer})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "provider"
    body = b'{"event":"envelope-completed","data":{"envelopeId":"x"}}'
    assert (await client.post("/webhooks/docusign", content=body)).status_code == 401
