"""The agreement lifecycle's events, published inside the transaction that causes them.

Executing, superseding or voiding a DPA concerns other domains: the sub-processor list it authorizes, the transfers
it implies, and (later) obligations, contracts and re-papering campaigns. The agreements domain publishes an event
and imports none of them; each reacting domain's handler is registered once at start (`dpa_service.reactions`).
Handlers run in the publisher's transaction, in registration order, so a handler that raises rolls the whole step
back: the agreement stays where it was and nothing is stored.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from dpa_service.core.db import Database
from dpa_service.core.identity import Actor


@dataclass(frozen=True)
class AgreementExecuted:
    """A DPA was countersigned and sealed; `superseded` lists the tenant's executed DPAs it replaces."""

    actor: Actor
    tenant_id: uuid.UUID
    agreement_id: uuid.UUID
    template_id: uuid.UUID
    executed_at: datetime
    effective_date: date
    subprocessor_list_version: int
    subprocessors: tuple[dict[str, Any], ...]
    superseded: tuple[uuid.UUID, ...]
    contact_email: str | None


@dataclass(frozen=True)
class AgreementSuperseded:
    """An executed DPA was replaced by the tenant's newer one (published before that one's `AgreementExecuted`)."""

    actor: Actor
    tenant_id: uuid.UUID
    agreement_id: uuid.UUID
    superseded_by: uuid.UUID


@dataclass(frozen=True)
class AgreementVoided:
    actor: Actor
    tenant_id: uuid.UUID
    agreement_id: uuid.UUID
    previous_status: str


Event = AgreementExecuted | AgreementSuperseded | AgreementVoided
E = TypeVar("E", AgreementExecuted, AgreementSuperseded, AgreementVoided)
Handler = Callable[[Database, Any], Awaitable[None]]


class Reactions:
    """Which handlers react to which event type."""

    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = defaultdict(list)
        self.installed = False

    def subscribe(self, event_type: type[E], handler: Callable[[Database, E], Awaitable[None]]) -> None:
        if handler not in self._handlers[event_type]:
            self._handlers[event_type].append(handler)

    async def publish(self, db: Database, event: Event) -> None:
        """Run every handler for `event` in the caller's (open) transaction."""
        if not self.installed:
            # Executing a DPA without its reactions would quietly skip the authorization and the transfers.
            raise RuntimeError("the domains' reactions are not installed: call dpa_service.reactions.install()")
        for handler in self._handlers[type(event)]:
            await handler(db, event)


reactions = Reactions()
