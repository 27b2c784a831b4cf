"""Evidence that tells the truth (issue 15): an automatic countersignature says it was applied automatically under a
named standing authority, with no typed name, consent or authority confirmation; the executed PDF carries the exact
draft the Subscriber signed, whose SHA-256 is the one shown to the signer; with a time-stamping authority configured
the seal validates as PAdES B-T; the signer is told what a simple electronic signature is, and what is recorded.

The TSA is local and in-process: pyHanko's DummyTimeStamper with a throwaway RSA key, answering RFC 3161 requests
over HTTP on 127.0.0.1 (no network), so the service's real DPA_SEAL_TSA_URL path is what gets tested.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.timestamps import DummyTimeStamper
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from dpa_service.app import create_app
from dpa_service.core.db import Database
from dpa_service.core.settings import Settings
from dpa_service.documents.seal import SEAL_FIELD, SealConfig, embedded_files, seal_certificate
from tests.conftest import running
from tests.helpers.agreements import approve_standard_dpa, request_variables, to_status, token_of
from tests.helpers.api import Api, verify_email
from tests.helpers.pages import signed_in
from tests.templates.conftest import pdf_text, squash

AUTHORITY = "the Board resolution of Parley Chat Ltd of 2 March 2026 delegating execution of the standard DPA to legal"


def _tsa_identity() -> tuple[asn1_x509.Certificate, asn1_keys.PrivateKeyInfo]:
    """A self-signed time-stamping certificate (critical EKU timeStamping, as RFC 3161 requires) and its RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TSA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(key, hashes.SHA256())
    )
    der_key = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)), asn1_keys.PrivateKeyInfo.load(
        der_key
    )


@pytest.fixture(scope="module")
def test_tsa() -> Iterator[tuple[str, asn1_x509.Certificate]]:
    """An RFC 3161 time-stamping authority on 127.0.0.1 (its URL and certificate), for the module's tests."""
    cert, key = _tsa_identity()
    stamper = DummyTimeStamper(tsa_cert=cert, tsa_key=key)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            answer = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tsa", cert
    finally:
        server.shutdown()
        server.server_close()


