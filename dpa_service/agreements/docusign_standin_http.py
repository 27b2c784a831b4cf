"""The stand-in's HTTP face (see `docusign_standin`): DocuSign's endpoints as the SDK calls them, the signing view,
the demo's inbox, and Connect delivery."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import secrets
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt

from dpa_service.agreements.docusign_standin import (
    ACCOUNT_ID,
    INTEGRATION_KEY,
    USER_ID,
    ConnectMessage,
    Envelope,
    StandIn,
    _now,
    certificate_pdf,
)

logger = logging.getLogger("dpa_service.docusign_standin")


def post(message: ConnectMessage) -> None:
    assert message.url is not None
    request = urllib.request.Request(message.url, data=message.body, headers=message.headers, method="POST")  # noqa: S310
    for attempt in range(3):
        try:
            with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - the URL the envelope's Connect named
                return
        except Exception as exc:
            logger.warning("stand-in Connect delivery to %s failed (%s), attempt %d", message.url, exc, attempt + 1)
            time.sleep(1 + attempt)


def handler(standin: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("stand-in: " + format, *args)

        def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _authorized(self) -> bool:
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                self._send(401, {"errorCode": "AUTHORIZATION_INVALID_TOKEN", "message": "The access token is invalid"})
                return False
            return True

        def _envelope(self, envelope_id: str) -> Envelope | None:
            envelope = standin.envelopes.get(envelope_id)
            if envelope is None:
                self._send(404, {"errorCode": "ENVELOPE_DOES_NOT_EXIST", "message": "The envelope does not exist."})
            return envelope

        def do_POST(self) -> None:
            path = urlparse(self.path).path
            body = self._body()
            if path == "/oauth/token":
                return self._token(body)
            if path.startswith("/signing/"):
                return self._signing_post(path.rsplit("/", 1)[1], body)
            parts = path.strip("/").split("/")
            if not self._authorized():
                return None
            if parts[:5] == ["restapi", "v2.1", "accounts", ACCOUNT_ID, "envelopes"] and len(parts) == 5:
                return self._create(json.loads(body))
            if len(parts) == 8 and parts[6:] == ["views", "recipient"]:
                return self._view(parts[5], json.loads(body))
            return self._send(404, {"errorCode": "NOT_FOUND", "message": path})

        def do_PUT(self) -> None:
            parts = urlparse(self.path).path.strip("/").split("/")
            body = json.loads(self._body() or b"{}")
            if not self._authorized() or (envelope := self._envelope(parts[5])) is None:
                return
            with standin.lock:
                if body.get("status") == "voided" and envelope.status in ("sent", "delivered"):
                    envelope.status, envelope.voided_reason = "voided", body.get("voidedReason")
                    envelope.status_changed = _now()
                    standin._connect(envelope, "envelope-voided")
            self._send(200, {"envelopeId": envelope.id})

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/oauth/userinfo":
                return self._userinfo()
            if url.path.startswith("/signing/"):
                return self._signing_page(url.path.rsplit("/", 1)[1], parse_qs(url.query))
            if url.path == "/inbox":
                return self._inbox()
            parts = url.path.strip("/").split("/")
            if not self._authorized() or len(parts) < 6 or (envelope := self._envelope(parts[5])) is None:
                return None
            rest = parts[6:]
            if not rest:
                return self._send(
                    200,
                    {
                        "envelopeId": envelope.id,
                        "status": envelope.status,
                        "statusChangedDateTime": envelope.status_changed,
                        "emailSubject": envelope.definition.get("emailSubject"),
                    },
                )
            if rest == ["recipients"]:
                return self._send(200, {"signers": envelope.signers, "recipientCount": str(len(envelope.signers))})
            if rest == ["audit_events"]:
                events = [{"eventFields": [{"name": k, "value": v} for k, v in e.items()]} for e in envelope.events]
                return self._send(200, {"auditEvents": events})
            if rest == ["documents", "combined"]:
                if envelope.status != "completed":
                    return self._send(400, {"errorCode": "ENVELOPE_NOT_COMPLETE", "message": envelope.status})
                return self._send(200, envelope.document, "application/pdf")
            if rest == ["documents", "certificate"]:
                lines = [
                    f"{e['logTime']} {e['UserName']}: {e['Action']} from {e['ClientIPAddress']}"
                    for e in envelope.events
                ]
                return self._send(200, certificate_pdf(envelope.id, lines), "application/pdf")
            return self._send(404, {"errorCode": "NOT_FOUND", "message": url.path})

        # --- OAuth -------------------------------------------------------------------------------------------

        def _token(self, body: bytes) -> None:
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
                return self._send(400, {"error": "unsupported_grant_type"})
            try:
                claims = jwt.decode(
                    form.get("assertion", ""), standin.public_key, algorithms=["RS256"], audience=standin.oauth_host
                )
            except jwt.PyJWTError:
                return self._send(400, {"error": "invalid_grant", "error_description": "no_valid_keys_or_signatures"})
            if claims.get("iss") != INTEGRATION_KEY or claims.get("sub") != USER_ID:
                return self._send(400, {"error": "invalid_grant", "error_description": "user_not_found"})
            if standin.consent_required or set(str(claims.get("scope", "")).split()) < {"signature", "impersonation"}:
                return self._send(400, {"error": "consent_required"})
            standin.tokens_issued += 1
            return self._send(
                200, {"access_token": secrets.token_urlsafe(32), "token_type": "Bearer", "expires_in": 3600}
            )

        def _userinfo(self) -> None:
            if not self._authorized():
                return
            self._send(
                200,
                {
                    "sub": USER_ID,
                    "name": "DPA Service Integration",
                    "email": "integration@example.com",
                    "accounts": [
                        {
                            "account_id": ACCOUNT_ID,
                            "is_default": True,
                            "account_name": "Stand-in account",
                            "base_uri": standin.base_uri,
                        }
                    ],
                },
            )

        # --- envelopes ---------------------------------------------------------------------------------------

        def _create(self, definition: dict[str, Any]) -> None:
            with standin.lock:
                failing = standin.fail_creates > 0
                if failing:
                    standin.fail_creates -= 1
            if standin.create_delay:
                time.sleep(standin.create_delay)
            if failing:
                return self._send(503, {"errorCode": "SERVICE_UNAVAILABLE", "message": "Try again later."})
            documents = definition.get("documents") or []
            if len(documents) != 1 or not documents[0].get("documentBase64"):
                return self._send(400, {"errorCode": "ENVELOPE_IS_INCOMPLETE", "message": "One document expected."})
            envelope = Envelope(str(uuid.uuid4()), definition, base64.b64decode(documents[0]["documentBase64"]))
            for signer in (definition.get("recipients") or {}).get("signers") or []:
                first = str(signer.get("routingOrder", "1")) == "1"
                envelope.signers.append(
                    {
                        **{k: v for k, v in signer.items() if k != "tabs"},
                        "recipientIdGuid": str(uuid.uuid4()),
                        "status": "sent" if first else "created",
                    }
                )
            envelope.events.append(
                {
                    "logTime": _now(),
                    "Source": "API",
                    "UserName": "DPA Service Integration",
                    "UserId": USER_ID,
                    "Action": "Registered",
                    "Message": "Envelope sent",
                    "EnvelopeStatus": "sent",
                    "ClientIPAddress": "127.0.0.1",
                    "Information": "",
                    "GeoLocation": "",
                    "Language": "english",
                }
            )
            with standin.lock:
                standin.envelopes[envelope.id] = envelope
                standin._connect(envelope, "envelope-sent")
            uri = f"/envelopes/{envelope.id}"
            self._send(201, {"envelopeId": envelope.id, "uri": uri, "statusDateTime": _now(), "status": "sent"})

        def _view(self, envelope_id: str, body: dict[str, Any]) -> None:
            envelope = self._envelope(envelope_id)
            if envelope is None:
                return
            signer = next(
                (
                    s
                    for s in envelope.signers
                    if s.get("clientUserId") and s.get("clientUserId") == body.get("clientUserId")
                ),
                None,
            )
            if signer is None or signer.get("email", "").lower() != str(body.get("email", "")).lower():
                return self._send(
                    400,
                    {
                        "errorCode": "UNKNOWN_ENVELOPE_RECIPIENT",
                        "message": "The recipient you have identified is not a valid recipient.",
                    },
                )
            if envelope.status not in ("sent", "delivered"):
                return self._send(400, {"errorCode": "ENVELOPE_INVALID_STATUS", "message": envelope.status})
            ticket = secrets.token_urlsafe(16)
            signer["_ticket"], signer["_return"] = ticket, body.get("returnUrl")
            query = urlencode({"ticket": ticket, "r": signer["recipientId"]})
            self._send(201, {"url": f"{standin.base_uri}/signing/{envelope.id}?{query}"})

        # --- the signing view --------------------------------------------------------------------------------

        def _signing_page(self, envelope_id: str, query: dict[str, list[str]]) -> None:
            envelope = standin.envelopes.get(envelope_id)
            recipient = (query.get("r") or ["1"])[0]
            if envelope is None:
                return self._send(404, b"<h1>Not found</h1>", "text/html")
            signer = envelope.signer(recipient)
            with standin.lock:
                if envelope.status == "sent":
                    envelope.status = "delivered"
                    signer.update(status="delivered", deliveredDateTime=_now())
                    standin._connect(envelope, "recipient-delivered", recipient)
            ticket = html.escape((query.get("ticket") or [""])[0])
            page = f"""<!doctype html><html><head><title>DocuSign</title></head><body>
