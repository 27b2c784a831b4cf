"""Data Processing Agreements of a tenant, their executed documents, signature requests and signature evidence,
and the API schemas."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import StringConstraints
from sqlalchemy import JSON, Date, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel

from dpa_service.core.clock import utcnow
from dpa_service.core.db import UTCDateTime
from dpa_service.core.ids import new_id
from dpa_service.core.validation import STRICT_BODY, Email, Name, PlainName, SafeText
from dpa_service.http.pagination import struct_page


class AgreementStatus(StrEnum):
    DRAFT = "draft"
    IN_LEGAL_REVIEW = "in_legal_review"
    CHANGES_REQUESTED = "changes_requested"
    READY_FOR_SIGNATURE = "ready_for_signature"
    OUT_FOR_SIGNATURE = "out_for_signature"
    SIGNED = "signed"
    EXECUTED = "executed"
    VOIDED = "voided"
    SUPERSEDED = "superseded"


class Agreement(SQLModel, table=True):
    __tablename__ = "agreements"
    __table_args__ = (
        Index("ix_agreements_tenant_status", "tenant_id", "status"),
        Index("ix_agreements_tenant_id_id", "tenant_id", "id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    template_id: uuid.UUID = Field(foreign_key="template_versions.id")
    template_key: str = Field(max_length=100)
    template_version: int
    template_sha256: str = Field(max_length=64)
    status: str = Field(default=AgreementStatus.DRAFT.value, max_length=30)
    variables: dict[str, Any] = Field(sa_type=JSON)
    custom_clauses: list[dict[str, str]] = Field(default_factory=list, sa_type=JSON)
    review_comment: str | None = Field(default=None, sa_type=Text)
    reviewed_by: uuid.UUID | None = None
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    subprocessor_list_version: int | None = None
    created_by: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)  # any change: an edit or a status
    # When the text (variables, custom clauses) last changed: the date the draft PDF carries, so the PDF a signer
    # saw rebuilds byte for byte at the countersignature however the status moved since.
    content_changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    signed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    executed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    effective_date: date | None = Field(default=None, sa_type=Date)
    document_sha256: str | None = Field(default=None, max_length=64)
    sealed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    voided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    void_reason: str | None = Field(default=None, max_length=1000)
    superseded_by: uuid.UUID | None = None
    superseded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A countersignature queued for the worker (`deferred_execution`): when legal gave it; why it could not run.
    execution_queued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    execution_error: str | None = Field(default=None, max_length=500)


class AgreementDocument(SQLModel, table=True):
    """The sealed, executed PDF: written once, never updated (append-only), checked against its hash on read."""

    __tablename__ = "agreement_documents"

    agreement_id: uuid.UUID = Field(primary_key=True, foreign_key="agreements.id")
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id", index=True)
    sha256: str = Field(max_length=64, unique=True)
    content: bytes = Field(sa_type=LargeBinary)
    sealed_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


ClauseText = Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
ClauseTitle = Annotated[PlainName, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class CustomClause(SQLModel):
    model_config = STRICT_BODY

    title: ClauseTitle
    text: ClauseText


class AgreementCreate(SQLModel):
    model_config = STRICT_BODY

    template_key: PlainName = Field(default="standard-dpa", max_length=100)
    variables: dict[str, Any] = Field(default_factory=dict)
    custom_clauses: list[CustomClause] = Field(default_factory=list, max_length=20)


class AgreementPatch(SQLModel):
    """JSON merge patch (RFC 7396) of the stored variables; custom_clauses, when given, replace the list."""

    model_config = STRICT_BODY

    variables: dict[str, Any] | None = None
    custom_clauses: list[CustomClause] | None = Field(default=None, max_length=20)


class ReviewDecision(StrEnum):
    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"


class ReviewCreate(SQLModel):
    model_config = STRICT_BODY

    decision: ReviewDecision
    comment: Annotated[SafeText, StringConstraints(strip_whitespace=True, max_length=5000)] = ""


class VoidCreate(SQLModel):
    model_config = STRICT_BODY

    reason: Annotated[SafeText, StringConstraints(strip_whitespace=True, max_length=1000)] = ""


class Signer(SQLModel):
    model_config = STRICT_BODY

    name: Name
    email: Email
    title: Annotated[PlainName, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class SignatureRequestCreate(SQLModel):
    model_config = STRICT_BODY

    provider: Literal["builtin", "docusign"] = "builtin"
    signer: Signer


class AgreementPublic(SQLModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    status: str
    template_id: uuid.UUID
    template_key: str
    template_version: int
    template_sha256: str
    variables: dict[str, Any]
    custom_clauses: list[dict[str, str]]
    review_comment: str | None
    reviewed_at: datetime | None
    subprocessor_list_version: int | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    signed_at: datetime | None
    executed_at: datetime | None
    effective_date: date | None
    document_sha256: str | None
    sealed_at: datetime | None
    voided_at: datetime | None
    void_reason: str | None
    superseded_by: uuid.UUID | None
    execution_queued_at: datetime | None = None
    execution_error: str | None = None


# The agreements list, encoded without building pydantic objects (http.pagination.struct_page): the same JSON.
AgreementListItem, AgreementPage = struct_page(AgreementPublic, "AgreementListItem")


class ReviewView(SQLModel):
    agreement_id: uuid.UUID
    status: str
    template: dict[str, Any]
    custom_clauses: list[dict[str, str]]
    review_comment: str | None
    diff: list[str]


class DocumentVerification(SQLModel):
    status: Literal["verified", "unknown", "tampered"]
    kind: Literal["agreement", "deletion_certificate"] | None = None  # what a verified PDF is
    agreement_id: uuid.UUID | None = None
    deletion_certificate_id: uuid.UUID | None = None  # a deletion certificate, sealed the same way
    sealed_at: datetime | None = None
    detail: str | None = None


class RequestStatus(StrEnum):
    PENDING = "pending"
    SIGNED = "signed"
    VOIDED = "voided"
    EXPIRED = "expired"
    DECLINED = "declined"  # the signer declined in DocuSign
    FAILED = "failed"  # DocuSign never accepted the envelope (see the envelope's reason)


class SignatureRequest(SQLModel, table=True):
    """A link sent to one signer. Only the SHA-256 of its token is stored; the token is burned when used."""

    __tablename__ = "signature_requests"
    __table_args__ = (Index("ix_signature_requests_tenant_agreement", "tenant_id", "agreement_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    agreement_id: uuid.UUID = Field(foreign_key="agreements.id")
    provider: str = Field(default="builtin", max_length=20)
    status: str = Field(default=RequestStatus.PENDING.value, max_length=20)
    signer_name: str = Field(max_length=200)
    signer_email: str = Field(max_length=320)
    signer_title: str = Field(max_length=200)
    token_hash: str = Field(max_length=64, unique=True)
    document_sha256: str = Field(max_length=64)
    requested_by: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set only when the link was handed back for embedded signing: the signer was the calling user, whose address
    # was verified then (how and when, copied into the signature's evidence). Null: the link went to the inbox only.
    signer_email_verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    signer_email_verification: str | None = Field(default=None, max_length=20)
    opened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # first view of the signing page (timeline)


class Signature(SQLModel, table=True):
    """Evidence of one signature, append-only: who, when, from where, on exactly which bytes, with what consent."""

    __tablename__ = "signatures"
    __table_args__ = (Index("ix_signatures_tenant_agreement", "tenant_id", "agreement_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    agreement_id: uuid.UUID = Field(foreign_key="agreements.id")
    request_id: uuid.UUID | None = Field(default=None, foreign_key="signature_requests.id")
    role: str = Field(max_length=20)  # subscriber | processor
    user_id: uuid.UUID | None = None
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    title: str = Field(max_length=200)
    typed_name: str = Field(max_length=200)
    signed_at: datetime = Field(sa_type=UTCDateTime)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=500)
    consent: bool
    consent_text_sha256: str = Field(max_length=64)
    authority_confirmed: bool
    document_sha256: str = Field(max_length=64)
    # How the signer's address was shown to be theirs, and when (EmailVerification); null on signatures made
    # before it was recorded, and for a member of staff whose address was never verified.
    email_verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    email_verification: str | None = Field(default=None, max_length=20)
    # SignatureMethod; null on signatures made before it was recorded. An automatic one names its standing
    # authority and stores no typed name, consent or authority confirmation ("", False: none was given).
    method: str | None = Field(default=None, max_length=20)
    authority: str | None = Field(default=None, max_length=500)
    provider: str = Field(default="builtin", max_length=20)


class SignatureMethod(StrEnum):
    """How a signature was made, as the evidence records it."""

    TYPED = "typed"  # the signer typed their name, consented and confirmed authority on the signing page
    ACTION = "action"  # a signed-in member of the processor's legal team countersigned
    AUTOMATIC = "automatic"  # applied by the service under a named standing authority, nobody typing anything
    # signed in DocuSign's own ceremony: DocuSign had the signer accept its electronic record and signature
    # disclosure (on its certificate of completion); our consent text and authority confirmation were never shown
    DOCUSIGN = "docusign"


class EmailVerification(StrEnum):
    """How a signer's address was verified, as the evidence records it."""

    CONFIRMATION_LINK = "confirmation_link"  # the signer (the calling user) had opened their confirmation link
    SIGN_IN_LINK = "sign_in_link"  # the signer (the calling user) had signed in with an e-mailed link
    SIGNING_LINK = "signing_link"  # the signing link was e-mailed to the address: using it proves the mailbox
    DOCUSIGN = "docusign"  # DocuSign e-mailed the envelope to the address (or the verified caller signed embedded)


