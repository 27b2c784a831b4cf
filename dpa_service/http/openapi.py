"""The OpenAPI document and its Swagger UI at `/schema`, with the UI's files served from here, not a CDN.

The files come from the `swagger-ui-py` package (Swagger UI 5.x, which renders OpenAPI 3.1 as Litestar writes
it; `swagger-ui-bundle` still ships 4.15, which refuses 3.1 documents), so `pip install .` is all it takes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Router
from litestar.datastructures import CacheControlHeader
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, Operation, SecurityScheme
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router

SCHEMA_PATH = "/schema"
ASSETS_PATH = f"{SCHEMA_PATH}/assets"
# The asset URLs do not change with the package version, so a day keeps upgrades visible by tomorrow.
ASSETS_MAX_AGE = 24 * 3600


def swagger_ui_directory() -> Path:
    """Where the installed Swagger UI files are (`swagger-ui-bundle.js`, `swagger-ui.css`, ...)."""
    return Path(str(resources.files("swagger_ui") / "static"))


def openapi_config(version: str) -> OpenAPIConfig:
    """`/schema` (and `/schema/swagger`): Swagger UI on local files; `/schema/openapi.json`: the document."""
    swagger = SwaggerRenderPlugin(
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        # Litestar's default icon is on a CDN too.
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
    )
    return OpenAPIConfig(
        title="DPA service",
        version=version,
        path=SCHEMA_PATH,
        render_plugins=[swagger],
        components=Components(
            security_schemes={"apiKey": SecurityScheme(type="http", scheme="bearer", description="API key")}
        ),
        security=[{"apiKey": []}],
        # Each handler's docstring is its operation's description: the API documentation is written once.
        use_handler_docstrings=True,
    )


def openapi_assets_router() -> Router:
    """`/schema/assets/...`: Swagger UI's files, public (the UI loads them before anyone has a key)."""
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[swagger_ui_directory()],
        name="openapi-assets",
        cache_control=CacheControlHeader(public=True, max_age=ASSETS_MAX_AGE),
        opt={"exclude_from_auth": True},
        include_in_schema=False,
    )


# --- Problem responses, documented for every operation in one place -------------------------------------------


class FieldProblem(msgspec.Struct):
    field: str
    message: str


class Problem(msgspec.Struct, kw_only=True):
    """RFC 9457 problem details, as http.problems writes them (`errors` on 400 and 422)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    correlation_id: str
    errors: list[FieldProblem] | msgspec.UnsetType = msgspec.UNSET


PROBLEM_DESCRIPTIONS = {
    400: "The body is not JSON this service can read (malformed, or nested too deep)",
    401: "No API key, or one that is not valid",
    403: "The caller's role may not do this",
    404: "Not found (another tenant's object is not found either)",
    409: "The object's state does not allow this, or a concurrent request holds the same Idempotency-Key",
    413: "The body is larger than the service accepts",
    422: "Validation failed: `errors` names each field (a dotted path from the body root, or the parameter)",
    429: "Too many requests from this address: see Retry-After",
    503: "The document workers are unavailable; try again (Retry-After)",
}
# Handler parameters that are not the caller's to send (framework values and dependencies are left out too).
_RESERVED = {"request", "state", "scope", "socket", "headers", "cookies", "query", "body", "self"}
_BODY_METHODS = {"POST", "PUT", "PATCH"}
_RENDERS = re.compile(r"/(?:document|preview|bundle|diff)$|/countersign$|/signature-requests$")


def _problem(status: int) -> ResponseSpec:
    return ResponseSpec(
        data_container=Problem,
        generate_examples=False,
        description=PROBLEM_DESCRIPTIONS[status],
        media_type="application/problem+json",
    )


def problem_statuses(handler: HTTPRouteHandler, path: str, *, public: bool, rate_limited: bool) -> set[int]:
    """The problem statuses an operation can answer, from what it takes: a body, parameters, a key."""
    dependencies = set(handler.resolve_dependencies())
    parameters = set(handler.parsed_fn_signature.parameters) - dependencies - _RESERVED
    takes_body = "data" in parameters or bool(_BODY_METHODS & set(handler.http_methods))
    statuses = {404} if "{" in path else set()
    if takes_body:
        statuses |= {400, 413, 422}
    if parameters - {"data"} or "{" in path:
        statuses |= {400, 422}  # a parameter that does not parse (Litestar's 400 for it is our 422 problem)
    if not public:
        statuses |= {401, 403, 404}
    if handler.http_methods - {"GET", "HEAD"}:
        statuses.add(409)
    if _RENDERS.search(path):
        statuses |= {409, 503}
    if rate_limited:
        statuses.add(429)
    return statuses


class PageOperation(Operation):
    """An operation that also answers a browser with an HTML page (`/sign/{token}`): every response may be
    `text/html` besides what the handler declares."""

    def to_schema(self) -> dict[str, Any]:
        schema = super().to_schema()
        for response in schema.get("responses", {}).values():
            response.setdefault("content", {}).setdefault("text/html", {"schema": {"type": "string"}})
        return schema


def document_problems(
    app: Litestar,
    *,
    public: Callable[[str], bool],
    rate_limited: Callable[[str], bool],
    pages: Callable[[str], bool] = lambda _path: False,
) -> None:
    """Add the problem+json responses each operation can give to its OpenAPI document (before it is built), so
    clients and schemathesis' conformance checks see every status and content type; a handler's own `responses`
    win. Operations on `pages` paths may also answer text/html."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            path = route.path_format or "/"
            exempt = bool(handler.opt.get("exclude_from_auth")) or public(path)
            statuses = problem_statuses(handler, path, public=exempt, rate_limited=rate_limited(path))
            handler.responses = {**{s: _problem(s) for s in sorted(statuses)}, **(handler.responses or {})}
            if pages(path):
                handler.operation_class = PageOperation
