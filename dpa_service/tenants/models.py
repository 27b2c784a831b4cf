"""Subscribers (tenants): the controllers that sign DPAs with the processor."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from dpa_service.core.clock import utcnow
from dpa_service.core.db import UTCDateTime
from dpa_service.core.ids import new_id
from dpa_service.core.validation import STRICT_BODY, CountryCode, Email, LegalName, Name, PlainName, SafeText


class TenantProfile(SQLModel):
    """What a Subscriber keeps about itself; it pre-fills the controller's part of every DPA."""

    legal_name: LegalName = Field(max_length=300)
    country: CountryCode = Field(max_length=2)
    address: SafeText | None = Field(default=None, max_length=1000)
    registration_number: PlainName | None = Field(default=None, max_length=100)
    contact_name: PlainName | None = Field(default=None, max_length=200)
    contact_email: Email | None = Field(default=None, max_length=320)
    contact_phone: PlainName | None = Field(default=None, max_length=50)
    dpo_name: PlainName | None = Field(default=None, max_length=200)
    dpo_email: Email | None = Field(default=None, max_length=320)
    eu_representative_name: PlainName | None = Field(default=None, max_length=300)
    eu_representative_address: SafeText | None = Field(default=None, max_length=1000)
    eu_representative_email: Email | None = Field(default=None, max_length=320)


class TenantBase(TenantProfile):
    name: Name = Field(max_length=200)


class TenantCreate(TenantBase):
    model_config = STRICT_BODY

    admin_email: Email
    admin_name: Name


class TenantUpdate(SQLModel):
    """A JSON merge patch (RFC 7396) of the profile: absent keeps, null clears an optional field."""

    model_config = STRICT_BODY

    name: Name | None = None
    legal_name: LegalName | None = None
    country: CountryCode | None = None
    address: SafeText | None = Field(default=None, max_length=1000)
    registration_number: PlainName | None = Field(default=None, max_length=100)
    contact_name: PlainName | None = Field(default=None, max_length=200)
    contact_email: Email | None = None
    contact_phone: PlainName | None = Field(default=None, max_length=50)
    dpo_name: PlainName | None = Field(default=None, max_length=200)
    dpo_email: Email | None = None
    eu_representative_name: PlainName | None = Field(default=None, max_length=300)
    eu_representative_address: SafeText | None = Field(default=None, max_length=1000)
    eu_representative_email: Email | None = None


REQUIRED_PROFILE_FIELDS = ("name", "legal_name", "country")


class Tenant(TenantBase, table=True):
    __tablename__ = "tenants"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TenantPublic(TenantBase):
    id: uuid.UUID
    created_at: datetime
    updated_at: datetime


class TenantCreated(TenantPublic):
    admin_user_id: uuid.UUID
    admin_api_key: str
