"""A webhook receiver as an integrator writes it, and an app allowed to call it (fixtures `signed_receiver`, `web`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from dpa_service.app import create_app
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from dpa_service.core.settings import Settings
from dpa_service.notifications.webhooks import verify_signature
from dpa_service.notifications.worker import run_once
from tests.conftest import running
from tests.helpers.agreements import approve_standard_dpa
from tests.helpers.api import Api, bootstrap_admin


@dataclass
class Receiver:
    """A Subscriber's webhook endpoint, as an integrator would write it: it checks `DPA-Signature` with the
    endpoint's secret and a 5-minute window, answers 401 to anything else, and counts each event id it accepted.

    `fail_next` makes it answer 500 that many times first (a receiver having a bad day)."""

    secrets: dict[str, str] = field(default_factory=dict)  # path -> endpoint secret
    accepted: dict[str, list[str]] = field(default_factory=dict)  # path -> event ids, in order
    rejected: int = 0
    failed: int = 0
    fail_next: int = 0
    down: bool = False
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def clock(self) -> float:
        """The receiver's idea of now: the service's injectable clock, so tests can travel in time."""
        return utcnow().timestamp()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:  # a receiver that is down: the connection drops with no answer
            writer.close()
            return
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((path, headers, body))
        status = self.answer(path, headers, body)
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        secret = self.secrets.get(path)
        if secret is None or not verify_signature(secret, headers.get("dpa-signature", ""), body, now=self.clock()):
            self.rejected += 1
            return 401
        if self.fail_next > 0:
            self.fail_next -= 1
            self.failed += 1
            return 500
        self.accepted.setdefault(path, []).append(headers["dpa-event-id"])
        return 200


@pytest.fixture
async def signed_receiver() -> AsyncIterator[tuple[Receiver, str]]:
    target = Receiver()
    server = await asyncio.start_server(target.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield target, f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


@pytest.fixture
async def web(settings: Settings, db: Database) -> AsyncIterator[tuple[httpx.AsyncClient, Api]]:
    """The service with webhooks to private addresses allowed (a development setting), and a platform admin."""
    await approve_standard_dpa(db)
    app = create_app(settings.model_copy(update={"webhook_allow_private": True}))
    async with running(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http, await bootstrap_admin(http, db)


async def drain(http: httpx.AsyncClient, db: Database) -> None:
    """Run worker rounds until nothing is left to do now (one round may leave follow-up work for the next)."""
    app = http.app  # type: ignore[attr-defined]
    for _ in range(1000):
        handled, attempted = await run_once(db, app.state.mailer, app.state.secret, allow_private=True)
        if not handled and not attempted:
            return
    raise AssertionError("the outbox did not drain")
