"""Sub-processor changes made through the API, each vendor named uniquely (a test may publish several)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from tests.helpers.api import Api


def vendor(**overrides: Any) -> dict[str, Any]:
    return {
        "name": f"Acme Translate {secrets.token_hex(3)}",
        "entity": "Acme Translate Inc.",
        "purpose": "Machine translation of chat messages",
        "locations": ["US"],
        "data_categories": ["chat transcripts"],
        "transfer_mechanism": "scc-2021",
        "website": "https://translate.example",
        **overrides,
    }


async def publish(legal: Api, **body: Any) -> dict[str, Any]:
    response = await legal.post("/subprocessor-changes", {"add": [vendor()], "reason": "Live translation", **body})
    assert response.status_code == 201, response.text
    return response.json()


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
