"""Log lines as an operator collects them from `dpa serve`: one JSON object per line, each carrying the id of the
request it was written for (the caller's `X-Request-ID` when sane, else a generated one, echoed in the response),
and the tenant and user once they are known; the app's own lines and uvicorn's access lines alike."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from dpa_service import logs
from dpa_service.core.db import Database
from dpa_service.core.settings import DatabaseSettings, Settings
from dpa_service.tenants import services as tenants
from tests.conftest import app_for
from tests.helpers.api import bootstrap_admin


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def json_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"log_format": "json"})


@pytest.fixture
def app_logs_through_our_handler(json_settings: Settings) -> Iterator[None]:
    """What `logs.configure` does in `dpa serve` (under pytest it leaves the capture's handlers alone)."""
    root = logging.getLogger()
    ours, level = logs.handler(json_settings), root.level
    root.addHandler(ours)
    root.setLevel(logging.INFO)
    uvicorn_loggers = {name: logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    saved = {name: (lg.handlers[:], lg.propagate, lg.level) for name, lg in uvicorn_loggers.items()}
    try:
        yield
    finally:
        root.removeHandler(ours)
        root.setLevel(level)
        for name, lg in uvicorn_loggers.items():  # uvicorn's dictConfig set them up for the server
            lg.handlers[:], lg.propagate, lg.level = saved[name]


@pytest.fixture
async def server(json_settings: Settings, app_logs_through_our_handler: None) -> AsyncIterator[str]:
    """The app under a real uvicorn with `dpa serve`'s logging configuration."""
    port = _free_port()
    config = uvicorn.Config(
        app_for(json_settings), host="127.0.0.1", port=port, log_config=logs.log_config(json_settings), lifespan="on"
    )
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    try:
        async with asyncio.timeout(60):
            while not served.started:
                assert not task.done(), "the server did not start"
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        await task


def json_lines(captured: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.splitlines() if line.strip()]


async def test_every_line_of_a_request_carries_its_id_tenant_and_user(
    server: str, db: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=60) as http:
        owner = await (await bootstrap_admin(http, db)).new_tenant()

        async def broken(*_args: Any, **_kwargs: Any) -> None:
            raise RuntimeError("the profile store fell over")

        monkeypatch.setattr(tenants, "own_tenant", broken)
        failed = await http.get(
            "/api/v1/tenant", headers={"Authorization": f"Bearer {owner.key}", "X-Request-ID": "trace-0001-abcd"}
        )
        generated = await http.get("/health", headers={"X-Request-ID": "not a sane id; drop table"})
    assert failed.status_code == 500 and failed.headers["x-request-id"] == "trace-0001-abcd"
    assert failed.json()["correlation_id"] == "trace-0001-abcd"
    new_id = generated.headers["x-request-id"]
    assert new_id != "not a sane id; drop table" and len(new_id) >= 8

    out, err = capsys.readouterr()
    lines = json_lines(out) + json_lines(err)  # every line is a JSON object: json.loads raised otherwise
    assert all({"time", "level", "logger", "message", "request_id"} <= set(line) for line in lines)
    mine = [line for line in lines if line["request_id"] == "trace-0001-abcd"]
    error = next(line for line in mine if line["logger"] == "dpa_service.errors")
    access = next(line for line in mine if line["logger"] == "uvicorn.access")
    assert error["level"] == "error" and "the profile store fell over" in error["exception"]
    assert access["status"] == 500 and access["path"] == "/api/v1/tenant" and access["method"] == "GET"
    for line in (error, access):
        assert line["tenant_id"] == owner.tenant_id and line["user_id"] == owner.user_id
    assert any(
        line["logger"] == "uvicorn.access" and line["path"] == "/health"
        for line in lines
        if line["request_id"] == new_id
    )
    assert "not a sane id" not in out + err


def test_text_format_in_development_json_elsewhere(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"))
    assert settings.environment == "development" and settings.log_format_in_use == "text"
    assert settings.model_copy(update={"environment": "production"}).log_format_in_use == "json"
    assert settings.model_copy(update={"environment": "development", "log_format": "json"}).log_format_in_use == "json"
    record = logging.LogRecord("dpa_service.x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    text = logs.handler(settings)
    assert text.filter(record) and text.format(record).endswith("INFO dpa_service.x [-]: hello there")
