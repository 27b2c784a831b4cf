"""The API docs at /schema load nothing from the internet: every script, style and icon is served here."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx
import pytest

# What each kind of reference must answer with.
EXPECTED_TYPES = {"script": ("javascript",), "stylesheet": ("text/css",), "icon": ("image/",)}


class _References(HTMLParser):
    """(kind, url) of every `<script src>` and `<link href>` on a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.found.append(("script", attributes["src"] or ""))
        elif tag == "link" and attributes.get("href"):
            self.found.append((attributes.get("rel") or "link", attributes["href"] or ""))


def references(html: str) -> list[tuple[str, str]]:
    parser = _References()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize("path", ["/schema", "/schema/swagger"])
async def test_swagger_ui_loads_only_local_assets(client: httpx.AsyncClient, path: str) -> None:
    page = await client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    found = references(page.text)
    assert {kind for kind, _ in found} >= {"script", "stylesheet"}, found
    for kind, url in found:
        assert url.startswith("/") and not url.startswith("//"), f"{kind} {url} is not a local path"
        asset = await client.get(url)  # no API key: the browser fetches these before anyone signs in
        assert asset.status_code == 200, f"{url}: {asset.status_code}"
        content_type = asset.headers["content-type"]
        assert any(expected in content_type for expected in EXPECTED_TYPES[kind]), f"{url}: {content_type}"
        assert asset.content, f"{url} is empty"
        assert "max-age" in asset.headers.get("cache-control", "")


async def test_the_openapi_document_is_still_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "DPA service"
    assert "apiKey" in document["components"]["securitySchemes"]
    assert not any(path.startswith("/schema/assets") for path in document["paths"])
