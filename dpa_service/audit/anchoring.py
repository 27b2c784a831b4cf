"""The chains anchored outside the database: checkpoint rounds, and what verification checks the chains against.

A round (every housekeeping pass, and `dpa audit checkpoint`) reads every chain's head in one query and appends a
signed checkpoint for each chain that moved since its last one. Events after a chain's last checkpoint are anchored
only by the next round (or by an executed DPA's certificate, which carries the head): the round's interval is the
window in which a rewrite can go unnoticed, as a CT log's maximum merge delay is.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlmodel import col

from dpa_service.audit.checkpoint_files import CheckpointFiles, Head, RoundReport
from dpa_service.audit.checkpoints import (
    SIGNED_FIELDS,
    Checkpoint,
    CheckpointSigner,
    PublicKey,
    algorithm_of,
    load_public_keys,
    public_key_pem,
    signature_problem,
)
from dpa_service.audit.models import PLATFORM_CHAIN, AuditHead, CheckpointKeyPublic, CheckpointPublic
from dpa_service.core.clock import rfc3339, utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import NotFound
from dpa_service.http.pagination import Page, decode_int_cursor, page_of

if TYPE_CHECKING:  # the seal module loads pyHanko: only what signs or trusts a key needs it, not every importer
    from dpa_service.documents.seal import SealConfig

logger = logging.getLogger("dpa_service.audit")
_KEY_ID = re.compile(r"^[0-9a-f]{64}$")


def signer_for_seal(config: SealConfig) -> CheckpointSigner:
    """Checkpoints are signed with the seal's key (made on first use, like the seal's)."""
    from dpa_service.documents.seal import seal_key_pair

    key, certificate = seal_key_pair(config)
    return CheckpointSigner(key, certificate)


def seal_public_keys(config: SealConfig, extra: Iterable[Path] = ()) -> Mapping[str, PublicKey]:
    """The keys a verification trusts: the seal's certificate (read, never made) and any named PEM files (keys
    the service used before a rotation). Keys merely found in the checkpoint directory are not trusted here."""
    from dpa_service.documents.seal import certificate_path, seal_key_pair

    pems = [path.read_bytes() for path in extra]
    found = certificate_path(config)
    if found is not None and found.is_file():
        pems.append(found.read_bytes())
    if found is None and config.pkcs12_path is not None:  # a PKCS#12 seal: its certificate is inside
        certificate: x509.Certificate = seal_key_pair(config)[1]
        pems.append(certificate.public_bytes(serialization.Encoding.PEM))
    return load_public_keys(pems)


async def _heads(db: Database) -> list[Head]:
    async with db.transaction(Scope.system(), write=False) as session:
        rows = await session.execute(
            select(col(AuditHead.chain), col(AuditHead.tenant_id), col(AuditHead.seq), col(AuditHead.hash))
        )
        return [Head(chain, str(tenant) if tenant else None, seq, digest) for chain, tenant, seq, digest in rows]


async def checkpoint_chains(
    db: Database, files: CheckpointFiles, signer: CheckpointSigner, *, wait: float = 0.0
) -> RoundReport:
    """One round: a signed checkpoint for every chain that moved. The heads are read while the directory's lock is
    held, so what a round writes is never older than what another process wrote before it."""
    with files.locked(wait=wait) as held:
        if not held:
            return RoundReport(skipped=True)
        heads = await _heads(db)
        at = rfc3339(utcnow())
        report = await anyio.to_thread.run_sync(files.record_moved, heads, signer, at)
    for problem in report.problems:
        logger.error("audit checkpoint refused: %s", problem)
    return report


@dataclass
class Anchors:
    """A chain's checkpoints as verification uses them: the validly signed ones by seq, and the lines that are not."""

    chain: str
    by_seq: dict[int, list[Checkpoint]] = field(default_factory=dict)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (seq claimed or 0, why), bad lines and forgeries
    count: int = 0

    @property
    def last(self) -> Checkpoint | None:
        return self.by_seq[max(self.by_seq)][-1] if self.by_seq else None


def anchors_of(files: CheckpointFiles, chain: str, keys: Mapping[str, PublicKey]) -> Anchors:
    """Read and check one chain's checkpoints (blocking: run in a thread from the event loop)."""
    anchors = Anchors(chain)
    name = files.file_of(chain).name
    for number, found in files.read(chain):
        if isinstance(found, str):
            anchors.refused.append((0, f"checkpoint line {number} of {name} is {found}"))
            continue
        problem = signature_problem(found, keys) or (None if found.chain == chain else "is another chain's")
        if problem:
            anchors.refused.append((found.seq, f"checkpoint line {number} of {name} (seq {found.seq}): {problem}"))
            continue
        anchors.by_seq.setdefault(found.seq, []).append(found)
        anchors.count += 1
    return anchors


async def load_anchors(files: CheckpointFiles, tenant_id: uuid.UUID | None, keys: Mapping[str, PublicKey]) -> Anchors:
    chain = str(tenant_id) if tenant_id else PLATFORM_CHAIN
    return await anyio.to_thread.run_sync(anchors_of, files, chain, keys)


def _page_of_file(files: CheckpointFiles, chain: str, after: int, count: int) -> list[tuple[int, Checkpoint]]:
    rows: list[tuple[int, Checkpoint]] = []
    for number, found in files.read(chain):
        if number > after and isinstance(found, Checkpoint) and found.chain == chain:
            rows.append((number, found))
            if len(rows) == count:
                break
    return rows


async def list_checkpoints(
    files: CheckpointFiles, tenant_id: uuid.UUID | None, *, cursor: str | None, limit: int
) -> Page[CheckpointPublic]:
    """One chain's checkpoints as they were written, oldest first (the cursor is the file's line number)."""
    chain = str(tenant_id) if tenant_id else PLATFORM_CHAIN
    rows = await anyio.to_thread.run_sync(_page_of_file, files, chain, decode_int_cursor(cursor), limit + 1)
    return page_of(rows, limit, lambda row: CheckpointPublic(**row[1].as_dict()), lambda row: str(row[0]))


def checkpoint_key(signer: CheckpointSigner, files: CheckpointFiles, key_id: str | None) -> CheckpointKeyPublic:
    """The key that signs checkpoints now, or (by `key_id`) one that signed them before and was published."""
    if key_id is None or key_id == signer.key_id:
        return CheckpointKeyPublic(
            key_id=signer.key_id,
            algorithm=signer.algorithm,
            public_key_pem=signer.public_key_pem,
            certificate_pem=signer.certificate_pem,
            signed_fields=list(SIGNED_FIELDS),
        )
    path = files.directory / "keys" / f"{key_id}.pem"
    if not _KEY_ID.match(key_id) or not path.is_file():
        raise NotFound("No checkpoint key with this key_id.")
    pem = path.read_bytes()
    certificate = x509.load_pem_x509_certificate(pem)
    return CheckpointKeyPublic(
        key_id=key_id,
        algorithm=algorithm_of(certificate.public_key()),
        public_key_pem=public_key_pem(certificate.public_key()),
        certificate_pem=pem.decode(),
        signed_fields=list(SIGNED_FIELDS),
    )
