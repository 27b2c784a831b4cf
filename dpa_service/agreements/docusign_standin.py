"""A DocuSign stand-in for tests and the demo: a small local HTTPS server answering the calls the service makes,
with DocuSign's JSON shapes and statuses, and posting Connect messages HMAC-signed like DocuSign's.

The real SDK talks to it (`DOCUSIGN_BASE_URI=https://127.0.0.1:<port>`, `DOCUSIGN_OAUTH_HOST=127.0.0.1:<port>`,
`DOCUSIGN_CA_BUNDLE=<its CA>`); the service does not know it is not DocuSign. The test CA and the JWT key pair are
generated when it starts (with `cryptography`), into a directory of the caller's choosing, never committed.

Endpoints: `POST /oauth/token` (JWT grant; `consent_required` on demand), `GET /oauth/userinfo`,
`POST /restapi/v2.1/accounts/{a}/envelopes`, `GET .../envelopes/{e}`, `PUT .../envelopes/{e}` (void),
`GET .../envelopes/{e}/recipients`, `POST .../envelopes/{e}/views/recipient`,
`GET .../envelopes/{e}/documents/{combined|certificate}`, `GET .../envelopes/{e}/audit_events`, and the signing
view itself: `GET /signing/{e}` (the page a signer sees), `POST /signing/{e}` (finish or decline). `GET /inbox`
lists the envelopes "e-mailed" to signers, for the demo.

Faults for tests: `fail_creates` (that many envelope creations answer 503), `create_delay` (seconds before
answering, to time out), `consent_required`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import ssl
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

logger = logging.getLogger("dpa_service.docusign_standin")

ACCOUNT_ID = "a1b2c3d4-0000-4000-8000-00000000d0c5"
USER_ID = "5e7a1d2c-0000-4000-8000-0000000005e7"
INTEGRATION_KEY = "0ac5e0de-0000-4000-8000-0000000000ik"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def write_test_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost: (ca.pem, server.pem, server.key)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "DocuSign stand-in test CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def write_jwt_key(path: Path) -> bytes:
    """The integration's RSA key pair (DocuSign's JWT grant is RS256): the private key to `path`; returns the
    public key PEM the stand-in checks assertions with."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def certificate_pdf(envelope_id: str, lines: list[str]) -> bytes:
    """A one-page PDF: the stand-in's certificate of completion."""
    text = " ".join(f"({line.replace('(', '[').replace(')', ']')}) Tj T*" for line in lines)
    stream = f"BT /F1 10 Tf 14 TL 50 780 Td (Certificate of Completion {envelope_id}) Tj T* {text} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


@dataclass
class Envelope:
    id: str
    definition: dict[str, Any]
    document: bytes
    status: str = "sent"
    status_changed: str = field(default_factory=_now)
    signers: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, str]] = field(default_factory=list)
    voided_reason: str | None = None

    def signer(self, recipient_id: str) -> dict[str, Any]:
        return next(s for s in self.signers if s["recipientId"] == recipient_id)


@dataclass
class ConnectMessage:
    url: str | None
    body: bytes
    headers: dict[str, str]


