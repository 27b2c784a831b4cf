"""Limits on JSON request bodies, for every route, checked before anything decodes them.

msgspec (which Litestar decodes bodies with) raises RecursionError on deep nesting, which no handler expects (a
500), and everything after it (pydantic, JSON Schema, merge patches) recurses too. So before a JSON body reaches
the app it must be at most `MAX_JSON_BYTES` long (413 otherwise, from its Content-Length when it has one, else as
it streams in) and nest at most `MAX_JSON_DEPTH` arrays and objects (400 otherwise, naming `body`). A DPA's
variables nest four levels; a template's variables schema about ten.

Form posts, file uploads and PDFs (`/documents/verify`) are not JSON: Litestar's own `request_max_body_size`
bounds them.
"""

from __future__ import annotations

import re

from litestar.exceptions import ClientException, HTTPException
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

# A template version's source (at most 1,000,000 characters) and stylesheet (500,000), with JSON's escaping.
MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_JSON_DEPTH = 64
NOT_JSON = ("multipart/form-data", "application/x-www-form-urlencoded", "application/pdf", "application/octet-stream")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

_STRINGS = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class PayloadTooLarge(HTTPException):
    status_code = 413


def nesting_problem(body: bytes, limit: int = MAX_JSON_DEPTH) -> str | None:
    """What is wrong with how the arrays and objects in `body` nest (deeper than `limit`, or unbalanced), or None.

    All in C: strings removed, everything but brackets deleted, then the innermost pairs peeled off once per level.
    Valid JSON always peels away to nothing; anything left is too deep, or not JSON at all (which the decoder would
    refuse too, but only after recursing into every bracket).
    """
    brackets = _STRINGS.sub(b"", body).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return None
        peeled = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if peeled == brackets:
            return "is not valid JSON (its brackets do not balance)"
        brackets = peeled
    return f"nests arrays and objects deeper than {limit} levels" if brackets else None


def _is_json(scope: Scope) -> bool:
    if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
        return False
    for name, value in scope.get("headers") or []:
        if name == b"content-type":
            return not value.decode("latin-1").lower().lstrip().startswith(NOT_JSON)
    return True  # no Content-Type: Litestar reads a `data` parameter as JSON


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(detail=f"A JSON request body may be at most {MAX_JSON_BYTES // (1024 * 1024)} MiB.")


def json_body_limits_middleware(app: ASGIApp) -> ASGIApp:
    """Buffer a JSON body (bounded), check its nesting, and hand the app the same bytes."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_json(scope):
            await app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > MAX_JSON_BYTES:
            raise _too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_JSON_BYTES:
                raise _too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if (problem := nesting_problem(body)) is not None:
            raise ClientException(detail=f"The request body {problem}.")
        replayed = False

        async def replay() -> ReceiveMessage:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    return middleware