class SignaturePublic(SQLModel):
    """One signature's evidence. An automatic countersignature has `method: "automatic"`, its `authority`, and
    null `typed_name`, `consent`, `consent_text_sha256` and `authority_confirmed`: nobody gave them."""

    role: str
    name: str
    email: str
    title: str
    typed_name: str | None
    signed_at: datetime
    ip: str | None
    user_agent: str | None
    consent: bool | None
    consent_text_sha256: str | None
    authority_confirmed: bool | None
    document_sha256: str
    email_verified_at: datetime | None = None
    email_verification: EmailVerification | None = None
    method: SignatureMethod | None = None
    authority: str | None = None
    provider: str = "builtin"  # who took the signature: builtin, or docusign (then see Evidence.docusign)

    @classmethod
    def of(cls, signature: Signature) -> SignaturePublic:
        public = cls.model_validate(signature, from_attributes=True)
        if signature.method in (SignatureMethod.AUTOMATIC, SignatureMethod.ACTION):
            # Applied by the service, or countersigned by legal's action: nobody typed, consented or confirmed.
            public.typed_name = public.consent = public.consent_text_sha256 = public.authority_confirmed = None
        elif signature.method == SignatureMethod.DOCUSIGN:
            public.consent_text_sha256 = public.authority_confirmed = None  # nothing of ours was shown or asked
        return public


