"""`dpa integrity check`: is everything the service keeps as evidence still what it was? Run it after a restore.

* Every stored document (executed agreements, deletion certificates): its bytes against its SHA-256, the agreement's
  `document_sha256` against the stored document's, and its seal (the same pyHanko validation `/documents/verify`
  uses) against the service's certificate, which must be the restored key directory's, never a new one.
* Every agreement that names a document has one (a partial restore loses rows).
* Every audit chain (the platform's and each tenant's) against its signed checkpoints outside the database.
* Every webhook endpoint's secret opens under the service secret (DPA_SECRET_KEY, or `keys/app-secret` from the
  key directory): a restore with another installation's key directory would sign nothing, silently.

Documents are read in small keyset batches, each in a short read transaction, and checked in a process pool, so
memory stays bounded however many there are. An operator's tool at the composition root: it reads the tables of
several domains directly, as the migrations do, and changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import select
from sqlmodel import col

from dpa_service.agreements.models import Agreement, AgreementDocument
from dpa_service.audit import services as audit
from dpa_service.audit.anchoring import seal_public_keys
from dpa_service.audit.checkpoint_files import CheckpointFiles
from dpa_service.audit.parallel import ParallelVerifier
from dpa_service.core.db import Database, Scope
from dpa_service.core.registry import processor
from dpa_service.core.secrets import app_secret_path, existing_app_secret
from dpa_service.core.settings import Settings
from dpa_service.documents.pool import ProcessPool
from dpa_service.documents.seal import SealCheck, SealConfig, ValidationStatus, certificate_path, check_pdf
from dpa_service.notifications.models import WebhookEndpoint
from dpa_service.notifications.webhooks import open_secret
from dpa_service.obligations.models import DeletionCertificate
from dpa_service.tenants.services import all_ids

DOCUMENT_BATCH = 20  # sealed PDFs per query (~100 KB to a few MB each): what is held in memory at once
SECRET_BATCH = 500
SEAL_TIMEOUT = 60.0  # seconds for one document's seal check
FIRST_PROBLEMS = 20  # problems listed in the summary (all are counted)
CHECKED = ("agreement_documents", "deletion_certificates", "audit_chains", "audit_events", "webhook_secrets")


@dataclass(frozen=True)
class Problem:
    kind: str
    id: str
    problem: str


@dataclass
class Report:
    checked: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, kind: str, ident: object, problem: str) -> None:
        self.problem_count += 1
        if len(self.problems) < FIRST_PROBLEMS:
            self.problems.append(Problem(kind, str(ident), problem))

    def count(self, what: str, n: int = 1) -> None:
        self.checked[what] = self.checked.get(what, 0) + n

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "problems": self.problem_count,
            "first_problems": [vars(p) for p in self.problems],
        }


def seal_config(settings: Settings) -> tuple[SealConfig | None, str | None]:
    """The seal's certificate as configured, read only: (config, None), or (None, why it cannot be checked)."""
    config = SealConfig.from_settings(settings, organization=processor()["legal_name"])
    looked_for = certificate_path(config)
    if looked_for is None:  # a PKCS#12 file: the certificate is read from it
        return config, None
    if not looked_for.is_file():
        return None, f"no seal certificate at {looked_for}: restore the key directory (DPA_VAR_DIR/keys)"
    return replace(config, cert_path=looked_for), None


async def _batches(db: Database, query: Any, key: Any, size: int) -> AsyncIterator[Sequence[Any]]:
    """Rows of `query` in `key` order, `size` at a time, each batch in a transaction of its own (keyset paging)."""
    after: Any = None
    while True:
        page = query.order_by(key).limit(size)
        if after is not None:
            page = page.where(key > after)
        async with db.transaction(Scope.system(), write=False) as session:
            rows = (await session.execute(page)).all()
        if not rows:
            return
        yield rows
        after = getattr(rows[-1], key.key)


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class _Seals:
    """Seal checks in a process pool (pyHanko's validation is CPU work, and calls asyncio.run() itself)."""

    def __init__(self, config: SealConfig | None, jobs: int, pool: ProcessPool | None = None) -> None:
        self.config = config
        self._own = pool is None and config is not None
        self.pool = pool or (ProcessPool(jobs, preload=("dpa_service.documents.seal",)) if config else None)

    async def check(self, contents: list[bytes]) -> list[SealCheck | None]:
        if self.pool is None or self.config is None:
            return [None] * len(contents)
        config, pool = self.config, self.pool
        return list(await asyncio.gather(*(pool.run(check_pdf, config, c, timeout=SEAL_TIMEOUT) for c in contents)))

    async def aclose(self) -> None:
        if self.pool is not None and self._own:
            await self.pool.aclose()


def _seal_problem(check: SealCheck | None) -> str | None:
    if check is None or check.status == ValidationStatus.VALID:
        return None
    return f"seal {check.status.value}: {check.detail}"


