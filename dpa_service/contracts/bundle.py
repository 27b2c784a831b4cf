"""A contract's bundle: a zip of each attached DPA that was executed (its sealed PDF, which ends with its certificate
of completion, and that certificate's facts as JSON), a `manifest.json` naming every file with its SHA-256, a
detached signature of the manifest by the service's seal key, and the seal's certificate and public key.

What goes in: every attached DPA that was executed, current or not. A superseded one, or one on a retired template
or an invalidated mechanism, is included and marked in the manifest (`current: false`, `note` saying why), because a
contract's history is part of its record; the DPA status says whether the contract is covered today.

The certificate of completion is not a file of its own in the service: the executed PDF is the DPA followed by its
certificate pages, sealed together (`agreements.documents.build_executed`), so the seal covers both. The bundle adds
`<agreement>-certificate.json`, the same facts as the signing evidence API returns, for machines.

Offline check, with nothing but OpenSSL (the README says the same):

    unzip bundle.zip -d bundle && cd bundle
    openssl dgst -sha256 -verify seal-public-key.pem -signature manifest.json.sig manifest.json
    sha256sum -c SHA256SUMS

(`dpa verify-bundle bundle.zip` does both and checks the key is the service's seal.) The zip streams: the manifest
comes last, once every file's hash is known, and only one PDF is held in memory at a time.
"""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from dpa_service.agreements import services as agreements
from dpa_service.audit.anchoring import signer_for_seal
from dpa_service.audit.checkpoints import CheckpointSigner
from dpa_service.contracts import standing
from dpa_service.contracts.models import ContractPublic
from dpa_service.contracts.services import WRITERS, get_contract
from dpa_service.core.clock import rfc3339, utcnow
from dpa_service.core.db import Database
from dpa_service.core.exceptions import Conflict, PermissionDenied
from dpa_service.core.identity import Principal
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.seal import Seal

MANIFEST, SIGNATURE, CERTIFICATE, PUBLIC_KEY, SUMS = (
    "manifest.json", "manifest.json.sig", "seal-certificate.pem", "seal-public-key.pem", "SHA256SUMS",
)  # fmt: skip
VERIFY_COMMAND = f"openssl dgst -sha256 -verify {PUBLIC_KEY} -signature {SIGNATURE} {MANIFEST}"
WAS_EXECUTED = ("executed", "superseded")


@dataclass(frozen=True)
class Bundle:
    filename: str
    chunks: AsyncIterator[bytes]


class _Sink(io.RawIOBase):
    """Where zipfile writes: a buffer drained after each entry (not seekable, so zipfile writes data descriptors
    and never goes back)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


def _sha256(content: bytes) -> str:
    return agreements.sha256(content)


def canonical(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


async def bundle(db: Database, renderer: Renderer, seal: Seal, principal: Principal, contract_id: uuid.UUID) -> Bundle:
    """The contract's bundle, ready to stream (409 when no attached DPA was ever executed)."""
    if principal.role not in WRITERS:
        raise PermissionDenied("Contract bundles are for the processor's sales and legal staff.")
    contract = await get_contract(db, principal, contract_id)
    facts = await standing.facts_for(db, principal.scope, contract.agreements)
    executed = [facts.agreements[a] for a in contract.agreements if a in facts.agreements
                and facts.agreements[a].status in WAS_EXECUTED]  # fmt: skip
    if not executed:
        raise Conflict("No attached DPA was ever executed: there is nothing to bundle yet.")
    signer = signer_for_seal(seal.config)
    evidence = {f.id: await agreements.evidence(db, principal, f.id) for f in executed}
    filename = f"contract-{re.sub(r'[^A-Za-z0-9._-]+', '-', contract.reference)}-bundle.zip"
    return Bundle(filename, _stream(db, renderer, principal, contract, facts, executed, evidence, signer))


def _entry(name: str, deflate: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=utcnow().timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


async def _stream(
    db: Database,
    renderer: Renderer,
    principal: Principal,
    contract: ContractPublic,
    facts: standing.Facts,
    executed: list[agreements.AgreementFacts],
    evidence: dict[uuid.UUID, Any],
    signer: CheckpointSigner,
) -> AsyncIterator[bytes]:
    sink = _Sink()
    files: list[dict[str, Any]] = []
    with zipfile.ZipFile(sink, "w") as archive:

        def add(name: str, content: bytes, agreement_id: uuid.UUID | None, *, deflate: bool = True) -> bytes:
            with archive.open(_entry(name, deflate), "w") as out:
                out.write(content)
            files.append({"name": name, "sha256": _sha256(content), "agreement_id": str(agreement_id)
                          if agreement_id else None})  # fmt: skip
            return sink.drain()

        for agreement in executed:
            # The stored sealed bytes, checked against their recorded hash first (one PDF in memory at a time).
            document = await agreements.document(db, renderer, principal, agreement.id)
            yield add(f"dpa-{agreement.id}-executed.pdf", document.content, agreement.id, deflate=False)
            certificate = evidence[agreement.id].model_dump(mode="json")
            yield add(f"dpa-{agreement.id}-certificate.json", canonical(certificate), agreement.id)
        yield add(CERTIFICATE, signer.certificate_pem.encode(), None)
        yield add(PUBLIC_KEY, signer.public_key_pem.encode(), None)
        manifest = canonical(_manifest(contract, facts, executed, files, signer))
        sums = "".join(f"{f['sha256']}  {f['name']}\n" for f in files) + f"{_sha256(manifest)}  {MANIFEST}\n"
        for name, content in ((MANIFEST, manifest), (SIGNATURE, signer.sign_bytes(manifest)), (SUMS, sums.encode())):
            with archive.open(_entry(name, True), "w") as out:
                out.write(content)
            yield sink.drain()
    yield sink.drain()  # the central directory


def _manifest(
    contract: ContractPublic,
    facts: standing.Facts,
    executed: list[agreements.AgreementFacts],
    files: list[dict[str, Any]],
    signer: CheckpointSigner,
) -> dict[str, Any]:
    entries = []
    for agreement in executed:
        derived = standing.derive([agreement.id], facts)
        entries.append({
            "agreement_id": str(agreement.id),
            "status": agreement.status,
            "current": derived.status == "executed",
            "note": None if derived.status == "executed" else derived.reason,
            "template_key": agreement.template_key,
            "template_version": agreement.template_version,
            "executed_at": rfc3339(agreement.executed_at) if agreement.executed_at else None,
            "effective_date": agreement.effective_date.isoformat() if agreement.effective_date else None,
            "document_sha256": agreement.document_sha256,
            "superseded_by": str(agreement.superseded_by) if agreement.superseded_by else None,
        })  # fmt: skip
    return {
        "contract_id": str(contract.id),
        "contract": {
            "reference": contract.reference,
            "title": contract.title,
            "tenant_id": str(contract.tenant_id),
            "status": contract.status,
            "dpa_status": contract.dpa_status.value,
        },
        "files": files,
        "agreements": entries,
        "generated_at": rfc3339(utcnow()),
        "signature": {
            "file": SIGNATURE,
            "algorithm": signer.algorithm,
            "key_id": signer.key_id,
            "certificate": CERTIFICATE,
            "public_key": PUBLIC_KEY,
            "verify": VERIFY_COMMAND,
        },
    }