class Evidence(SQLModel):
    agreement_id: uuid.UUID
    status: str
    signatures: list[SignaturePublic]
    executed_sha256: str | None
    sealed_at: datetime | None
    # DocuSign envelopes of the agreement (empty for the built-in signer): beside the signatures, never instead.
    docusign: list[EnvelopePublic] = []


class SignatureRequestPublic(SQLModel):
    id: uuid.UUID
    agreement_id: uuid.UUID
    provider: str
    status: str
    signer_name: str
    signer_email: str
    expires_at: datetime
    document_sha256: str
    signing_url: str | None = None
    envelope_status: str | None = None  # provider docusign: `creating` until DocuSign accepted the envelope


# --- DocuSign -------------------------------------------------------------------------------------------------


class EnvelopeStatus(StrEnum):
    """A DocuSign envelope as the service tracks it: DocuSign's own statuses, plus `creating` (queued, not yet
    accepted by DocuSign) and `failed` (DocuSign never accepted it). Only forward: see `ENVELOPE_RANK`."""

    CREATING = "creating"
    SENT = "sent"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    DECLINED = "declined"
    VOIDED = "voided"
    FAILED = "failed"


# The order statuses may follow; the last four are final (an envelope that ended never moves again).
ENVELOPE_RANK = {"creating": 0, "sent": 1, "delivered": 2, "completed": 3, "declined": 3, "voided": 3, "failed": 3}


class DocuSignEnvelope(SQLModel, table=True):
    """The DocuSign envelope behind a `docusign` signature request: the exact PDF sent (the bytes the built-in
    flow shows, by SHA-256), DocuSign's envelope id and status, and once completed the combined document and the
    certificate of completion DocuSign served, each with its SHA-256, and DocuSign's audit events."""

    __tablename__ = "docusign_envelopes"
    __table_args__ = (Index("ix_docusign_envelopes_tenant_agreement", "tenant_id", "agreement_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    agreement_id: uuid.UUID = Field(foreign_key="agreements.id")
    request_id: uuid.UUID = Field(foreign_key="signature_requests.id", unique=True)
    envelope_id: str | None = Field(default=None, max_length=64, unique=True)
    status: str = Field(default=EnvelopeStatus.CREATING.value, max_length=20)
    status_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str | None = Field(default=None, max_length=1000)
    embedded: bool = False
    client_user_id: str | None = Field(default=None, max_length=100)
    countersign_in_envelope: bool = False
    document_pdf: bytes = Field(sa_type=LargeBinary)
    document_sha256: str = Field(max_length=64)
    combined_pdf: bytes | None = Field(default=None, sa_type=LargeBinary)
    combined_sha256: str | None = Field(default=None, max_length=64)
    certificate_pdf: bytes | None = Field(default=None, sa_type=LargeBinary)
    certificate_sha256: str | None = Field(default=None, max_length=64)
    audit_events: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    last_message_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_polled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DocuSignEvent(SQLModel, table=True):
    """One Connect message (or polled status) applied to an envelope, once: `key` is unique per event."""

    __tablename__ = "docusign_events"
    __table_args__ = (Index("ix_docusign_events_tenant_envelope", "tenant_id", "envelope_row_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    envelope_row_id: uuid.UUID = Field(foreign_key="docusign_envelopes.id")
    key: str = Field(max_length=64, unique=True)
    event: str = Field(max_length=100)
    source: str = Field(max_length=20)  # connect | poll
    recipient_email: str | None = Field(default=None, max_length=320)
    recipient_status: str | None = Field(default=None, max_length=40)
    occurred_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DocuSignEventPublic(SQLModel):
    event: str
    source: str
    recipient_email: str | None
    recipient_status: str | None
    occurred_at: datetime | None
    received_at: datetime


class EnvelopePublic(SQLModel):
    """What legal (and the owner tenant) see of a DocuSign envelope, and what the evidence adds for DocuSign."""

    request_id: uuid.UUID
    envelope_id: str | None
    status: str
    reason: str | None
    embedded: bool
    countersign_in_envelope: bool
    document_sha256: str
    combined_sha256: str | None
    certificate_sha256: str | None
    created_at: datetime
    sent_at: datetime | None
    completed_at: datetime | None
    recipient_events: list[DocuSignEventPublic]
    audit_events: list[dict[str, Any]]