async def _agreement_documents(db: Database, seals: _Seals, report: Report) -> None:
    query = select(
        col(AgreementDocument.agreement_id),
        col(AgreementDocument.sha256),
        col(AgreementDocument.content),
        col(Agreement.document_sha256),
    ).join(Agreement, col(Agreement.id) == col(AgreementDocument.agreement_id))
    async for rows in _batches(db, query, col(AgreementDocument.agreement_id), DOCUMENT_BATCH):
        checks = await seals.check([row.content for row in rows])
        for row, check in zip(rows, checks, strict=True):
            report.count("agreement_documents")
            if _sha256(row.content) != row.sha256:
                report.add("agreement_document", row.agreement_id, "the stored bytes do not match their SHA-256")
            if row.document_sha256 != row.sha256:
                report.add(
                    "agreement_document", row.agreement_id, "agreements.document_sha256 differs from the document's"
                )
            if problem := _seal_problem(check):
                report.add("agreement_document", row.agreement_id, problem)
    orphans = (
        select(col(Agreement.id))
        .where(col(Agreement.document_sha256).is_not(None))
        .where(
            ~select(col(AgreementDocument.agreement_id))
            .where(col(AgreementDocument.agreement_id) == col(Agreement.id))
            .exists()
        )
    )
    async for rows in _batches(db, orphans, col(Agreement.id), SECRET_BATCH):
        for row in rows:
            report.add("agreement", row.id, "names a document (document_sha256) that is not stored")


async def _deletion_certificates(db: Database, seals: _Seals, report: Report) -> None:
    query = select(
        col(DeletionCertificate.id), col(DeletionCertificate.document_sha256), col(DeletionCertificate.content)
    )
    async for rows in _batches(db, query, col(DeletionCertificate.id), DOCUMENT_BATCH):
        checks = await seals.check([row.content for row in rows])
        for row, check in zip(rows, checks, strict=True):
            report.count("deletion_certificates")
            if _sha256(row.content) != row.document_sha256:
                report.add("deletion_certificate", row.id, "the stored bytes do not match their SHA-256")
            if problem := _seal_problem(check):
                report.add("deletion_certificate", row.id, problem)


async def _audit_chains(db: Database, settings: Settings, report: Report, chains: ParallelVerifier | None) -> None:
    """Every chain against its signed checkpoints outside the database (a rewrite with recomputed hashes, a
    rewound head or a moved event shows there), one chain at a time."""
    files = CheckpointFiles(settings.checkpoints_path)
    keys = seal_public_keys(SealConfig.from_settings(settings, organization=processor()["legal_name"]))
    tenant_ids = await all_ids(db)
    walked = (
        chains.verify_chains(db, tenant_ids, files, keys)
        if chains
        else audit.verify_chains(db, tenant_ids, files, keys)
    )
    async for result in walked:
        report.count("audit_chains")
        report.count("audit_events", result.events)
        if not result.ok:
            report.add("audit_chain", result.chain, f"broken at seq {result.broken_seq}: {result.problem}")


async def _webhook_secrets(db: Database, settings: Settings, report: Report) -> None:
    secret = existing_app_secret(settings)
    query = select(col(WebhookEndpoint.id), col(WebhookEndpoint.secret_sealed)).where(
        col(WebhookEndpoint.deleted_at).is_(None)
    )
    async for rows in _batches(db, query, col(WebhookEndpoint.id), SECRET_BATCH):
        if secret is None:
            where = app_secret_path(settings)
            report.add("service_secret", where, "no DPA_SECRET_KEY and no key file: webhook secrets cannot be opened")
            return
        for row in rows:
            report.count("webhook_secrets")
            try:
                open_secret(secret, row.secret_sealed)
            except InvalidTag:
                report.add("webhook_endpoint", row.id, "its secret does not open under the service secret")


async def check(
    db: Database,
    settings: Settings,
    *,
    jobs: int | None = None,
    pool: ProcessPool | None = None,
    chains: ParallelVerifier | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Check everything (see the module docstring); never writes. Seal checks run in `pool` if given (a running
    service's document pool), else in a pool of `jobs` processes of its own; the chains are walked by `chains`'
    processes when given (the CLI's), else in this one."""
    report = Report({what: 0 for what in CHECKED})
    config, missing = seal_config(settings)
    if missing:
        report.add("seal_certificate", certificate_path(SealConfig.from_settings(settings)) or "", missing)
    seals = _Seals(config, jobs or min(os.cpu_count() or 1, 4), pool)
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("agreement documents", lambda: _agreement_documents(db, seals, report)),
        ("deletion certificates", lambda: _deletion_certificates(db, seals, report)),
        ("audit chains", lambda: _audit_chains(db, settings, report, chains)),
        ("webhook secrets", lambda: _webhook_secrets(db, settings, report)),
    ]
    try:
        for name, step in steps:
            if progress:
                progress(name)
            await step()
    finally:
        await seals.aclose()
    return report


__all__ = ["Problem", "Report", "check"]
