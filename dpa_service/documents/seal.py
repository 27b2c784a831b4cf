"""The service's seal: a PAdES signature over every executed DPA, and its validation.

The key is an ECDSA P-256 key with a self-signed certificate, generated on first use under
`$DPA_VAR_DIR/keys/` (mode 0600), unless DPA_SEAL_KEY_PATH and DPA_SEAL_CERT_PATH (PEM), or
DPA_SEAL_PKCS12_PATH (with DPA_SEAL_PKCS12_PASSWORD), name a key kept elsewhere (e.g. an HSM-backed file).
With DPA_SEAL_TSA_URL the seal carries an RFC 3161 signature timestamp from that time-stamping authority (PAdES
B-T); without it the seal is PAdES B-B, its time the service's own clock. Files to embed (the exact draft the
Subscriber signed) are attached in the same revision the seal covers, so they cannot be swapped afterwards.
Sealing runs in a pool worker, where pyHanko's sync wrappers may start their own loop; in the server's loop use
its `async_*` functions (its sync wrappers call asyncio.run() and fail there).
"""

from __future__ import annotations

import datetime as dt
import io
import threading
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import anyio
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils import embed
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from dpa_service.core.secrets import write_once
from dpa_service.core.settings import Settings
from dpa_service.documents.renderer import Renderer

SEAL_FIELD = "DPAServiceSeal"
_generate_lock = threading.Lock()


@dataclass(frozen=True)
class SealConfig:
    keys_dir: Path
    key_path: Path | None = None
    cert_path: Path | None = None
    pkcs12_path: Path | None = None
    pkcs12_password: str | None = None
    common_name: str = "DPA service seal"
    organization: str = "DPA service"
    tsa_url: str | None = None

    @property
    def level(self) -> str:
        """The PAdES baseline level a seal made with this configuration reaches."""
        return "PAdES B-T" if self.tsa_url else "PAdES B-B"

    @classmethod
    def from_settings(cls, settings: Settings, organization: str = "DPA service") -> SealConfig:
        password = settings.seal_pkcs12_password
        return cls(
            keys_dir=settings.var_dir / "keys",
            key_path=settings.seal_key_path,
            cert_path=settings.seal_cert_path,
            pkcs12_path=settings.seal_pkcs12_path,
            pkcs12_password=password.get_secret_value() if password else None,
            organization=organization,
            tsa_url=settings.seal_tsa_url,
        )


def _self_signed(config: SealConfig, key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, config.common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, config.organization[:64]),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _ensure_generated(config: SealConfig, key_path: Path, cert_path: Path) -> None:
    """Make the key, then its certificate, each written once: when several processes start on a fresh `var/`
    (uvicorn workers, the document pool) the first key wins, and whoever finds a key without its certificate
    (another process is writing it, or one crashed in between) makes one for that key: any of them is valid."""
    if not key_path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_once(key_path, pem)
    if not cert_path.exists():
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise RuntimeError(f"{key_path} is not the ECDSA key this service generates")
        write_once(cert_path, _self_signed(config, loaded))


