"""DocuSign's eSignature REST API through the official SDK (`docusign-esign`), kept off the event loop.

The SDK is blocking (urllib3) and has no default timeout: every call here runs in a thread (`asyncio.to_thread`)
and passes `_request_timeout=(connect, read)`; the few SDK calls that take no timeout argument (the JWT grant,
userinfo) go through a REST client whose requests default to the same tuple. `ApiClient.host` is the account's
base URI plus `/restapi` (setting `base_path` alone would send calls to production).

Authentication is the JWT grant with the `signature impersonation` scopes; JWT has no refresh token, so the access
token is cached until shortly before it expires and a new grant is asked for then. `consent_required` means the
impersonated user never granted the integration consent: a configuration problem, raised as `ConsentRequired` with
the consent URL (and logged with it).

    DocuSignError
    ├── DocuSignUnavailable   429, 5xx, a timeout or no connection: try again later (with backoff)
    └── DocuSignRefused       any other 4xx: trying again cannot help
        └── ConsentRequired   the JWT grant answered consent_required
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

import urllib3
from docusign_esign import ApiClient, EnvelopesApi
from docusign_esign.client.api_exception import ApiException
from docusign_esign.client.api_response import RESTClientObject
from docusign_esign.client.configuration import Configuration

from dpa_service.core.settings import DocuSignSettings

logger = logging.getLogger("dpa_service.agreements.docusign")

SCOPES = ("signature", "impersonation")
TOKEN_LIFETIME = 3600  # seconds asked for in the JWT grant (DocuSign's maximum)
TOKEN_MARGIN = 300  # a cached token is replaced this long before it expires

T = TypeVar("T")


class DocuSignError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DocuSignUnavailable(DocuSignError):
    """Try again later: DocuSign answered 429 or 5xx, or did not answer in time."""


class DocuSignRefused(DocuSignError):
    """DocuSign refused the call (a 4xx other than 429): retrying the same call cannot help."""


class ConsentRequired(DocuSignRefused):
    def __init__(self, consent_url: str) -> None:
        super().__init__(
            "DocuSign refused the JWT grant with consent_required: the impersonated user (DOCUSIGN_USER_ID) has not "
            f"granted this integration key consent for 'signature impersonation'. Open {consent_url} as that user "
            "(or have an administrator grant consent for the organization), then try again.",
            400,
        )
        self.consent_url = consent_url


class _TimedRestClient(RESTClientObject):
    """The SDK's REST client, trusting `ca_bundle` when given, with a (connect, read) timeout on every request."""

    def __init__(self, configuration: Configuration, timeout: tuple[float, float]) -> None:
        super().__init__(configuration=configuration)
        self.timeout = timeout
        # No urllib3-level retries: retrying is the outbox's job, with backoff, and a retried POST could create
        # two envelopes.
        self.pool_manager.connection_pool_kw["retries"] = False

    def request(self, method: str, url: str, *args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        return super().request(method, url, *args, _request_timeout=_request_timeout or self.timeout, **kwargs)


@dataclass(frozen=True)
class EnvelopeState:
    status: str
    status_changed_at: str | None
    recipients: list[dict[str, Any]]


class DocuSignClient:
    """One DocuSign account, as configured. Thread-safe: calls run in worker threads."""

    def __init__(self, settings: DocuSignSettings) -> None:
        self.settings = settings
        self.timeout = (settings.connect_timeout, settings.read_timeout)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0
        self._checked_userinfo = False

    # --- plumbing -------------------------------------------------------------------------------------------

    def _api_client(self) -> ApiClient:
        client = ApiClient(host=self.settings.base_uri + "/restapi", oauth_host_name=self.settings.oauth_host)
        configuration = Configuration()
        if self.settings.ca_bundle is not None:
            configuration.ssl_ca_cert = str(self.settings.ca_bundle)
        client.rest_client = _TimedRestClient(configuration, self.timeout)
        return client

    def consent_url(self) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "scope": " ".join(SCOPES),
                "client_id": self.settings.integration_key,
                "redirect_uri": "https://developers.docusign.com/platform/auth/consent",
            }
        )
        return f"https://{self.settings.oauth_host}/oauth/auth?{query}"

    def _access_token(self) -> str:
        with self._lock:
            if self._token and time.monotonic() < self._token_expires - TOKEN_MARGIN:
                return self._token
            client = self._api_client()
            try:
                token = client.request_jwt_user_token(
                    client_id=self.settings.integration_key,
                    user_id=self.settings.user_id,
                    oauth_host_name=self.settings.oauth_host,
                    private_key_bytes=self.settings.private_key_path.read_bytes(),
                    expires_in=TOKEN_LIFETIME,
                    scopes=SCOPES,
                )
            except ApiException as exc:
                if b"consent_required" in _body(exc) or "consent_required" in str(exc):
                    url = self.consent_url()
                    logger.error("DocuSign JWT grant: consent_required; grant consent at %s", url)
                    raise ConsentRequired(url) from exc
                raise
            self._token = str(token.access_token)
            self._token_expires = time.monotonic() + float(token.expires_in or TOKEN_LIFETIME)
            if not self._checked_userinfo:
                self._check_account(client, self._token)
            return self._token

    def _check_account(self, client: ApiClient, token: str) -> None:
        """The configured account must be one the user may act for; its base URI should be the configured one."""
        info = client.get_user_info(token)
        accounts = {str(a.account_id): a for a in (info.accounts or [])}
        account = accounts.get(self.settings.account_id)
        if account is None:
            raise DocuSignRefused(f"DOCUSIGN_ACCOUNT_ID {self.settings.account_id} is not an account of the user", 403)
        if str(account.base_uri).rstrip("/") != self.settings.base_uri:
            logger.warning(
                "DOCUSIGN_BASE_URI %s differs from the account's %s", self.settings.base_uri, account.base_uri
            )
        self._checked_userinfo = True

    def _envelopes(self) -> EnvelopesApi:
        client = self._api_client()
        client.set_default_header("Authorization", f"Bearer {self._access_token()}")
        return EnvelopesApi(client)

    async def _run(self, call: Callable[[], T]) -> T:
        """Run a blocking SDK call in a thread, mapping its failures to DocuSignError."""
        return await asyncio.to_thread(self._mapped, call)

    def _mapped(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except DocuSignError:
            raise
        except ApiException as exc:
            status = int(exc.status or 0)
            message = f"DocuSign answered {status}: {_body(exc)[:300].decode(errors='replace')}"
            if status == 429 or status >= 500 or status == 0:
                raise DocuSignUnavailable(message, status) from exc
            if status == 401:  # a revoked or expired token: forget it, the next try asks for a new one
                self._token = None
            raise DocuSignRefused(message, status) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise DocuSignUnavailable(f"DocuSign did not answer: {type(exc).__name__}: {exc}") from exc

    # --- the calls the service makes ------------------------------------------------------------------------

    async def create_envelope(self, definition: Any) -> str:
        account = self.settings.account_id

        def call() -> str:
            summary = self._envelopes().create_envelope(
                account, envelope_definition=definition, _request_timeout=self.timeout
            )
            return str(summary.envelope_id)

        return await self._run(call)

    async def recipient_view(self, envelope_id: str, request: Any) -> str:
        def call() -> str:
            view = self._envelopes().create_recipient_view(
                self.settings.account_id, envelope_id, recipient_view_request=request, _request_timeout=self.timeout
            )
            return str(view.url)

        return await self._run(call)

    async def document(self, envelope_id: str, document_id: str) -> bytes:
        """`combined` (the signed documents) or `certificate` (the certificate of completion), as PDF bytes."""

        def call() -> bytes:
            data = self._envelopes().get_document(
                self.settings.account_id, document_id, envelope_id, certificate="false", _request_timeout=self.timeout
            )
            return data if isinstance(data, bytes) else str(data).encode()

        return await self._run(call)

    async def audit_events(self, envelope_id: str) -> list[dict[str, str]]:
        """The envelope's audit trail: one {name: value} per event (DocuSign's eventFields)."""

        def call() -> list[dict[str, str]]:
            result = self._envelopes().list_audit_events(
                self.settings.account_id, envelope_id, _request_timeout=self.timeout
            )
            events = []
            for event in result.audit_events or []:
                events.append({str(f.name): str(f.value) for f in (event.event_fields or [])})
            return events

        return await self._run(call)

    async def envelope_state(self, envelope_id: str) -> EnvelopeState:
        """The envelope's status and its signers' (the polling fallback when no Connect message came)."""

        def call() -> EnvelopeState:
            api = self._envelopes()
            envelope = api.get_envelope(self.settings.account_id, envelope_id, _request_timeout=self.timeout)
            recipients = api.list_recipients(self.settings.account_id, envelope_id, _request_timeout=self.timeout)
            signers = [_plain(s) for s in (recipients.signers or [])]
            return EnvelopeState(str(envelope.status), envelope.status_changed_date_time, signers)

        return await self._run(call)

    async def void(self, envelope_id: str, reason: str) -> None:
        from docusign_esign import Envelope

        def call() -> None:
            self._envelopes().update(
                self.settings.account_id,
                envelope_id,
                envelope=Envelope(status="voided", voided_reason=reason[:200] or "Replaced"),
                _request_timeout=self.timeout,
            )

        await self._run(call)


def _body(exc: ApiException) -> bytes:
    body = exc.body if exc.body is not None else b""
    return body if isinstance(body, bytes) else str(body).encode()


def _plain(model: Any) -> dict[str, Any]:
    """An SDK model as DocuSign's camelCase JSON (what Connect messages carry too)."""
    data: dict[str, Any] = ApiClient().sanitize_for_serialization(model)
    return data


def pdf_base64(content: bytes) -> str:
    return base64.b64encode(content).decode()


def json_of(model: Any) -> str:
    return json.dumps(_plain(model), sort_keys=True)
