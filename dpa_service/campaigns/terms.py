"""What a campaign asks for, checked: the template version it moves tenants to, the mechanism it moves them away
from and its replacement (in force today), the due date; and the statuses its progress counts."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from dpa_service.agreements import services as agreements
from dpa_service.campaigns.models import (
    CampaignCreate,
)
from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import FieldError, InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Role
from dpa_service.template_versions import services as templates
from dpa_service.transfers import services as transfers

STAFF = Scope(cross_tenant=True)  # legal's scope: campaigns work across tenants
EXECUTED_OR_LATER = frozenset({"executed", "superseded"})
SIGNED_OR_LATER = frozenset({"signed", *EXECUTED_OR_LATER})
DECLINED = frozenset({"voided"})
DECLINABLE = frozenset(agreements.OPEN_STATUSES) - {"signed"}  # not yet signed


# --- What a campaign asks for ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The template version a campaign moves tenants to (`key` v`version`)."""

    id: uuid.UUID
    key: str
    version: int


@dataclass(frozen=True)
class Plan:
    template: Target | None
    replace: str | None
    replacement: str | None


def legal_only(actor: Actor) -> None:
    """Campaigns are legal's (the CLI and demo act as the system, role None)."""
    if actor.role not in (Role.LEGAL.value, None):
        raise PermissionDenied("Re-papering campaigns are started by the processor's legal team.")


def in_force(code: str, today: date, invalidated: dict[str, date]) -> str | None:
    """Why a new DPA made today cannot offer `code` (None: it can): the same rule as a DPA's own request (never
    Article 49, in force under some regime's law today) and no invalidation legal recorded from today or earlier."""
    problem = templates.mechanism_problem(code, today)
    if problem is not None:
        return problem
    if code in invalidated and invalidated[code] <= today:
        return f"was recorded as invalid from {invalidated[code].isoformat()}"
    return None


async def plan_of_terms(db: Database, data: CampaignCreate) -> Plan:
    """Check a campaign's terms; every failing field is named (422)."""
    errors: list[FieldError] = []
    today = utcnow().date()
    if data.template_id is None and data.replace_mechanism is None:
        errors.append(FieldError("template_id", "give template_id and/or replace_mechanism: what the campaign moves"))
    target = None
    if data.template_id is not None:
        try:
            version = await templates.version_by_id(db, STAFF, data.template_id)
        except NotFound:
            errors.append(FieldError("template_id", "no such template version"))
        else:
            if version.status != "approved":
                errors.append(
                    FieldError("template_id", f"is {version.status}: a campaign moves tenants onto an approved version")
                )
            target = Target(version.id, version.key, version.version)
    catalogue = registry.mechanisms()
    invalidated = await transfers.invalidations(db, STAFF)
    if data.replace_mechanism is not None and data.replace_mechanism not in catalogue:
        errors.append(FieldError("replace_mechanism", "is not a mechanism of the catalogue"))
    if data.replacement_mechanism is not None:
        if data.replace_mechanism is None:
            errors.append(FieldError("replacement_mechanism", "is given only with replace_mechanism"))
        elif data.replacement_mechanism not in catalogue:
            errors.append(FieldError("replacement_mechanism", "is not a mechanism of the catalogue"))
        elif data.replacement_mechanism == data.replace_mechanism:
            errors.append(FieldError("replacement_mechanism", "is the mechanism it would replace"))
        elif (why := in_force(data.replacement_mechanism, today, invalidated)) is not None:
            errors.append(FieldError("replacement_mechanism", why))
    elif data.replace_mechanism is not None:
        errors.append(FieldError("replacement_mechanism", "is required with replace_mechanism: what tenants move to"))
    if data.due_on <= today:
        errors.append(FieldError("due_on", f"must be after today ({today.isoformat()})"))
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return Plan(target, data.replace_mechanism, data.replacement_mechanism)


def swapped(
    mechanisms: Sequence[str],
    replace: str | None,
    replacement: str | None,
    offerable: Callable[[str], bool] = lambda code: True,
) -> list[str]:
    """The mechanisms with `replace` replaced by `replacement` in its place, each code once, and without those a
    new DPA may no longer offer (a 2019 DPA's 2010 SCCs, closed to new contracts since 2021-09-27): the draft must
    be one its Subscriber can submit."""
    result: list[str] = []
    for code in mechanisms:
        code = replacement if code == replace and replacement else code
        if code != replace and code not in result and offerable(code):
            result.append(code)
    return result
