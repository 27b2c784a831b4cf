"""The OpenAPI document and its Swagger UI at `/schema`, with the UI's files served from here, not a CDN.

The files come from the `swagger-ui-py` package (Swagger UI 5.x, which renders OpenAPI 3.1 as Litestar writes
it; `swagger-ui-bundle` still ships 4.15, which refuses 3.1 documents), so `pip install .` is all it takes.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
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
