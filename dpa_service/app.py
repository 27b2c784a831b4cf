"""create_app(): the whole wiring in small steps."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from litestar import Litestar, Response, get
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from dpa_service import __version__
from dpa_service.agreements.controllers import AgreementsController, DocumentsController
from dpa_service.agreements.pages import SigningPages
from dpa_service.agreements.services import expire_overdue
from dpa_service.audit.controllers import AuditController
from dpa_service.core.db import Database, Scope
from dpa_service.core.mailer import Mailer
from dpa_service.core.registry import processor
from dpa_service.core.secrets import load_app_secret
from dpa_service.core.settings import Settings, get_settings
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.seal import Seal, SealConfig
from dpa_service.http.auth import ApiKeyAuthenticationMiddleware
from dpa_service.http.deps import dependencies
from dpa_service.http.idempotency import purge_expired
from dpa_service.http.problems import exception_handlers, request_id_middleware
from dpa_service.notifications.controllers import WebhookDeliveriesController, WebhookEndpointsController
from dpa_service.notifications.queue import run_forever
from dpa_service.subprocessors.controllers import (
    ObjectionsController,
    SubprocessorChangesController,
    SubprocessorsController,
    TenantSubprocessorsController,
)
from dpa_service.subprocessors.services import ensure_seeded, record_deemed_acceptances
from dpa_service.template_versions.controllers import TemplatesController
from dpa_service.tenants.controllers import OwnTenantController, TenantsController
from dpa_service.transfers.controllers import (
    TransferMechanismsController,
    TransferNoticesController,
    TransfersController,
)
from dpa_service.users.controllers import ApiKeyController, IdentityController
from dpa_service.users.keys import authenticate

# Paths that do not take an API key: health, the OpenAPI document, and (later) signing links and webhooks,
# which carry their own secret.
PUBLIC_PATHS = ["^/health$", "^/schema", "^/sign/", "^/webhooks/"]


@get("/health", tags=["Operations"], operation_id="health", exclude_from_auth=True)
async def health(state: State) -> Response[dict[str, str]]:
    database_ok = await state.db.ping()
    body = {"status": "ok" if database_ok else "degraded", "database": "ok" if database_ok else "unreachable"}
    return Response(body, status_code=200 if database_ok else 503)


async def _housekeeping(db: Database, every_seconds: float = 600) -> None:
    """Now and then: close expired signing links, record deemed acceptances of sub-processor changes whose
    notice ended (signing and reads check the clock themselves, so lateness is harmless) and forget idempotency
    records past their 24 hours."""
    while True:
        try:
            await expire_overdue(db)
            await record_deemed_acceptances(db)
            async with db.transaction(Scope.system()) as session:
                await purge_expired(session)
        except Exception:  # the next round retries; the server must not die of it
            logging.getLogger("dpa_service.app").exception("housekeeping failed")
        await asyncio.sleep(every_seconds)


async def _deliver_outbox(app: Litestar, settings: Settings) -> None:
    """The in-process worker (`dpa worker` runs the same loop on its own); on Redis when REDIS_URL is set."""
    if not settings.run_worker:
        return
    await run_forever(
        app.state.db,
        app.state.mailer,
        app.state.secret,
        allow_private=settings.webhook_allow_private,
        redis_url=settings.redis_url,
        queue_name=settings.queue_name,
    )


def _lifespan(settings: Settings):
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.db = Database(settings.database)
        try:
            await ensure_seeded(app.state.db)
        except Exception:  # an unreachable or unmigrated database must not stop /health from saying so
            logging.getLogger("dpa_service.app").exception("could not load the sub-processor list")
        app.state.secret = load_app_secret(settings)
        app.state.authenticate = functools.partial(authenticate, app.state.db)
        app.state.renderer = Renderer()
        app.state.mailer = Mailer(settings)
        app.state.seal = Seal(SealConfig.from_settings(settings, organization=processor()["legal_name"]))
        await anyio.to_thread.run_sync(app.state.seal.load_certificate)
        sweeper = asyncio.create_task(_housekeeping(app.state.db))
        deliverer = asyncio.create_task(_deliver_outbox(app, settings))
        try:
            yield
        finally:
            for task in (sweeper, deliverer):
                task.cancel()
                # Let each finish unwinding its transaction before the engine goes away.
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.db.dispose()

    return lifespan


def _openapi() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="DPA service",
        version=__version__,
        path="/schema",
        render_plugins=[SwaggerRenderPlugin()],
        components=Components(
            security_schemes={"apiKey": SecurityScheme(type="http", scheme="bearer", description="API key")}
        ),
        security=[{"apiKey": []}],
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level)
    config = AppConfig(
        route_handlers=[
            health,
            IdentityController,
            ApiKeyController,
            TenantsController,
            OwnTenantController,
            AuditController,
            TemplatesController,
            AgreementsController,
            DocumentsController,
            SigningPages,
            TransferMechanismsController,
            TransfersController,
            TransferNoticesController,
            SubprocessorsController,
            SubprocessorChangesController,
            ObjectionsController,
            TenantSubprocessorsController,
            WebhookEndpointsController,
            WebhookDeliveriesController,
        ],
        dependencies=dependencies,
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        middleware=[
            request_id_middleware,
            DefineMiddleware(ApiKeyAuthenticationMiddleware, exclude=PUBLIC_PATHS),
        ],
        openapi_config=_openapi(),
        lifespan=[_lifespan(settings)],
        state=State({"settings": settings}),
        # Signing links are opened from e-mail: form posts carry no API key and need no CSRF token, since the
        # token in the URL is the only secret and is single-use.
        debug=False,
        # Large enough for a signed PDF sent to /documents/verify, small enough to refuse abuse.
        request_max_body_size=25 * 1024 * 1024,
    )
    return Litestar.from_config(config)
