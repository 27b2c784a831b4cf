"""Legal is told of a breach at once: one e-mail to each member of legal staff and one `breach_notice.reported`
webhook to the tenant's endpoints, each exactly once, delivered by the worker to a receiver that checks signatures;
updates and the acknowledgement follow the same road."""

from __future__ import annotations

import json

import httpx

from dpa_service.app import create_app
from dpa_service.core.db import Database
from dpa_service.core.mailer import read_log
from dpa_service.core.settings import Settings
from tests.conftest import running
from tests.helpers.api import Api
from tests.helpers.receiver import Receiver, drain
from tests.obligations.test_breaches import body


async def test_a_report_reaches_legal_by_mail_once_and_the_tenants_endpoints_by_webhook_once(
    admin: Api, db: Database, settings: Settings, signed_receiver: tuple[Receiver, str]
) -> None:
    target, base = signed_receiver
    owner = await admin.new_tenant()
    legal, other_legal, sales = [await admin.new_staff(role) for role in ("legal", "legal", "sales")]
    app = create_app(settings.model_copy(update={"webhook_allow_private": True}))
    async with running(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        http.app = app  # type: ignore[attr-defined]
        me, lee = Api(http, owner.key), Api(http, legal.key)
        for path, events in (("/reported", ["breach_notice.reported"]), ("/all", ["*"])):
            created = await me.post("/webhook-endpoints", {"url": base + path, "events": events})
            assert created.status_code == 201, created.text
            target.secrets[path] = created.json()["secret"]

        first = await me.post("/breach-notices", body(), headers={"Idempotency-Key": "breach-1"})
        replay = await me.post("/breach-notices", body(), headers={"Idempotency-Key": "breach-1"})
        assert first.status_code == replay.status_code == 201 and replay.json()["id"] == first.json()["id"]
        nid = first.json()["id"]
        await drain(http, db)
        await drain(http, db)  # a second round sends nothing again

        [reported] = target.accepted["/reported"]
        event = json.loads(next(b for p, h, b in target.requests if h["dpa-event-id"] == reported and p == "/reported"))
        assert (event["event"], event["tenant_id"], event["data"]["breach_notice_id"]) == (
            "breach_notice.reported", owner.tenant_id, nid)  # fmt: skip
        assert event["data"]["late"] is True and event["data"]["deadline_at"] == first.json()["deadline_at"]
        assert "email_staff" not in event["data"], "how the e-mail is addressed is not part of the event"

        emails = {name: (await api.get("/me")).json()["email"] for name, api in
                  (("legal", legal), ("other", other_legal), ("sales", sales), ("owner", owner))}  # fmt: skip
        told = [m for m in read_log(settings.var_dir) if m["subject"].startswith("Breach notice from")]
        assert sorted(m["to"] for m in told) == sorted([emails["legal"], emails["other"]]), "each lawyer, once"
        assert f"http://t/staff/breach-notices/{nid}" in told[0]["body"] and "LATE by" in told[0]["body"]
        assert "An agent's API key was published" in told[0]["body"]

        assert (await me.post(f"/breach-notices/{nid}/updates", {"text": "Rotated all keys."})).status_code == 201
        assert (await lee.post(f"/breach-notices/{nid}/acknowledge")).status_code == 200
        await drain(http, db)

    everything = [json.loads(b)["event"] for p, _, b in target.requests if p == "/all"]
    # The update and the acknowledgement were queued before one delivery round, which sends in parallel: each
    # arrives once, in either order (receivers order events by their time, not by arrival).
    assert everything[0] == "breach_notice.reported"
    assert sorted(everything[1:]) == ["breach_notice.acknowledged", "breach_notice.updated"]
    assert len(target.accepted["/reported"]) == 1 and target.rejected == 0
    by_subject = {
        (m["subject"].split(" from ")[0], m["to"]) for m in read_log(settings.var_dir) if "reach" in m["subject"]
    }
    assert {to for subject, to in by_subject if subject == "Breach notice update"} == {emails["legal"], emails["other"]}
    assert {to for subject, to in by_subject if "acknowledged" in subject} == {emails["owner"]}
    assert not {to for _, to in by_subject} & {emails["sales"]}
