"""The agreement lifecycle's events (and the two outside it that make an executed DPA outdated: a retired template
version, an invalidated transfer mechanism), published inside the transaction that causes them.

Executing, superseding or voiding a DPA concerns other domains: the sub-processor list it authorizes, the transfers
it implies, and (later) obligations, contracts and re-papering campaigns. The agreements domain publishes an event
and imports none of them; each reacting domain's handler is registered once at start (`dpa_service.reactions`).
Handlers run in the publisher's transaction, in registration order, so a handler that raises rolls the whole step
back: the agreement stays where it was and nothing is stored. Before a step, `checks` asks the same domains whether
they refuse it (a tenant in exit signs nothing more).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import DPAError
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
    # Where the Subscriber exports from (its establishment: the transfer's origin regime) and the mechanisms it
    # chose in the DPA: the transfer register records the Subscriber-to-processor transfer from them.
    controller_country: str | None = None
    mechanisms: tuple[str, ...] = ()


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


@dataclass(frozen=True)
class TemplateRetired:
    """Legal retired a template version: DPAs made with it are no longer current (published by template_versions in
    the retiring transaction, processor-wide scope)."""

    actor: Actor
    template_id: uuid.UUID
    key: str
    version: int


@dataclass(frozen=True)
class MechanismInvalidated:
    """Legal recorded that a transfer mechanism stops being valid from `invalid_from` (published by transfers in the
    recording transaction, processor-wide scope)."""

    actor: Actor
    code: str
    invalid_from: date
    invalidation_id: uuid.UUID


Event = AgreementExecuted | AgreementSuperseded | AgreementVoided | TemplateRetired | MechanismInvalidated
E = TypeVar("E", AgreementExecuted, AgreementSuperseded, AgreementVoided, TemplateRetired, MechanismInvalidated)
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
        # Handlers read the publisher's changes (the agreement's new status) through their own queries.
        await db.flush_open()
        for handler in self._handlers[type(event)]:
            await handler(db, event)


reactions = Reactions()


Check = Callable[[Database, Scope, uuid.UUID], Awaitable[None]]
# The same veto asked of many tenants at once (a fan-out): the refused ones, each with the reason.
BulkCheck = Callable[[Database, Scope, Sequence[uuid.UUID]], Awaitable[dict[uuid.UUID, str]]]


class Checks:
    """Vetoes other domains hold over the agreements domain's steps, asked before the step, in the caller's scope
    (and joining its open transaction, when there is one).

    A check refuses by raising (a `Conflict` is a 409 with its reason) and changes nothing; with no check
    registered, nothing is refused. The agreements domain asks `before_new_agreement` when a DPA is requested and
    `before_signing` before any signature: the request for one, the Subscriber's, and the processor's
    countersignature. Like the reactions, the checks are wired once at start (`dpa_service.reactions.install`), so
    agreements imports none of the domains that may say no.

    A fan-out that creates drafts for thousands of tenants (a re-papering campaign) asks `refusing_new_agreement`
    instead: one query per check rather than one per tenant, when the check was registered with its `bulk` form
    (without one, the tenant-by-tenant check is asked for each).
    """

    def __init__(self) -> None:
        self._before_new_agreement: list[Check] = []
        self._bulk_new_agreement: dict[Check, BulkCheck] = {}
        self._before_signing: list[Check] = []

    def add_before_new_agreement(self, check: Check, *, bulk: BulkCheck | None = None) -> None:
        if check not in self._before_new_agreement:
            self._before_new_agreement.append(check)
        if bulk is not None:
            self._bulk_new_agreement[check] = bulk

    def add_before_signing(self, check: Check) -> None:
        if check not in self._before_signing:
            self._before_signing.append(check)

    async def before_new_agreement(self, db: Database, scope: Scope, tenant_id: uuid.UUID) -> None:
        """Raise if `tenant_id` may request no new DPA."""
        for check in self._before_new_agreement:
            await check(db, scope, tenant_id)

    async def refusing_new_agreement(
        self, db: Database, scope: Scope, tenant_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, str]:
        """Which of `tenant_ids` may request no new DPA, each with the (first) reason; the others may."""
        refused: dict[uuid.UUID, str] = {}
        for check in self._before_new_agreement:
            asked = [tenant_id for tenant_id in tenant_ids if tenant_id not in refused]
            bulk = self._bulk_new_agreement.get(check)
            if bulk is not None:
                refused.update(await bulk(db, scope, asked))
                continue
            for tenant_id in asked:
                try:
                    await check(db, scope, tenant_id)
                except DPAError as exc:
                    refused[tenant_id] = exc.detail or type(exc).__name__
        return refused

    async def before_signing(self, db: Database, scope: Scope, tenant_id: uuid.UUID) -> None:
        """Raise if no DPA of `tenant_id` may be sent for signature, signed or countersigned now."""
        for check in self._before_signing:
            await check(db, scope, tenant_id)


checks = Checks()
