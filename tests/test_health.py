from __future__ import annotations

from pathlib import Path

import httpx

from dpa_service.app import create_app
from dpa_service.core.settings import DatabaseSettings, Settings
from tests.conftest import running


async def test_health_reports_database_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_health_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "dpa.db"
    settings = Settings(var_dir=tmp_path, database=DatabaseSettings(url=f"sqlite+aiosqlite:///{missing}"))
    app = create_app(settings.model_copy())
    async with running(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


async def test_openapi_document_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/v1/me", "/api/v1/tenants", "/api/v1/audit-events/verify"} <= set(paths)


def test_settings_refuse_unsafe_production_configuration(monkeypatch) -> None:
    import pytest

    monkeypatch.setenv("DPA_ENV", "production")
    with pytest.raises(ValueError, match="PUBLIC_BASE_URL is required"):
        Settings.from_env()
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://dpa.example.com")
    monkeypatch.setenv("DPA_WEBHOOK_ALLOW_PRIVATE", "1")
    with pytest.raises(ValueError, match="development only"):
        Settings.from_env()
    monkeypatch.setenv("DPA_ENV", "staging-ish")
    monkeypatch.delenv("DPA_WEBHOOK_ALLOW_PRIVATE")
    with pytest.raises(ValueError, match="DPA_ENV"):
        Settings.from_env()
