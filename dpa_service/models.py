"""Every table, imported in one place so that SQLModel.metadata is complete (Alembic, tests)."""

from sqlmodel import SQLModel

from dpa_service.agreements.models import (
    Agreement,
    AgreementDocument,
    DocuSignEnvelope,
    DocuSignEvent,
    Signature,
    SignatureRequest,
)
from dpa_service.audit.models import AuditEvent, AuditHead
from dpa_service.campaigns.models import Campaign, CampaignAgreement
from dpa_service.contracts.models import Contract, ContractAgreement
from dpa_service.http.idempotency import IdempotencyRecord
from dpa_service.notifications.jobs import OutboxJob
from dpa_service.notifications.models import MailDelivery, WebhookDelivery, WebhookEndpoint
from dpa_service.notifications.outbox import OutboxMessage
from dpa_service.obligations.models import (
    AssistanceRequest,
    AssistanceResponse,
    BreachNotice,
    BreachNoticeUpdate,
    DeletionCertificate,
    Inquiry,
    InquiryResponse,
    Obligation,
    ObligationAttestation,
    Termination,
)
from dpa_service.subprocessors.models import (
    Acceptance,
    Authorization,
    Objection,
    SubprocessorChange,
    SubprocessorVersion,
)
from dpa_service.template_versions.models import TemplateVersion
from dpa_service.tenants.models import Tenant
from dpa_service.transfers.models import MechanismInvalidation, Transfer, TransferNotice
from dpa_service.users.models import ApiKey, EmailConfirmation, SignInLink, User

metadata = SQLModel.metadata

# Tables whose rows belong to one tenant: row-level security is forced on each (PostgreSQL).
TENANT_OWNED_TABLES = (
    "tenants",
    "users",
    "api_keys",
    "sign_in_links",
    "email_confirmations",
    "audit_events",
    "audit_heads",
    "idempotency_records",
    "agreements",
    "agreement_documents",
    "signature_requests",
    "signatures",
    "transfers",
    "transfer_notices",
    "outbox",
    "outbox_jobs",
    "docusign_envelopes",
    "docusign_events",
    "webhook_endpoints",
    "webhook_deliveries",
    "mail_deliveries",
    "subprocessor_objections",
    "subprocessor_acceptances",
    "subprocessor_authorizations",
    "obligations",
    "obligation_attestations",
    "breach_notices",
    "breach_notice_updates",
    "inquiries",
    "inquiry_responses",
    "terminations",
    "deletion_certificates",
    "assistance_requests",
    "assistance_responses",
    "contracts",
    "contract_agreements",
    "campaign_agreements",
)

__all__ = [
    "TENANT_OWNED_TABLES",
    "Acceptance",
    "Agreement",
    "AgreementDocument",
    "ApiKey",
    "AssistanceRequest",
    "AssistanceResponse",
    "AuditEvent",
    "AuditHead",
    "Authorization",
    "BreachNotice",
    "BreachNoticeUpdate",
    "Campaign",
    "CampaignAgreement",
    "Contract",
    "ContractAgreement",
    "DeletionCertificate",
    "DocuSignEnvelope",
    "DocuSignEvent",
    "EmailConfirmation",
    "IdempotencyRecord",
    "Inquiry",
    "InquiryResponse",
    "MailDelivery",
    "MechanismInvalidation",
    "Objection",
    "Obligation",
    "ObligationAttestation",
    "OutboxJob",
    "OutboxMessage",
    "SignInLink",
    "Signature",
    "SignatureRequest",
    "SubprocessorChange",
    "SubprocessorVersion",
    "TemplateVersion",
    "Tenant",
    "Termination",
    "Transfer",
    "TransferNotice",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "metadata",
]
