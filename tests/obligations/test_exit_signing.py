"""A tenant in exit gets no new executed DPA: not by requesting one, nor by signing a link sent before its
termination, nor by legal countersigning a DPA it signed before. The refusal is the obligations domain's check,
registered on `core.events.checks`; the agreements domain imports none of the obligations domain for it."""

from __future__ import annotations

import ast
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.events import Checks
from dpa_service.core.exceptions import Conflict
from tests.helpers.agreements import approve_standard_dpa, request_own_signature, to_status, token_of
from tests.helpers.api import Api
from tests.helpers.pages import Browser

AGREEMENTS = Path(__file__).resolve().parents[2] / "dpa_service" / "agreements"
SIGNATURE = {"typed_name": "Olive Owner", "consent": True, "authority_confirmed": True}


async def test_a_dpa_out_for_signature_or_signed_before_the_termination_is_not_executed(
    admin: Api, db: Database, client: httpx.AsyncClient
) -> None:
    await approve_standard_dpa(db)
    owner, legal = await admin.new_tenant(), await admin.new_staff("legal")
    signed = await to_status(owner, legal, "signed")
    out = await to_status(owner, legal, "ready_for_signature")
    token = token_of(await request_own_signature(owner, out["id"]))
    ends_on = utcnow().date() + timedelta(days=5)
    assert (await owner.post("/tenant/termination", {"ends_on": ends_on.isoformat()})).status_code == 201
    reason = f"the main agreement ends on {ends_on.isoformat()}"
    audit_before = len(await owner.all("/audit-events"))

    by_json = await client.post(f"/sign/{token}", json=SIGNATURE)
    assert by_json.status_code == 409 and by_json.headers["content-type"].startswith("application/problem+json")
    assert reason in by_json.json()["detail"]
    by_form = await client.post(f"/sign/{token}", data={**SIGNATURE, "consent": "true", "authority_confirmed": "true"})
    assert by_form.status_code == 409 and "text/html" in by_form.headers["content-type"] and reason in by_form.text
    shown = await client.get(f"/sign/{token}")  # the signer is told why before filling anything in
    assert shown.status_code == 409 and reason in shown.text and 'name="typed_name"' not in shown.text

    countersigned = await legal.post(f"/agreements/{signed['id']}/countersign")
    assert countersigned.status_code == 409 and reason in countersigned.json()["detail"]
    staff = Browser(client)
    assert (await staff.sign_in_with_key(legal.key)).status_code == 303
    from_queue = await staff.post(f"/staff/agreements/{signed['id']}/countersign")
    assert from_queue.status_code == 409 and reason in from_queue.text

    # Nothing changed: the statuses, the open link, the documents, the audit chain.
    assert (await owner.get(f"/agreements/{out['id']}")).json()["status"] == "out_for_signature"
    after = (await owner.get(f"/agreements/{signed['id']}")).json()
    assert (after["status"], after["executed_at"], after["document_sha256"]) == ("signed", None, None)
    assert len(await owner.all("/audit-events")) == audit_before


def test_agreements_asks_the_checks_and_imports_no_obligations_module_to_sign() -> None:
    """DESIGN.md: the agreements domain imports none of the domains that react to it. Its read models
    (`app_context`, `verification`) compose the obligations domain's services; requesting and signing do not."""
    for name in ("services.py", "signing.py", "execution.py", "lifecycle.py"):
        tree = ast.parse((AGREEMENTS / name).read_text())
        imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)] + [
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        ]
        assert not [m for m in imported if m.startswith("dpa_service.obligations")], name


async def test_with_no_check_registered_nothing_is_refused_and_a_registered_one_refuses() -> None:
    checks, db, tenant = Checks(), Any, uuid.uuid4()
    await checks.before_signing(db, Scope.tenant(tenant), tenant)  # type: ignore[arg-type]
    await checks.before_new_agreement(db, Scope.tenant(tenant), tenant)  # type: ignore[arg-type]
    asked: list[uuid.UUID] = []

    async def refuse(_db: Database, _scope: Scope, tenant_id: uuid.UUID) -> None:
        asked.append(tenant_id)
        raise Conflict("no")

    checks.add_before_signing(refuse)
    checks.add_before_signing(refuse)  # registered once however often installed
    with pytest.raises(Conflict):
        await checks.before_signing(db, Scope.tenant(tenant), tenant)  # type: ignore[arg-type]
    await checks.before_new_agreement(db, Scope.tenant(tenant), tenant)  # type: ignore[arg-type]
    assert asked == [tenant]
