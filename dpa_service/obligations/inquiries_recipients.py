"""Who an inquiry asks, and the earliest due date the DPA allows for them (clause 9.3 of the standard DPA).

Recipients are `"all"` (every tenant with an executed DPA, asked of the agreements domain) or a list of tenant
ids, each bad entry named by its path (`tenant_ids.3`). The minimum due date is the end (UTC) of the N-th Business
Day after the day the inquiry is sent, N from each tenant's current template version (`deadline.business_days` of
its `by_inquiry_due_date` obligation; 10 when it states none or the tenant has no executed DPA), counting public
holidays of the processor's country and the tenant's (clause 1.1). A batch has one due date: the latest of its
tenants' minimums, so it is lawful for each of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dpa_service.agreements import services as agreements
from dpa_service.core import registry
from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import FieldError, InvalidInput
from dpa_service.obligations.business_days import due_after
from dpa_service.obligations.inquiries_models import MAX_RECIPIENTS
from dpa_service.template_versions import services as templates
from dpa_service.tenants import services as tenants

DUE_RULE = "by_inquiry_due_date"
DEFAULT_BUSINESS_DAYS = 10  # clause 9.3, for a tenant whose template version states no figure (or has no DPA)
MAX_LISTED_ERRORS = 20  # a list of 10,000 bad ids names the first ones, not all


def business_days_of(obligations: Sequence[dict[str, Any]]) -> int:
    """The template version's figure for an inquiry's minimum due date (its `by_inquiry_due_date` obligation)."""
    for obligation in obligations:
        deadline = obligation.get("deadline") or {}
        if deadline.get("rule") == DUE_RULE and isinstance(deadline.get("business_days"), int):
            return int(deadline["business_days"])
    return DEFAULT_BUSINESS_DAYS


def processor_country() -> str:
    return str(registry.processor()["country"])


@dataclass(frozen=True)
class Recipients:
    """Who is asked (in order), each one's country, and the template version of each one's executed DPA."""

    tenant_ids: list[uuid.UUID]
    countries: dict[uuid.UUID, str]
    templates: dict[uuid.UUID, uuid.UUID]


async def minimum_due_at(db: Database, scope: Scope, recipients: Recipients, asked_at: datetime) -> datetime:
    """The earliest due date the DPA allows for every recipient: the latest of their own minimums."""
    figures: dict[uuid.UUID, int] = {}
    for version_id in set(recipients.templates.values()):
        figures[version_id] = business_days_of((await templates.version_by_id(db, scope, version_id)).obligations)
    ours = processor_country()
    cases: set[tuple[int, str]] = set()
    for tenant_id in recipients.tenant_ids:
        template_id = recipients.templates.get(tenant_id)
        days = figures[template_id] if template_id is not None else DEFAULT_BUSINESS_DAYS
        cases.add((days, recipients.countries[tenant_id]))
    return max(due_after(asked_at, days, (ours, country)) for days, country in cases)


def suggested_due_at(asked_at: datetime) -> datetime:
    """What the page offers before any recipient is chosen: the standard figure, counting the processor's own
    public holidays (the recipients' may push the minimum later; the page then says so)."""
    return due_after(asked_at, DEFAULT_BUSINESS_DAYS, (processor_country(),))


def _parse_ids(raw: Any) -> list[uuid.UUID]:
    if not isinstance(raw, list):
        raise InvalidInput.field("tenant_ids", 'must be a list of tenant ids, or "all"')
    if not raw:
        raise InvalidInput.field("tenant_ids", "must name at least one tenant")
    if len(raw) > MAX_RECIPIENTS:
        raise InvalidInput.field("tenant_ids", f'names {len(raw)} tenants: at most {MAX_RECIPIENTS} at once (or "all")')
    errors: list[FieldError] = []
    ids: list[uuid.UUID] = []
    seen: set[uuid.UUID] = set()
    for index, value in enumerate(raw):
        try:
            tenant_id = uuid.UUID(value) if isinstance(value, str) else None
        except ValueError:
            tenant_id = None
        if tenant_id is None:
            errors.append(FieldError(f"tenant_ids.{index}", "is not a tenant id"))
        elif tenant_id in seen:
            errors.append(FieldError(f"tenant_ids.{index}", "is listed twice"))
        else:
            seen.add(tenant_id)
            ids.append(tenant_id)
    if errors:
        raise InvalidInput("Some recipients are not tenant ids.", errors[:MAX_LISTED_ERRORS])
    return ids


async def recipients_of(db: Database, scope: Scope, raw: Any) -> Recipients:
    """`"all"` (every tenant with an executed DPA) or a list of tenant ids, checked: each bad entry is named."""
    if raw == "all":
        executed = await agreements.executed_templates(db, scope)
        if not executed:
            raise InvalidInput.field("tenant_ids", "no tenant has an executed DPA yet: name the tenants to ask")
        ids = sorted(executed)
        return Recipients(ids, await tenants.countries(db, scope, ids), executed)
    ids = _parse_ids(raw)
    countries = await tenants.countries(db, scope, ids)
    unknown = [
        FieldError(f"tenant_ids.{index}", "no such tenant")
        for index, tenant_id in enumerate(ids)
        if tenant_id not in countries
    ]
    if unknown:
        raise InvalidInput("Some recipients are not tenants.", unknown[:MAX_LISTED_ERRORS])
    return Recipients(ids, countries, await agreements.executed_templates(db, scope, ids))
