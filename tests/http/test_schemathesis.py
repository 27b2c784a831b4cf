"""schemathesis against the running app (issue 16, Must show 2): every operation of the OpenAPI document, fuzzed
from its own schema, as a Subscriber owner with some data and as legal, with the conformance checks: no 5xx, every
status and content type documented, every response body matching its schema. 0 failures.

In-process (ASGI) on PostgreSQL in CI (SQLite without it), a bounded number of examples per operation, Hypothesis
derandomized (the same cases on every run, so CI is stable) and without shrinking (a failure is reported as found,
with its reproduction).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dpa_service.app import create_app
from dpa_service.core.db import Database
from dpa_service.core.identity import Actor
from dpa_service.core.settings import Settings
from dpa_service.users.models import StaffCreate
from dpa_service.users.services import create_staff
from tests.conftest import POSTGRES_URL
from tests.helpers.agreements import approve_standard_dpa, request_variables

EXAMPLES = 5  # per operation and role: ~130 operations x 2 roles
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Side effects a fuzzer must not set off: logging the caller out ends the session it is testing with.
SKIPPED = {("POST", "/logout")}


async def _bootstrap(settings: Any) -> str:
    db = Database(settings.database)
    try:
        await approve_standard_dpa(db)
        created = await create_staff(
            db, Actor.system("test"), StaffCreate(email="root@processor.example", name="Root", role="platform_admin")
        )
        return created.api_key
    finally:
        await db.dispose()


def _seed(client: asgi.ASGIClient, admin_key: str) -> dict[str, str]:
    """An owner of a tenant with some data (agreements, a transfer, a breach notice), and a legal user."""

    def call(method: str, path: str, key: str, body: Any = None) -> Any:
        response = client.request(method, f"/api/v1{path}", json=body, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code in (200, 201), f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    tenant = call("POST", "/tenants", admin_key, {
        "name": "Fuzz", "legal_name": "Fuzz GmbH", "country": "DE", "address": "Unter den Linden 1, Berlin",
        "contact_email": "privacy@fuzz.example", "admin_email": "owner@fuzz.example", "admin_name": "Olive Owner",
    })  # fmt: skip
    owner = tenant["admin_api_key"]
    legal = call("POST", "/staff", admin_key, {"email": "legal@processor.example", "name": "Lee", "role": "legal"})
    draft = call("POST", "/agreements", owner, {"template_key": "standard-dpa", "variables": request_variables()})
    call("POST", "/agreements", owner, {
        "template_key": "standard-dpa", "variables": request_variables(),
        "custom_clauses": [{"title": "Audit window", "text": "30 days"}],
    })  # fmt: skip
    call("POST", f"/agreements/{draft['id']}/submit", owner)
    call("POST", "/transfers", owner, {
        "importer": "Acme Analytics Inc.", "destination_country": "US", "data_categories": ["contact data"],
        "mechanism": "scc-2021", "start_date": "2026-01-01",
    })  # fmt: skip
    call("POST", "/breach-notices", owner, {
        "became_aware_at": "2026-01-01T10:00:00Z", "description": "A laptop was lost.", "data_categories": ["email"],
        "subjects_estimate": 10, "measures": "Remote wipe.",
    })  # fmt: skip
    return {"owner": owner, "legal": legal["api_key"]}


def _run_operation(operation: Any, headers: dict[str, str], found: list[str], counter: list[int]) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    def run(case: Any) -> None:
        counter[0] += 1
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # collected, not raised: Hypothesis would stop at the first
            detail = "\n".join(str(e) for e in getattr(exc, "exceptions", [exc]))
            found.append(f"{operation.method.upper()} {operation.path}: {type(exc).__name__}: {detail}"[:3000])

    run()


@pytest.fixture
def app_and_keys(backend: str, request: pytest.FixtureRequest) -> Any:
    """The app on a fresh database, seeded: PostgreSQL where it is configured (CI; where NUL in text was a 500),
    else SQLite. One run of ~40 s is what CI's ten minutes allow."""
    if backend == "sqlite" and POSTGRES_URL:
        pytest.skip("fuzzed on PostgreSQL (DPA_TEST_POSTGRES_URL is set)")
    settings: Settings = request.getfixturevalue("settings")
    settings = settings.model_copy(update={"rate_limit_per_minute": 100_000})
    admin_key = asyncio.run(_bootstrap(settings))
    app = create_app(settings)
    with asgi.get_client(app) as client:
        keys = _seed(client, admin_key)
        yield app, keys
    asgi.shutdown_lifespans()


def test_every_operation_conforms_to_the_openapi_document_as_owner_and_legal(
    app_and_keys: tuple[Any, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    app, keys = app_and_keys
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    found: list[str] = []
    counter = [0]
    started = time.perf_counter()
    for role in ("owner", "legal"):
        headers = {"Authorization": f"Bearer {keys[role]}"}
        for operation in operations:
            if (operation.method.upper(), operation.path) not in SKIPPED:
                _run_operation(operation, headers, found, counter)
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nschemathesis: {len(operations)} operations, {counter[0]} cases in {elapsed:.1f} s")  # noqa: T201 - the run's size, for the CI log
    assert not found, f"{len(found)} failures:\n\n" + "\n\n".join(found[:40])
