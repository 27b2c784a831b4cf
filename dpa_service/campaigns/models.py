"""Re-papering campaigns: legal's campaign (what it moves tenants to or away from, why, by when), the link from it to
each tenant's new draft, and the API schemas."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import StringConstraints
from sqlalchemy import JSON, Date, Index, Text
from sqlmodel import Field, SQLModel

from dpa_service.core.clock import utcnow
from dpa_service.core.db import UTCDateTime
from dpa_service.core.ids import new_id
from dpa_service.core.validation import STRICT_BODY, SafeText

# A catalogue code (`eu-us-privacy-shield`): lowercase letters, digits and hyphens; whether it exists is the
# service's check (422 naming the field).
MechanismCode = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
]
Reason = Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
DeclineReason = Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class Campaign(SQLModel, table=True):
    """Legal's campaign: the processor's own record, across tenants (not tenant-owned: Subscribers never read it
    directly; each sees its own link and draft). `skipped` lists the tenants the last run left out, and why."""

    __tablename__ = "campaigns"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    template_id: uuid.UUID | None = Field(default=None, foreign_key="template_versions.id")
    template_key: str | None = Field(default=None, max_length=100)
    template_version: int | None = None
    replace_mechanism: str | None = Field(default=None, max_length=64)
    replacement_mechanism: str | None = Field(default=None, max_length=64)
    reason: str = Field(sa_type=Text)
    due_on: date = Field(sa_type=Date)
    created_by: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_run_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    runs: int = 1
    skipped: list[dict[str, str]] = Field(default_factory=list, sa_type=JSON)


class CampaignAgreement(SQLModel, table=True):
    """One tenant reached by a campaign: the draft made for it and the executed DPA it replaces (tenant-owned).
    One per tenant and campaign, so running a campaign again never makes a second draft."""

    __tablename__ = "campaign_agreements"
    __table_args__ = (
        Index("uq_campaign_agreements_campaign_tenant", "campaign_id", "tenant_id", unique=True),
        Index("ix_campaign_agreements_campaign_agreement", "campaign_id", "agreement_id"),
        Index("ix_campaign_agreements_tenant_id_id", "tenant_id", "id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    campaign_id: uuid.UUID = Field(foreign_key="campaigns.id")
    agreement_id: uuid.UUID = Field(foreign_key="agreements.id", unique=True)
    previous_agreement_id: uuid.UUID = Field(foreign_key="agreements.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CampaignCreate(SQLModel):
    """At least one of `template_id` (an approved version: tenants on an older version of its key move to it) and
    `replace_mechanism` (tenants relying on it move to `replacement_mechanism`)."""

    model_config = STRICT_BODY

    template_id: uuid.UUID | None = None
    replace_mechanism: MechanismCode | None = None
    replacement_mechanism: MechanismCode | None = None
    reason: Reason
    due_on: date


class DeclineCreate(SQLModel):
    model_config = STRICT_BODY

    reason: DeclineReason


class Skipped(SQLModel):
    tenant_id: uuid.UUID
    reason: str


class CampaignRun(SQLModel):
    """What starting (or running again) a campaign did: `created` drafts now, `total` drafts in all."""

    id: uuid.UUID
    total: int
    created: int
    skipped: list[Skipped]


class CampaignProgress(SQLModel):
    """A campaign and where its tenants stand, derived from its agreements' statuses: `signed` counts signed or
    later (executed, superseded), `executed` executed or later, `declined` voided, `overdue` neither executed nor
    declined after `due_on`; `pending` the rest (not yet signed, not declined)."""

    id: uuid.UUID
    template_id: uuid.UUID | None
    template: str | None
    replace_mechanism: str | None
    replacement_mechanism: str | None
    reason: str
    due_on: date
    created_at: datetime
    last_run_at: datetime
    runs: int
    total: int
    notified: int
    signed: int
    executed: int
    declined: int
    overdue: int
    pending: int
    statuses: dict[str, int]
    skipped: list[Skipped]


class CampaignAgreementPublic(SQLModel):
    agreement_id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_name: str | None
    status: str
    previous_agreement_id: uuid.UUID
    created_at: datetime
    notified_at: datetime | None
    signed_at: datetime | None
    executed_at: datetime | None
    declined_at: datetime | None
    decline_reason: str | None


class CampaignPreview(SQLModel):
    """Who starting the campaign would reach now: `count` tenants (the first `tenants` by name), and who it would
    skip."""

    count: int
    tenants: list[dict[str, Any]]
    skipped: list[Skipped]


class WaitingDpa(SQLModel):
    """A campaign's new DPA waiting for a Subscriber (its dashboard)."""

    agreement_id: uuid.UUID
    campaign_id: uuid.UUID
    status: str
    reason: str
    due_on: date
    overdue: bool
    declinable: bool = False
    decline_reason: str | None = None
