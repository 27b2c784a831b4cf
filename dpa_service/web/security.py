"""Security headers on every HTML response, and CSRF settings for every form.

The Content-Security-Policy allows our own stylesheet and scripts only (no inline code, nothing from another
origin), forms that post to us alone, and no framing. Pages show tenant data, so they are never cached.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from litestar.config.csrf import CSRFConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from dpa_service.core.settings import Settings

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HTML_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "cache-control": "no-store",
}
PDF_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff"}
CSRF_FIELD = "_csrf_token"
# Forms are the web face's; API calls authenticate with a header (no ambient credential to forge), and signing
# links and webhooks carry their own secret.
CSRF_EXEMPT = ["^/api/", "^/sign/", "^/webhooks/", "^/health$", "^/schema"]


def security_headers_middleware(production: bool) -> Callable[[ASGIApp], ASGIApp]:
    extra = {"strict-transport-security": "max-age=31536000; includeSubDomains"} if production else {}

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = list(message.get("headers", []))
                    content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                    if content_type.startswith(b"application/pdf"):
                        # A DPA is tenant data like the pages: never kept in a shared computer's disk cache.
                        present = {k.lower().decode("latin-1") for k, _ in headers}
                        headers += [(k.encode(), v.encode()) for k, v in PDF_HEADERS.items() if k not in present]
                        message["headers"] = headers
                    if content_type.startswith(b"text/html"):
                        present = {k.lower().decode("latin-1") for k, _ in headers}
                        # A page that set a stricter header of its own (the signing page's no-referrer) keeps it.
                        headers += [
                            (k.encode(), v.encode()) for k, v in {**HTML_HEADERS, **extra}.items() if k not in present
                        ]
                        message["headers"] = headers
                await send(message)

            await app(scope, receive, send_with_headers)

        return middleware

    return wrap


def csrf_config(settings: Settings, app_secret: bytes) -> CSRFConfig:
    return CSRFConfig(
        secret=hmac.new(app_secret, b"dpa web csrf", hashlib.sha256).hexdigest(),
        cookie_name="dpa_csrf",
        cookie_secure=not settings.is_development,
        cookie_httponly=True,  # the token travels in the form; no script needs the cookie
        cookie_samesite="lax",
        exclude=CSRF_EXEMPT,
    )
