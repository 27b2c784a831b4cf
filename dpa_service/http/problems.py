"""Every error leaves as RFC 9457 `application/problem+json`, mapped here once.

Unexpected errors answer 500 with a correlation id (also in the `X-Request-ID` header) and no internals;
the traceback goes to the log under the same id, so an operator can find it.
"""

from __future__ import annotations

import logging
import re
import secrets
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy.exc import IntegrityError

from dpa_service.core import log_context
from dpa_service.core.exceptions import DPAError, FieldError, Unavailable

logger = logging.getLogger("dpa_service.errors")

MEDIA_TYPE = "application/problem+json"
REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# The web face: errors on these paths are pages in the layout (app.state.problem_page), not problem+json.
PAGE_PATHS = re.compile(r"^/(?:$|login(?:/|$)|logout$|app(?:/|$)|staff(?:/|$)|verify$|verify-email/)")


def wants_page(request: Request[Any, Any, Any]) -> bool:
    """A page path asked for by a browser: any Accept that does not prefer JSON counts as one."""
    if PAGE_PATHS.match(request.scope["path"]) is None or request.app.state.get("problem_page") is None:
        return False
    preferred = request.accept.best_match(["text/html", "application/problem+json", "application/json"])
    return preferred in (None, "text/html")


def request_id_of(scope: Scope) -> str:
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        state["request_id"] = incoming if _SAFE_REQUEST_ID.match(incoming) else secrets.token_hex(8)
    return state["request_id"]


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Give every response an `X-Request-ID` (the caller's, if it sent a sane one), and every log line written while
    the request is served the same id (core.log_context)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request_id = request_id_of(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        with log_context.request(request_id):
            await app(scope, receive, send_with_id)

    return middleware


def problem(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    *,
    title: str | None = None,
    slug: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    phrase = HTTPStatus(status).phrase
    request_id = request_id_of(request.scope)
    if wants_page(request):
        page: Response[Any] = request.app.state.problem_page(request, status, title or phrase, detail)
        for name, value in {**(headers or {}), REQUEST_ID_HEADER: request_id}.items():
            if name != "WWW-Authenticate":
                page.headers[name] = value
        return page
    body: dict[str, Any] = {
        "type": f"urn:dpa:problem:{slug or phrase.lower().replace(' ', '-')}",
        "title": title or phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "correlation_id": request_id,
    }
    if errors is not None:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    return Response(
        body,
        status_code=status,
        media_type=MEDIA_TYPE,
        headers={**(headers or {}), REQUEST_ID_HEADER: request_id},
    )


def _domain_error(request: Request[Any, Any, Any], exc: DPAError) -> Response[Any]:
    errors = getattr(exc, "errors", None)
    headers = {"WWW-Authenticate": 'Bearer realm="dpa"'} if exc.status_code == 401 else None
    if isinstance(exc, Unavailable):
        logger.warning("%s on %s: %s", exc.title, request.url.path, exc.detail)
        return problem(request, exc.status_code, exc.detail, title=exc.title, headers={"Retry-After": "30"})
    if exc.status_code >= 500:
        return _unexpected(request, exc)
    return problem(request, exc.status_code, exc.detail, title=exc.title, errors=errors, headers=headers)


MISSING_PARAMETER = re.compile(r"Missing required (\w+) parameter '([^']+)'")


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            field = str(item.get("key") or ("body" if item.get("source", "body") == "body" else ""))
            message = str(item.get("message", "is not valid")).removeprefix("Value error, ")
            errors.append(FieldError(field or "body", message))
    missing = MISSING_PARAMETER.match(exc.detail or "")
    if not errors and missing:
        # Litestar names a missing required query/header/path parameter only in its message, with no `extra`.
        errors.append(FieldError(missing.group(2), f"is a required {missing.group(1)} parameter"))
    if not errors:
        errors.append(FieldError("body", "must be a JSON object matching the documented schema"))
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return problem(request, 422, detail, title="Validation failed", slug="validation", errors=errors)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status >= 500:
        return _unexpected(request, exc)
    detail = exc.detail if exc.detail and exc.detail != HTTPStatus(status).phrase else ""
    if status == 400 and "malformed" in (exc.detail or "").lower():
        detail = f"The request body is not valid JSON ({exc.detail})."
    errors = [FieldError("body", detail)] if status == 400 else None
    return problem(request, status, detail or HTTPStatus(status).phrase, errors=errors, headers=exc.headers)


def _integrity_error(request: Request[Any, Any, Any], exc: IntegrityError) -> Response[Any]:
    logger.info("integrity conflict on %s: %s", request.url.path, exc.orig)
    return problem(request, 409, "The change conflicts with data that already exists.")


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    logger.error(
        "unexpected error %s on %s %s",
        request_id_of(request.scope),
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return problem(
        request,
        500,
        "Something went wrong on our side. Quote the correlation_id when you contact support.",
    )


exception_handlers = {
    DPAError: _domain_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    IntegrityError: _integrity_error,
    Exception: _unexpected,
}