async def test_automatic_countersignature_embedded_draft_and_timestamped_seal(
    admin: Api, db: Database, settings: Settings, test_tsa: tuple[str, asn1_x509.Certificate]
) -> None:
    tsa_url, tsa_cert = test_tsa
    await approve_standard_dpa(db)
    owner, legal = await admin.new_tenant(admin_name="Olive Owner"), await admin.new_staff("legal")
    legal_me = (await legal.get("/me")).json()
    configured = settings.model_copy(
        update={
            "auto_countersign_email": legal_me["email"],
            "auto_countersign_authority": AUTHORITY,
            "seal_tsa_url": tsa_url,
        }
    )
    app = create_app(configured)
    async with (
        running(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver.local") as client,
    ):
        await verify_email(owner)
        api = Api(client, owner.key)
        aid = (await api.post("/agreements", {"variables": request_variables()})).json()["id"]
        await api.post(f"/agreements/{aid}/submit")
        me = (await api.get("/me")).json()
        request = (
            await api.post(
                f"/agreements/{aid}/signature-requests",
                {"signer": {"name": me["name"], "email": me["email"], "title": "CEO"}},
            )
        ).json()
        shown_sha256 = request["document_sha256"]  # the fingerprint the signer is shown on the signing page
        page = await client.get(f"/sign/{token_of(request['signing_url'])}")
        # The signer is told what a simple electronic signature is, and what is recorded about them and why.
        assert "Article 25(1)" in page.text and "simple electronic signature" in page.text
        assert "same effect as a handwritten signature" not in page.text
        assert "Privacy notice: what is recorded about you when you sign" in page.text and "IP address" in page.text
        signed = await client.post(
            f"/sign/{token_of(request['signing_url'])}",
            json={"typed_name": "Olive Owner", "consent": True, "authority_confirmed": True},
        )
        assert signed.status_code == 200 and signed.json()["status"] == "executed", signed.text

        # The evidence: the processor's countersignature was applied automatically, nobody typed or consented.
        evidence = (await api.get(f"/agreements/{aid}/evidence")).json()
        processor = next(s for s in evidence["signatures"] if s["role"] == "processor")
        subscriber = next(s for s in evidence["signatures"] if s["role"] == "subscriber")
        assert processor["method"] == "automatic" and processor["authority"] == AUTHORITY
        assert processor["email"] == legal_me["email"]  # who holds the authority, the signatory shown
        assert (processor["typed_name"], processor["consent"], processor["authority_confirmed"]) == (None, None, None)
        assert processor["consent_text_sha256"] is None
        assert subscriber["method"] == "typed" and subscriber["typed_name"] == "Olive Owner" and subscriber["consent"]

        pdf = (await api.get(f"/agreements/{aid}/document")).content

    # The certificate says so, in words, and records no consent for the processor.
    text = squash(pdf_text(pdf))
    assert squash(f"Applied automatically under the authority of {AUTHORITY}") in text
    assert text.count(squash("Consent to e-sign")) == 1  # the Subscriber's only
    assert squash(f"Signature request{request['id']}") in text
    for step in ("Signature requested", "Signing link sent", "Signing page opened", "Signed by the Subscriber",
                 "Countersigned for the Processor", "Sealed"):  # fmt: skip
        assert squash(step) in text, step
    assert squash("PAdES B-T") in text and squash(tsa_url) in text

    # The exact draft the Subscriber signed travels in the sealed file, and its SHA-256 is the one they were shown.
    attachments = embedded_files(pdf)
    assert len(attachments) == 1
    ((name, draft),) = attachments.items()
    assert hashlib.sha256(draft).hexdigest() == shown_sha256 == subscriber["document_sha256"]
    assert shown_sha256[:16] in name and squash(name) in text

    # PAdES B-T: the seal carries a signature timestamp from the configured TSA, and pyHanko validates both.
    reader = PdfFileReader(io.BytesIO(pdf))
    seal = next(s for s in reader.embedded_signatures if s.field_name == SEAL_FIELD)
    ours = await asyncio.to_thread(seal_certificate, SealConfig.from_settings(configured))
    status = await async_validate_pdf_signature(
        seal,
        signer_validation_context=ValidationContext(trust_roots=[ours]),
        ts_validation_context=ValidationContext(trust_roots=[tsa_cert]),
    )
    assert status.intact and status.valid and status.trusted
    assert status.timestamp_validity is not None
    assert status.timestamp_validity.intact and status.timestamp_validity.valid and status.timestamp_validity.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE  # the attachment is inside what the seal covers


async def test_legal_s_countersignature_is_recorded_as_their_action_with_nothing_typed_or_consented(
    admin: Api, db: Database, client: httpx.AsyncClient
) -> None:
    """Legal countersigns by an action in the product, signed in as themselves: the evidence names them and says
    so, and claims no typed name, consent or confirmation of authority that nobody gave."""
    await approve_standard_dpa(db)
    owner, legal = await admin.new_tenant(), await admin.new_staff("legal")
    executed = await to_status(owner, legal, "executed")

    evidence = (await owner.get(f"/agreements/{executed['id']}/evidence")).json()
    processor = next(s for s in evidence["signatures"] if s["role"] == "processor")
    assert processor["method"] == "action" and processor["email"]
    assert (processor["typed_name"], processor["consent"], processor["authority_confirmed"]) == (None, None, None)
    assert processor["consent_text_sha256"] is None
    text = squash(pdf_text((await owner.get(f"/agreements/{executed['id']}/document")).content))
    assert squash("legal team: the countersignature is that action. No name was typed") in text
    page = await (await signed_in(client, owner)).get(f"/app/agreements/{executed['id']}/evidence")
    assert "countersigned by the action of a signed-in member of the processor" in page.text
    assert "None" not in page.text.split("<main", 1)[-1]