class StandIn:
    """The stand-in's state and its server. `start()` serves on 127.0.0.1 in a background thread."""

    def __init__(
        self,
        directory: Path,
        *,
        hmac_keys: tuple[str, ...] = ("standin-connect-key",),
        port: int = 0,
        deliver_connect: bool = False,
    ) -> None:
        self.directory = directory
        self.hmac_keys = hmac_keys
        self.deliver_connect = deliver_connect
        self.ca_path, cert, key = write_test_ca(directory / "tls")
        self.private_key_path = directory / "jwt-private.pem"
        self.public_key = write_jwt_key(self.private_key_path)
        self.envelopes: dict[str, Envelope] = {}
        self.connect: list[ConnectMessage] = []
        self.tokens_issued = 0
        self.fail_creates = 0
        self.create_delay = 0.0
        self.consent_required = False
        self.lock = threading.Lock()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        from dpa_service.agreements.docusign_standin_http import handler

        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler(self))
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="docusign-standin", daemon=True)

    @property
    def base_uri(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    @property
    def oauth_host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def environment(self) -> dict[str, str]:
        """The DOCUSIGN_* variables that point the service here."""
        return {
            "DOCUSIGN_BASE_URI": self.base_uri,
            "DOCUSIGN_OAUTH_HOST": self.oauth_host,
            "DOCUSIGN_INTEGRATION_KEY": INTEGRATION_KEY,
            "DOCUSIGN_USER_ID": USER_ID,
            "DOCUSIGN_ACCOUNT_ID": ACCOUNT_ID,
            "DOCUSIGN_PRIVATE_KEY_PATH": str(self.private_key_path),
            "DOCUSIGN_CONNECT_HMAC_KEYS": ",".join(self.hmac_keys),
            "DOCUSIGN_CA_BUNDLE": str(self.ca_path),
        }

    def start(self) -> StandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- what a signer does ----------------------------------------------------------------------------------

    def sign(self, envelope_id: str, recipient_id: str = "1", ip: str = "203.0.113.7") -> None:
        """The recipient signs (in the embedded view, or from the e-mail DocuSign sent)."""
        with self.lock:
            envelope = self.envelopes[envelope_id]
            if envelope.status not in ("sent", "delivered"):
                return
            signer = envelope.signer(recipient_id)
            signer.update(
                status="completed", signedDateTime=_now(), deliveredDateTime=signer.get("deliveredDateTime") or _now()
            )
            envelope.events.append(self._audit(envelope, signer, "Signed", ip))
            self._connect(envelope, "recipient-completed", recipient_id)
            waiting = [s for s in envelope.signers if s["status"] != "completed"]
            if waiting:
                nxt = min(waiting, key=lambda s: int(s["routingOrder"]))
                nxt["status"] = "sent"
                self._connect(envelope, "recipient-sent", nxt["recipientId"])
                return
            envelope.status, envelope.status_changed = "completed", _now()
            envelope.events.append(self._audit(envelope, signer, "Envelope completed", ip))
            self._connect(envelope, "envelope-completed")

    def decline(self, envelope_id: str, reason: str, recipient_id: str = "1") -> None:
        with self.lock:
            envelope = self.envelopes[envelope_id]
            if envelope.status not in ("sent", "delivered"):
                return
            signer = envelope.signer(recipient_id)
            signer.update(status="declined", declinedDateTime=_now(), declinedReason=reason)
            envelope.status, envelope.status_changed = "declined", _now()
            envelope.events.append(self._audit(envelope, signer, "Declined", "203.0.113.7"))
            self._connect(envelope, "recipient-declined", recipient_id)
            self._connect(envelope, "envelope-declined")

    def connect_body(self, envelope_id: str, event: str, recipient_id: str | None = None) -> bytes:
        """A Connect JSON (SIM) message for the envelope as it stands (tests build out-of-order ones with it)."""
        envelope = self.envelopes[envelope_id]
        summary: dict[str, Any] = {
            "status": envelope.status,
            "emailSubject": envelope.definition.get("emailSubject"),
            "statusChangedDateTime": envelope.status_changed,
            "recipients": {"signers": [dict(s) for s in envelope.signers]},
        }
        if envelope.voided_reason:
            summary["voidedReason"] = envelope.voided_reason
        data: dict[str, Any] = {
            "accountId": ACCOUNT_ID,
            "userId": USER_ID,
            "envelopeId": envelope.id,
            "envelopeSummary": summary,
        }
        if recipient_id:
            data["recipientId"] = recipient_id
        message = {
            "event": event,
            "apiVersion": "v2.1",
            "uri": f"/restapi/v2.1/accounts/{ACCOUNT_ID}/envelopes/{envelope.id}",
            "retryCount": 0,
            "configurationId": 10001,
            "generatedDateTime": _now(),
            "data": data,
        }
        return json.dumps(message).encode()

    def signed_headers(self, body: bytes, keys: tuple[str, ...] | None = None) -> dict[str, str]:
        """`X-DocuSign-Signature-1..N`: base64 HMAC-SHA256 of the body, one per key (DocuSign's rotation)."""
        headers = {"Content-Type": "application/json"}
        for number, key in enumerate(keys or self.hmac_keys, 1):
            digest = hmac.new(key.encode(), body, hashlib.sha256).digest()
            headers[f"X-DocuSign-Signature-{number}"] = base64.b64encode(digest).decode()
        return headers

    def _connect(self, envelope: Envelope, event: str, recipient_id: str | None = None) -> None:
        body = self.connect_body(envelope.id, event, recipient_id)
        url = (envelope.definition.get("eventNotification") or {}).get("url")
        message = ConnectMessage(url, body, self.signed_headers(body))
        self.connect.append(message)
        if self.deliver_connect and url:
            from dpa_service.agreements.docusign_standin_http import post

            threading.Thread(target=post, args=(message,), daemon=True).start()

    def _audit(self, envelope: Envelope, signer: dict[str, Any], action: str, ip: str) -> dict[str, str]:
        return {
            "logTime": _now(),
            "Source": "web",
            "UserName": signer["name"],
            "UserId": signer["recipientIdGuid"],
            "Action": action,
            "Message": f"{signer['name']} {action.lower()} the envelope",
            "EnvelopeStatus": envelope.status,
            "ClientIPAddress": ip,
            "Information": "",
            "GeoLocation": "",
            "Language": "english",
        }


def serve(directory: Path, port: int, hmac_keys: tuple[str, ...]) -> StandIn:
    """`dpa docusign-standin`: start serving (Connect messages are posted to the URL each envelope names)."""

    return StandIn(directory, hmac_keys=hmac_keys, port=port, deliver_connect=True).start()
