"""A mechanism invalidation may reach thousands of contracts: their DPA status is derived again, stored, audited and
announced in a handful of statements, not one (or more) per contract; reading a page of contracts is the same
number of queries however many it shows. Both databases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event

from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from tests.contracts.support import attach, new_contract, status_changes
from tests.helpers.agreements import approve_standard_dpa, to_status
from tests.helpers.api import Api

CONTRACTS = 40


@contextmanager
def counted(client: httpx.AsyncClient) -> Iterator[list[str]]:
    """Every SQL statement the app sends while the block runs."""
    seen: list[str] = []
    engine = client.app.state.db.engine.sync_engine  # type: ignore[attr-defined]

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_an_invalidation_moves_forty_contracts_in_a_handful_of_statements(
    client: httpx.AsyncClient, admin: Api, db: Database
) -> None:
    await approve_standard_dpa(db)
    owner, legal, sales = await admin.new_tenant(), await admin.new_staff("legal"), await admin.new_staff("sales")
    executed = await to_status(owner, legal, "executed", mechanisms=["eu-us-dpf"])
    ids = [(await attach(sales, (await new_contract(sales, owner.tenant_id))["id"], executed["id"]))["id"]
           for _ in range(CONTRACTS)]  # fmt: skip
    with counted(client) as few:
        assert len((await sales.get("/contracts", limit=2)).json()["items"]) == 2
    with counted(client) as many:
        assert len((await sales.get("/contracts", limit=CONTRACTS)).json()["items"]) == CONTRACTS
    assert len(many) == len(few), "a page of contracts costs the same queries whatever its size"

    body = {"invalid_from": utcnow().date().isoformat(), "reason": "Test: a hypothetical invalidation",
            "legal_reference": "hypothetical, for the test"}  # fmt: skip
    with counted(client) as statements:
        response = await legal.post("/transfer-mechanisms/eu-us-dpf/invalidation", body)
    assert response.status_code == 201, response.text
    # The whole request (authentication, the invalidation, its notices and audit, the contracts): one per contract
    # would be 40 or more.
    assert len(statements) <= 30, f"{len(statements)} statements for {CONTRACTS} contracts"
    changed = await status_changes(db)
    assert sorted(m["contract_id"] for m in changed if m["cause"] == "mechanism_invalidated") == sorted(ids)
    assert {c["dpa_status"] for c in await sales.all("/contracts")} == {"outdated"}