<h1>Please review and act on this document</h1>
<p>Envelope {html.escape(envelope.id)} for {html.escape(signer["name"])} ({html.escape(signer["email"])})</p>
<p>SHA-256 of the document: <code>{hashlib.sha256(envelope.document).hexdigest()}</code></p>
<form method="post"><input type="hidden" name="ticket" value="{ticket}"><input type="hidden" name="r"
value="{html.escape(recipient)}"><label>Reason (to decline) <input name="reason"></label>
<button name="action" value="finish">Finish</button> <button name="action" value="decline">Decline</button>
</form></body></html>"""
            self._send(200, page.encode(), "text/html; charset=utf-8")

        def _signing_post(self, envelope_id: str, body: bytes) -> None:
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            envelope = standin.envelopes.get(envelope_id)
            if envelope is None:
                return self._send(404, b"<h1>Not found</h1>", "text/html")
            recipient = form.get("r", "1")
            signer = envelope.signer(recipient)
            back = signer.get("_return")
            if signer.get("clientUserId") and form.get("ticket") != signer.get("_ticket"):
                return self._send(403, b"<h1>This signing session has expired</h1>", "text/html")
            if form.get("action") == "decline":
                standin.decline(envelope.id, form.get("reason") or "Declined by the signer", recipient)
                event = "decline"
            else:
                standin.sign(envelope.id, recipient, ip=self.client_address[0])
                event = "signing_complete"
            signer.pop("_ticket", None)
            if back:
                sep = "&" if "?" in back else "?"
                self.send_response(302)
                self.send_header("Location", f"{back}{sep}event={event}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return self._send(200, f"<h1>Done: {event}</h1>".encode(), "text/html")

        def _inbox(self) -> None:
            rows = []
            for envelope in list(standin.envelopes.values()):
                for signer in envelope.signers:
                    if signer.get("clientUserId") or signer["status"] not in ("sent", "delivered"):
                        continue
                    link = f"/signing/{envelope.id}?r={signer['recipientId']}"
                    rows.append(
                        f"<li>{html.escape(signer['email'])}: <a href='{link}'>"
                        f"{html.escape(str(envelope.definition.get('emailSubject')))}</a></li>"
                    )
            page = f"<!doctype html><title>Inbox</title><h1>DocuSign e-mails</h1><ul>{''.join(rows)}</ul>"
            self._send(200, page.encode(), "text/html; charset=utf-8")

    return Handler
