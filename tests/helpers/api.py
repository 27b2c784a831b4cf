"""A thin, readable client for tests: `await admin.post("/tenants", {...})` with the caller's key."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from httpx import Response
from sqlalchemy import select

from dpa_service.core.db import Database, Scope
from dpa_service.core.identity import Actor, Role
from dpa_service.core.mailer import read_log
from dpa_service.users.models import StaffCreate, User
from dpa_service.users.services import create_staff

API = "/api/v1"


@dataclass
class Api:
    client: httpx.AsyncClient
    key: str
    user_id: str = ""
    tenant_id: str | None = None

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **(extra or {})}

    def url(self, path: str) -> str:
        return path if path.startswith(("/api/", "/health", "/schema")) else API + path

    async def get(self, path: str, **params: Any) -> Response:
        return await self.client.get(self.url(path), params=params or None, headers=self._headers(None))

    async def all(self, path: str, **params: Any) -> list[Any]:
        """Every item of a list, following `next_cursor` (a list may outgrow one page)."""
        items: list[Any] = []
        cursor = None
        while True:
            response = await self.get(path, limit=200, **params, **({"cursor": cursor} if cursor else {}))
            assert response.status_code == 200, response.text
            items += response.json()["items"]
            cursor = response.json()["next_cursor"]
            if not cursor:
                return items

    async def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Response:
        return await self.client.post(self.url(path), json=body, headers=self._headers(headers))

    async def patch(self, path: str, body: Any) -> Response:
        return await self.client.patch(self.url(path), json=body, headers=self._headers(None))

    async def delete(self, path: str) -> Response:
        return await self.client.delete(self.url(path), headers=self._headers(None))

    async def new_tenant(self, **overrides: Any) -> Api:
        """Create a Subscriber as this (platform admin) caller and return its owner's client."""
        suffix = secrets.token_hex(3)
        body = {
            "name": f"Tenant {suffix}",
            "legal_name": f"Tenant {suffix} GmbH",
            "country": "DE",
            "address": "Unter den Linden 1, 10117 Berlin",
            "registration_number": f"HRB {suffix}",
            "contact_email": f"privacy@{suffix}.example",
            "admin_email": f"owner@{suffix}.example",
            "admin_name": "Olive Owner",
            **overrides,
        }
        response = await self.post("/tenants", body)
        assert response.status_code == 201, response.text
        data = response.json()
        return Api(self.client, data["admin_api_key"], data["admin_user_id"], data["id"])

    async def new_user(self, role: str) -> Api:
        """Add a user to this caller's tenant."""
        response = await self.post(
            "/users", {"email": f"{role}-{secrets.token_hex(3)}@x.example", "name": role, "role": role}
        )
        assert response.status_code == 201, response.text
        data = response.json()
        return Api(self.client, data["api_key"], data["id"], data["tenant_id"])

    async def new_staff(self, role: str) -> Api:
        response = await self.post(
            "/staff", {"email": f"{role}-{secrets.token_hex(3)}@processor.example", "name": role, "role": role}
        )
        assert response.status_code == 201, response.text
        data = response.json()
        return Api(self.client, data["api_key"], data["id"], None)


async def bootstrap_admin(client: httpx.AsyncClient, db: Database) -> Api:
    email = f"admin-{uuid.uuid4().hex[:8]}@processor.example"
    created = await create_staff(
        db, Actor.system("test"), StaffCreate(email=email, name="Admin", role="platform_admin")
    )
    async with db.transaction(Scope.system(), write=False) as session:
        assert await session.scalar(select(User.role).where(User.id == created.id)) == Role.PLATFORM_ADMIN
    return Api(client, created.api_key, str(created.id), None)


_CONFIRMATION = re.compile(r"https?://[^/\s]+(/verify-email/[A-Za-z0-9_-]+)")
CONFIRMATION_SUBJECT = "Confirm your e-mail address for the DPA service"


def notices(var_dir: Path) -> list[dict[str, Any]]:
    """Every e-mail logged but the confirmation links each new account is sent (for tests counting notices)."""
    return [m for m in read_log(var_dir) if m["subject"] != CONFIRMATION_SUBJECT]


def latest_confirmation_link(var_dir: Path, email: str) -> str:
    """The path of the newest confirmation link e-mailed to `email` (the mail log is the inbox in tests)."""
    mails = [m for m in read_log(var_dir) if m["to"] == email and m["subject"] == CONFIRMATION_SUBJECT]
    assert mails, f"no confirmation link was e-mailed to {email}"
    found = _CONFIRMATION.search(mails[-1]["body"])
    assert found, mails[-1]["body"]
    return found.group(1)


async def verify_email(api: Api, var_dir: Path | None = None) -> dict[str, Any]:
    """Verify the caller's address the way its owner would: open the confirmation link e-mailed to it when the
    account was made (one GET; nothing if it is verified already). Returns the caller's /me afterwards."""
    me = (await api.get("/me")).json()
    if me["email_verified"]:
        return me
    folder = var_dir or api.client.app.state.settings.var_dir  # type: ignore[attr-defined]
    opened = await api.client.get(latest_confirmation_link(folder, me["email"]))
    assert opened.status_code == 200, opened.text
    me = (await api.get("/me")).json()
    assert me["email_verified"] and me["email_verification"] == "confirmation_link", me
    return me
