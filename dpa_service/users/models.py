"""People who use the service (a tenant's users, or the processor's staff) and their API keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from dpa_service.core.clock import utcnow
from dpa_service.core.db import UTCDateTime
from dpa_service.core.ids import new_id
from dpa_service.core.validation import STRICT_BODY, Email, Name, PlainName


class SubscriberRole(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class StaffRole(StrEnum):
    LEGAL = "legal"
    SALES = "sales"
    PLATFORM_ADMIN = "platform_admin"


class VerificationMethod(StrEnum):
    """How a user's e-mail address was shown to be theirs: each proves they could read mail sent to it."""

    CONFIRMATION_LINK = "confirmation_link"  # opened the link e-mailed when the account was made (or resent)
    SIGN_IN_LINK = "sign_in_link"  # signed in with an e-mailed sign-in link


class User(SQLModel, table=True):
    """A tenant's user (`tenant_id` set) or a member of the processor's staff (`tenant_id` null).

    An address belongs to one account across every tenant and the staff (`uq_users_email`): otherwise a tenant
    could add a user with another tenant's (or a member of staff's) address. It is unverified until its owner opens
    a confirmation link or signs in by e-mail link; only then may the account sign for itself (embedded signing).
    """

    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_email", "email", unique=True),
        Index("uq_users_tenant_email", "tenant_id", "email", unique=True),
        Index(
            "uq_users_staff_email",
            "email",
            unique=True,
            sqlite_where=text("tenant_id IS NULL"),
            postgresql_where=text("tenant_id IS NULL"),
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID | None = Field(default=None, foreign_key="tenants.id")
    email: str = Field(max_length=320)
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    email_verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    email_verification: str | None = Field(default=None, max_length=20)  # a VerificationMethod, set with the time


class ApiKey(SQLModel, table=True):
    """Only the SHA-256 of a key is kept: the key itself is shown once, when it is made."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_tenant_user", "tenant_id", "user_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID | None = Field(default=None, foreign_key="tenants.id")
    user_id: uuid.UUID = Field(foreign_key="users.id")
    name: PlainName | None = Field(default=None, max_length=100)
    prefix: str = Field(max_length=16)
    key_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserCreate(SQLModel):
    model_config = STRICT_BODY

    email: Email
    name: Name
    role: SubscriberRole


class StaffCreate(SQLModel):
    model_config = STRICT_BODY

    email: Email
    name: Name
    role: StaffRole


class UserCreated(SQLModel):
    id: uuid.UUID
    email: str
    name: str
    role: str
    tenant_id: uuid.UUID | None
    api_key: str
    api_key_id: uuid.UUID
    email_verified: bool = False  # a new address is unverified until the confirmation link e-mailed to it is opened


class EmailVerified(SQLModel):
    """Whether (and how, and when) a user's address was shown to be theirs."""

    email_verified: bool
    email_verified_at: datetime | None
    email_verification: VerificationMethod | None


class UserPublic(EmailVerified):
    id: uuid.UUID
    email: str
    name: str
    role: str
    created_at: datetime


class Me(EmailVerified):
    id: uuid.UUID
    email: str
    name: str
    role: str
    tenant_id: uuid.UUID | None


class VerificationSent(SQLModel):
    """A confirmation link was e-mailed to the user's address (`POST /api/v1/users/{id}/verification`)."""

    user_id: uuid.UUID
    email: str
    expires_at: datetime


class ApiKeyCreate(SQLModel):
    model_config = STRICT_BODY

    name: PlainName | None = Field(default=None, max_length=100)


class ApiKeyPublic(SQLModel):
    id: uuid.UUID
    name: str | None
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    api_key: str


class SignInLink(SQLModel, table=True):
    """A single-use e-mailed sign-in link for one user. Only the SHA-256 of its token is stored."""

    __tablename__ = "sign_in_links"
    __table_args__ = (Index("ix_sign_in_links_email_created", "email", "created_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID | None = Field(default=None, foreign_key="tenants.id")
    user_id: uuid.UUID = Field(foreign_key="users.id")
    email: str = Field(max_length=320)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EmailConfirmation(SQLModel, table=True):
    """A single-use link e-mailed to a user's address to confirm it is theirs. Only the SHA-256 of its token is
    stored, so a leaked database confirms nobody."""

    __tablename__ = "email_confirmations"
    __table_args__ = (Index("ix_email_confirmations_user_created", "user_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID | None = Field(default=None, foreign_key="tenants.id")
    user_id: uuid.UUID = Field(foreign_key="users.id")
    email: str = Field(max_length=320)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
