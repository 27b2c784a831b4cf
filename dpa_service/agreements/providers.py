"""Signature providers, side by side, chosen per signature request (`provider`): the built-in signer and DocuSign.

Each opens a `SignatureRequest` for the prepared PDF in one transaction and does what must wait for the commit
afterwards (the built-in signer e-mails its link; DocuSign's envelope is an outbox job queued in the transaction).
From there the lifecycle and the evidence are the same for both.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from dpa_service.agreements import docusign, signing
from dpa_service.agreements.models import SignatureRequestCreate, SignatureRequestPublic
from dpa_service.agreements.signing import PreparedDocument
from dpa_service.core.db import Database
from dpa_service.core.exceptions import InvalidInput
from dpa_service.core.identity import Actor, Principal
from dpa_service.core.mailer import Mailer


class SignatureProvider(Protocol):
    name: str
    offered: frozenset[str]  # the providers this deployment offers

    async def open(
        self, db: Database, actor: Actor, principal: Principal, prepared: PreparedDocument, data: SignatureRequestCreate
    ) -> SignatureRequestPublic: ...

    async def after_commit(self) -> None: ...


class BuiltinProvider:
    name = "builtin"

    def __init__(self, mailer: Mailer, base_url: str, valid_for: timedelta) -> None:
        self.mailer, self.valid_for = mailer, valid_for
        self.opened = signing.OpenedLinks(base_url)
        self.offered = frozenset({"builtin"})

    async def open(
        self, db: Database, actor: Actor, principal: Principal, prepared: PreparedDocument, data: SignatureRequestCreate
    ) -> SignatureRequestPublic:
        return await signing.open_request(
            db, actor, principal, prepared, data, valid_for=self.valid_for, links_out=self.opened
        )

    async def after_commit(self) -> None:
        await signing.send_links(self.mailer, self.opened)  # a replay opened no link: nothing is sent twice


class DocuSignProvider:
    name = "docusign"

    def __init__(self, account: docusign.DocuSign) -> None:
        self.account = account
        self.offered = frozenset({"builtin", "docusign"})

    async def open(
        self, db: Database, actor: Actor, principal: Principal, prepared: PreparedDocument, data: SignatureRequestCreate
    ) -> SignatureRequestPublic:
        return await docusign.open_request(db, self.account, actor, principal, prepared, data)

    async def after_commit(self) -> None:
        return None  # the envelope is an outbox job, committed with the request


def offered(account: docusign.DocuSign | None) -> frozenset[str]:
    return frozenset({"builtin", "docusign"} if account is not None else {"builtin"})


def provider_for(
    name: str, *, account: docusign.DocuSign | None, mailer: Mailer, base_url: str, valid_for: timedelta
) -> SignatureProvider:
    if name == "docusign":
        if account is None:
            raise InvalidInput.field("provider", "DocuSign is not configured on this service; use builtin")
        return DocuSignProvider(account)
    return BuiltinProvider(mailer, base_url, valid_for)


def chosen(
    name: str, account: docusign.DocuSign | None, mailer: Mailer, base_url: str, link_days: int
) -> SignatureProvider:
    """The provider a request names (`provider`), knowing what this deployment offers."""
    provider = provider_for(
        name, account=account, mailer=mailer, base_url=base_url, valid_for=timedelta(days=link_days)
    )
    provider.offered = offered(account)
    return provider
