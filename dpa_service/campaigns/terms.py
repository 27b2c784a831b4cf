"""What a campaign asks for, checked: the template version it moves tenants to, the mechanism it moves them away
from and its replacement (in force today), the due date; and the statuses its progress counts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
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

WRITE_BATCH = 1000
STAFF = Scope(cross_tenant=True)  # legal's scope: campaigns work across tenants
RUN_LOCK = 0x43414D50  # "CAMP": one campaign run at a time (PostgreSQL advisory lock, transaction-scoped)
EXECUTED_OR_LATER = frozenset({"executed", "superseded"})
SIGNED_OR_LATER = frozenset({"signed", *EXECUTED_OR_LATER})
DECLINED = frozenset({"voided"})
DECLINABLE = frozenset(agreements.OPEN_STATUSES) - {"signed"}  # not yet signed
PREVIEW_NAMES = 50


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
    """Why `code` cannot be relied on for a new DPA today (None: it can)."""
    mechanism = registry.mechanisms()[code]
    ends = [d for d in (mechanism.valid_until, mechanism.new_transfers_until, invalidated.get(code)) if d is not None]
    if mechanism.valid_from > today:
        return f"is not in force before {mechanism.valid_from.isoformat()}"
    if ends and min(ends) <= today:
        return f"is not in force for a new DPA since {min(ends).isoformat()}"
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


def swapped(mechanisms: Sequence[str], replace: str | None, replacement: str | None) -> list[str]:
    """The mechanisms with `replace` replaced by `replacement` in its place, each code once."""
    result: list[str] = []
    for code in mechanisms:
        code = replacement if code == replace and replacement else code
        if code != replace and code not in result:
            result.append(code)
    return result
