"""A browser stand-in for page tests: its own cookie jar on the test app, forms posted with their CSRF token."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

from dpa_service.core.mailer import read_log
from dpa_service.core.settings import Settings

_CSRF = re.compile(r'name="_csrf_token" value="([^"]*)"')
_LINK = re.compile(r"(/login/[A-Za-z0-9_-]+(?:\?next=\S+)?)")


class Browser:
    """One person's browser: cookies persist across requests, like a real one, and nobody else shares them."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.http = httpx.AsyncClient(
            transport=client._transport, base_url=client.base_url, headers={"Accept": "text/html"}
        )
        self.csrf_token = ""

    async def get(self, path: str, **params: Any) -> httpx.Response:
        response = await self.http.get(path, params=params or None)
        if found := _CSRF.search(response.text):
            self.csrf_token = html.unescape(found.group(1))
        return response

    async def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kw: Any
    ) -> httpx.Response:
        """Post a form the way the page would: with the CSRF token of the last page seen."""
        if not self.csrf_token:
            await self.get("/login")
        body = {**(data or {}), **({"_csrf_token": self.csrf_token} if csrf else {})}
        response = await self.http.post(path, data=body, **kw)
        if found := _CSRF.search(response.text):
            self.csrf_token = html.unescape(found.group(1))
        return response

    async def sign_in_with_key(self, key: str) -> httpx.Response:
        await self.get("/login")
        return await self.post("/login/key", {"api_key": key})

    async def sign_in_by_email(self, settings: Settings, email: str) -> httpx.Response:
        """Ask for a link, open the newest one e-mailed to `email`, and confirm it."""
        await self.get("/login")
        await self.post("/login", {"email": email})
        link = latest_sign_in_link(settings, email)
        await self.get(link)
        return await self.post(link)

    async def aclose(self) -> None:
        await self.http.aclose()


def latest_sign_in_link(settings: Settings, email: str) -> str:
    mails = [m for m in read_log(settings.var_dir) if m["to"] == email and "sign-in link" in m["subject"]]
    assert mails, f"no sign-in link was e-mailed to {email}"
    found = _LINK.search(mails[-1]["body"])
    assert found, mails[-1]["body"]
    return found.group(1)


async def signed_in(client: httpx.AsyncClient, api: Any) -> Browser:
    """A browser signed in with `api`'s key (the key form of /login)."""
    browser = Browser(client)
    answer = await browser.sign_in_with_key(api.key)
    assert answer.status_code == 303, answer.text
    return browser
