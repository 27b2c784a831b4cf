"""Every error is RFC 9457 problem+json with a correlation id; nothing internal leaks on a 500."""

from __future__ import annotations

import httpx
import pytest

from dpa_service.tenants import services as tenant_services
from tests.helpers.api import Api


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == status
    assert body["correlation_id"] == response.headers["x-request-id"]
    return body


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/nothing-here"), 404)


async def test_wrong_method_is_405_problem(admin: Api) -> None:
    assert_problem(await admin.client.put("/api/v1/me", headers={"Authorization": f"Bearer {admin.key}"}), 405)


async def test_malformed_json_is_400_and_creates_nothing(admin: Api) -> None:
    before = len((await admin.get("/tenants", limit=200)).json()["items"])
    response = await admin.client.post(
        "/api/v1/tenants",
        content=b'{"name": "x",',
        headers={"Authorization": f"Bearer {admin.key}", "Content-Type": "application/json"},
    )
    body = assert_problem(response, 400)
    assert body["errors"][0]["field"] == "body"
    assert len((await admin.get("/tenants", limit=200)).json()["items"]) == before


async def test_validation_errors_are_422_naming_every_failing_field(admin: Api) -> None:
    response = await admin.post(
        "/tenants", {"name": "", "legal_name": "L", "country": "XX", "admin_email": "not-an-email", "extra": 1}
    )
    body = assert_problem(response, 422)
    assert {e["field"] for e in body["errors"]} == {"name", "country", "admin_email", "admin_name", "extra"}
    assert all(e["message"] for e in body["errors"])


async def test_unexpected_error_is_500_with_correlation_id_and_no_internals(
    admin: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode(*_args, **_kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(tenant_services, "list_tenants", explode)
    response = await admin.get("/tenants", **{})
    body = assert_problem(response, 500)
    assert "secret internal detail" not in response.text and "Traceback" not in response.text
    assert body["correlation_id"] in caplog.text and "secret internal detail" in caplog.text


async def test_callers_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "req-12345678"})
    assert response.headers["x-request-id"] == "req-12345678"