class ValidationStatus(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    NOT_OURS = "not_ours"
    UNSEALED = "unsealed"
    UNREADABLE = "unreadable"  # not a PDF that can be read at all (a damaged cross-reference table, say)


@dataclass(frozen=True)
class SealCheck:
    status: ValidationStatus
    sealed_at: dt.datetime | None = None
    detail: str = ""


@lru_cache(maxsize=4)
def signer_for(config: SealConfig) -> signers.SimpleSigner:
    """The seal's key and certificate, made on first use (once per process: the parent and each worker)."""
    if config.pkcs12_path:
        password = config.pkcs12_password.encode() if config.pkcs12_password else None
        loaded = signers.SimpleSigner.load_pkcs12(str(config.pkcs12_path), passphrase=password)
    else:
        key_path = config.key_path or config.keys_dir / "seal.key.pem"
        cert_path = config.cert_path or config.keys_dir / "seal.cert.pem"
        if not config.key_path:
            with _generate_lock:
                _ensure_generated(config, key_path, cert_path)
        loaded = signers.SimpleSigner.load(str(key_path), str(cert_path))
    if loaded is None:
        raise RuntimeError("the seal key or certificate could not be loaded")
    return loaded


@lru_cache(maxsize=4)
def seal_key_pair(config: SealConfig) -> tuple[PrivateKeyTypes, x509.Certificate]:
    """The seal's key and certificate as `cryptography` objects, for signing things that are not PDFs (the audit
    checkpoints): the same key a PDF seal uses, made on first use the same way."""
    signer = signer_for(config)
    if signer.signing_cert is None:  # SimpleSigner.load and load_pkcs12 always set it; only the type allows None
        raise RuntimeError("the seal certificate could not be loaded")
    key = serialization.load_der_private_key(signer.signing_key.dump(), password=None)
    return key, x509.load_der_x509_certificate(signer.signing_cert.dump())


@dataclass(frozen=True)
class Attachment:
    """A file embedded in a sealed PDF (its document-level embedded files), covered by the seal."""

    name: str
    content: bytes
    description: str
    mime_type: str = "application/pdf"


def seal_pdf(
    config: SealConfig, pdf: bytes, reason: str, location: str | None, attachments: tuple[Attachment, ...] = ()
) -> bytes:
    """PAdES-seal `pdf` with `attachments` embedded, time-stamped when a TSA is configured (CPU work: runs in a pool
    worker, where pyHanko's sync API may start its own loop)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    for attachment in attachments:
        data = embed.EmbeddedFileObject.from_file_data(
            writer,
            attachment.content,
            mime_type=attachment.mime_type,
            params=embed.EmbeddedFileParams(embed_size=True, embed_checksum=True),
        )
        spec = embed.FileSpec(
            file_spec_string=attachment.name,
            file_name=attachment.name,
            embedded_data=data,
            description=attachment.description,
        )
        embed.embed_file(writer, spec)
    meta = signers.PdfSignatureMetadata(
        field_name=SEAL_FIELD,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        location=location,
    )
    timestamper = HTTPTimeStamper(config.tsa_url, timeout=15) if config.tsa_url else None
    return signers.sign_pdf(writer, meta, signer=signer_for(config), timestamper=timestamper).getvalue()


def embedded_files(pdf: bytes) -> dict[str, bytes]:
    """The files embedded in `pdf` by name (what an auditor extracts to check the signed draft)."""
    root = PdfFileReader(io.BytesIO(pdf), strict=False).root
    found: dict[str, bytes] = {}
    if "/Names" not in root or "/EmbeddedFiles" not in root["/Names"]:
        return found
    entries = root["/Names"]["/EmbeddedFiles"]["/Names"]  # a flat name tree: name, file spec, name, file spec...
    for index in range(0, len(entries), 2):
        spec = entries[index + 1].get_object()
        found[str(entries[index])] = spec["/EF"]["/F"].data
    return found


def certificate_path(config: SealConfig) -> Path | None:
    """The PEM certificate a check compares against (None: the seal is a PKCS#12 file)."""
    return None if config.pkcs12_path else config.cert_path or config.keys_dir / "seal.cert.pem"


@lru_cache(maxsize=4)
def seal_certificate(config: SealConfig) -> asn1_x509.Certificate:
    """The seal's certificate, for checking. With a configured certificate path it is only read (a check, such as
    `dpa verify`, never makes a key); otherwise it is the signer's, made on first use like the server's."""
    if config.cert_path is not None:
        return load_cert_from_pemder(str(config.cert_path))
    certificate = signer_for(config).signing_cert
    if certificate is None:  # SimpleSigner.load and load_pkcs12 always set it; only the type allows None
        raise RuntimeError("the seal certificate could not be loaded")
    return certificate


def check_pdf(config: SealConfig, pdf: bytes) -> SealCheck:
    """Is `pdf` sealed by this service, unmodified since? (CPU work: runs in a pool worker.)

    Never raises for what is in `pdf`: a damaged file fails inside pyHanko in many ways (PdfReadError, zlib.error,
    ValueError from a truncated structure...), each of which is an answer here, not a 500.
    """
    certificate = seal_certificate(config)
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        embedded = [s for s in reader.embedded_signatures if s.field_name == SEAL_FIELD]
    except Exception as exc:  # see the docstring: any failure to read the file means it cannot be read
        return SealCheck(ValidationStatus.UNREADABLE, detail=f"not a readable PDF ({type(exc).__name__})")
    if not embedded:
        return SealCheck(ValidationStatus.UNSEALED, detail="no seal of this service")
    signature = embedded[-1]
    try:
        signer = signature.signer_cert.dump()
    except Exception as exc:  # the seal's signature bytes do not parse: they were changed
        return SealCheck(ValidationStatus.INVALID, detail=f"the seal's signature is damaged ({type(exc).__name__})")
    if signer != certificate.dump():
        return SealCheck(ValidationStatus.NOT_OURS, detail="sealed with another certificate")
    try:
        status = validate_pdf_signature(signature, ValidationContext(trust_roots=[certificate]))
        sealed_at = status.signer_reported_dt
        intact = status.intact and status.valid and status.trusted
        coverage = status.coverage
    except Exception as exc:
        return SealCheck(ValidationStatus.INVALID, detail=f"seal could not be validated: {exc}")
    if not intact:
        return SealCheck(ValidationStatus.INVALID, sealed_at, "the sealed bytes were changed")
    if coverage != SignatureCoverageLevel.ENTIRE_FILE:
        return SealCheck(ValidationStatus.INVALID, sealed_at, "content was added after sealing")
    return SealCheck(ValidationStatus.VALID, sealed_at)


class Seal:
    """The service seal as the app uses it: sealing and checking run in the document pool."""

    def __init__(self, config: SealConfig, renderer: Renderer | None = None) -> None:
        self.config = config
        self._renderer = renderer

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            self._renderer = Renderer()
        return self._renderer

    @property
    def certificate(self) -> asn1_x509.Certificate:
        return signer_for(self.config).signing_cert

    async def load(self) -> None:
        """Make (or read) the key now, so the first countersignature does not pay for it."""
        await anyio.to_thread.run_sync(signer_for, self.config)

    async def seal(
        self, pdf: bytes, *, reason: str, location: str | None = None, attachments: tuple[Attachment, ...] = ()
    ) -> bytes:
        return await self.renderer.run(seal_pdf, self.config, pdf, reason, location, attachments)

    async def check(self, pdf: bytes, *, within: float | None = None) -> SealCheck:
        return await self.renderer.run(check_pdf, self.config, pdf, within=within)
