"""Panels one domain adds to a page another domain owns (the Subscriber's dashboard, an agreement's page), wired once
by the composition root (`dpa_service.app`), so the page's own domain imports none of the domains that add to it:
the agreements pages show a re-papering campaign's new DPA without importing campaigns.

A provider answers a `Panel` (a template and its context) or None (nothing to show here); the page renders each in
order with `{% include panel.template %}`, the panel's context under `panel.context`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from dpa_service.core.db import Database
from dpa_service.core.identity import Principal

DASHBOARD = "app.dashboard"  # the Subscriber's /app/
AGREEMENT = "app.agreement"  # the Subscriber's /app/agreements/{id} (providers get `agreement_id`)


@dataclass(frozen=True)
class Panel:
    template: str
    context: dict[str, Any] = field(default_factory=dict)


Provider = Callable[[Database, Principal, "uuid.UUID | None"], Awaitable[Panel | None]]


class Panels:
    def __init__(self) -> None:
        self._providers: dict[str, list[Provider]] = defaultdict(list)

    def add(self, page: str, provider: Provider) -> None:
        if provider not in self._providers[page]:
            self._providers[page].append(provider)

    async def gather(
        self, page: str, db: Database, principal: Principal, subject: uuid.UUID | None = None
    ) -> list[Panel]:
        """Every panel the providers of `page` have for this viewer (and `subject`, the object the page shows)."""
        found = []
        for provider in self._providers[page]:
            if (panel := await provider(db, principal, subject)) is not None:
                found.append(panel)
        return found


panels = Panels()
