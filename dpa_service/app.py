"""create_app(): the composition root. Every piece of wiring is one small step below; nothing else reads settings
to decide what runs."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import re
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from litestar import Litestar, Response, get
from litestar.config.app import AppConfig
from litestar.datastructures import CacheControlHeader, State
from litestar.middleware.base import DefineMiddleware
from litestar.static_files import create_static_files_router

from dpa_service import __version__, logs, metrics, reactions
from dpa_service.agreements import deferred_execution, docusign, docusign_connect, prerender, signing
from dpa_service.agreements.app_pages import SubscriberAgreementPages
from dpa_service.agreements.controllers import AgreementsController, DocumentsController, DocuSignConnectController
from dpa_service.agreements.pages import SigningPages
from dpa_service.agreements.staff_pages import StaffAgreementPages
from dpa_service.agreements.verify_pages import VerifyPages
from dpa_service.audit.anchoring import checkpoint_chains, signer_for_seal
from dpa_service.audit.checkpoint_files import CheckpointFiles
from dpa_service.audit.controllers import AuditController
from dpa_service.campaigns import pages as campaign_pages
from dpa_service.campaigns.controllers import CampaignDeclineController, CampaignsController
from dpa_service.contracts import services as contracts
from dpa_service.contracts.controllers import ContractsController
from dpa_service.contracts.pages import ContractPages, StaffContractPages
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from dpa_service.core.mailer import Mailer
from dpa_service.core.registry import processor
from dpa_service.core.secrets import load_app_secret
from dpa_service.core.settings import Settings, get_settings
from dpa_service.documents.renderer import Renderer, document_pool
from dpa_service.documents.seal import Seal, SealConfig
from dpa_service.documents.shared_cache import shared_cache
from dpa_service.http.auth import ApiKeyAuthenticationMiddleware
from dpa_service.http.body_limits import json_body_limits_middleware
from dpa_service.http.deps import DbDep, dependencies
from dpa_service.http.idempotency import purge_expired
from dpa_service.http.openapi import document_problems, openapi_assets_router, openapi_config
from dpa_service.http.problems import exception_handlers, request_id_middleware
from dpa_service.http.proxies import parse_networks, trusted_proxy_middleware
from dpa_service.http.rate_limits import LIMITED_PATHS, rate_limit_middleware, rate_limit_stores
from dpa_service.notifications.controllers import WebhookDeliveriesController, WebhookEndpointsController
from dpa_service.notifications.pages import WebhookPages
from dpa_service.notifications.queue import run_forever
from dpa_service.obligations import inquiries_notices
from dpa_service.obligations.assistance_controllers import AssistanceRequestsController
from dpa_service.obligations.assistance_pages import AssistancePages, AssistanceStaffPages
from dpa_service.obligations.breaches_controllers import BreachNoticesController
from dpa_service.obligations.breaches_pages import BreachNoticePages, BreachNoticeStaffPages
from dpa_service.obligations.exit_controllers import DeletionCertificatesController, ExitController
from dpa_service.obligations.exit_pages import ExitPages, ExitStaffPages
from dpa_service.obligations.inquiries_controllers import InquiriesController
from dpa_service.obligations.inquiries_pages import InquiryPages, StaffInquiryPages
from dpa_service.obligations.ledger_controllers import ObligationsController
from dpa_service.obligations.ledger_pages import LedgerPages, StaffLedgerPages
from dpa_service.obligations.records_controllers import RecordsOfProcessingController
from dpa_service.obligations.records_pages import RecordPages, StaffRecordPages
from dpa_service.subprocessors.controllers import (
    ObjectionsController,
    SubprocessorChangesController,
    SubprocessorsController,
    TenantSubprocessorsController,
)
from dpa_service.subprocessors.deemed import record_deemed_acceptances
from dpa_service.subprocessors.pages import SubprocessorPages, SubprocessorStaffPages
from dpa_service.subprocessors.registry_sync import ensure_seeded
from dpa_service.template_versions.controllers import TemplatesController
from dpa_service.template_versions.pages import TemplatePages
from dpa_service.template_versions.services import import_shipped
from dpa_service.tenants.controllers import OwnTenantController, TenantsController
from dpa_service.tenants.pages import TenantPages
from dpa_service.tenants.profile_pages import ProfilePages
from dpa_service.transfers.controllers import (
    TransferMechanismsController,
    TransferNoticesController,
    TransfersController,
)
from dpa_service.transfers.pages import MechanismPages, TransferPages
from dpa_service.users.account_pages import AccountPages, StaffKeyPages
from dpa_service.users.controllers import ApiKeyController, IdentityController
from dpa_service.users.keys import authenticate
from dpa_service.users.pages import SignInPages
from dpa_service.users.signin import session_principal
from dpa_service.users.verify_pages import EmailVerificationPage
from dpa_service.web.auth import SignInRequired, session_principal_middleware
from dpa_service.web.errors import problem_page, sign_in_redirect
from dpa_service.web.panels import AGREEMENT, DASHBOARD, panels
from dpa_service.web.security import csrf_config, security_headers_middleware
from dpa_service.web.sessions import session_config, session_stores
from dpa_service.web.templating import template_config

logger = logging.getLogger("dpa_service.app")

# Paths that take no API key: health, metrics (its own rule: metrics.py), the OpenAPI document, signing links and
# webhooks (which carry their own secret), document verification (whoever holds the PDF may check it), and the web
# pages (a session, see web/).
PUBLIC_PATHS = ["^/health$", "^/metrics$", "^/schema", "^/sign/", "^/webhooks/", "^/api/v1/documents/verify$"]
PAGE_PATHS = ["^/$", "^/login", "^/logout$", "^/app(/|$)", "^/staff(/|$)", "^/verify$", "^/verify-email/", "^/static/"]
# Packages whose `templates/` directory pages render from.
PAGE_TEMPLATE_PACKAGES = ["dpa_service.web", *(f"dpa_service.{d}" for d in (
    "agreements", "subprocessors", "transfers", "obligations", "notifications", "template_versions", "tenants", "users",
    "contracts",
    "campaigns",
))]  # fmt: skip

ROUTES: list[Any] = [
    IdentityController,
    ApiKeyController,
    TenantsController,
    OwnTenantController,
    AuditController,
    TemplatesController,
    AgreementsController,
    DocumentsController,
    DocuSignConnectController,
    SigningPages,
    SignInPages,
    EmailVerificationPage,
    TransferMechanismsController,
    TransfersController,
    TransferNoticesController,
    BreachNoticesController,
    SubprocessorsController,
    SubprocessorChangesController,
    ObjectionsController,
    TenantSubprocessorsController,
    WebhookEndpointsController,
    WebhookDeliveriesController,
    SubprocessorPages,
    SubprocessorStaffPages,
    TransferPages,
    MechanismPages,
    BreachNoticePages,
    BreachNoticeStaffPages,
    SubscriberAgreementPages,
    TemplatePages,
    StaffAgreementPages,
    TenantPages,
    ProfilePages,
    AccountPages,
    StaffKeyPages,
    WebhookPages,
    VerifyPages,
    InquiriesController,
    InquiryPages,
    StaffInquiryPages,
    ExitController,
    DeletionCertificatesController,
    ExitPages,
    ExitStaffPages,
    AssistanceRequestsController,
    AssistancePages,
    AssistanceStaffPages,
    RecordsOfProcessingController,
    RecordPages,
    StaffRecordPages,
    ObligationsController,
    LedgerPages,
    StaffLedgerPages,
    ContractsController,
    ContractPages,
    StaffContractPages,
    CampaignsController,
    CampaignDeclineController,
    campaign_pages.StaffCampaignPages,
    campaign_pages.CampaignDeclinePages,
]


@get("/health", tags=["Operations"], operation_id="health", exclude_from_auth=True, security=[])
async def health(db: DbDep) -> Response[dict[str, str]]:
    """Liveness and the database: `{status, database}`, 503 when the database is unreachable."""
    database_ok = await db.ping()
    body = {"status": "ok" if database_ok else "degraded", "database": "ok" if database_ok else "unreachable"}
    return Response(body, status_code=200 if database_ok else 503)


@get("/favicon.ico", exclude_from_auth=True, include_in_schema=False, status_code=204)
async def favicon() -> Response[None]:
    """No icon, said plainly: every browser asks for one, and a 404 is an error in its console on every page (the
    signing page's old policy, img-src 'none', had hidden the request)."""
    return Response(None, status_code=204, headers={"Cache-Control": "public, max-age=86400"})


async def _housekeeping(
    db: Database,
    checkpoints: CheckpointFiles,
    seal: Seal,
    every_seconds: float = 600,
    account: docusign.DocuSign | None = None,
) -> None:
    """Now and then: close expired signing links, record deemed acceptances of sub-processor changes whose
    notice ended (signing and reads check the clock themselves, so lateness is harmless), remind Subscribers of
    inquiries coming due and tell them of overdue ones (each once), forget idempotency records past their
    24 hours, announce contracts whose DPA status a date changed (once a day), ask DocuSign about envelopes no
    Connect message reached (at most every 15 minutes each), and checkpoint the audit chains that moved (signed,
    outside the database; the first round ran before the server took requests)."""
    announced_on = None
    while True:
        try:
            await signing.expire_overdue(db)
            if announced_on != utcnow().date():  # a day's dates arrive once a day
                await contracts.announce_dated_changes(db)
                announced_on = utcnow().date()
            await record_deemed_acceptances(db)
            await inquiries_notices.send_due_notices(db)
            await purge_expired(db)
            if account is not None:
                await docusign_connect.poll_silent(db, account)
        except Exception:  # the next round retries; the server must not die of it
            logger.exception("housekeeping failed")
        await asyncio.sleep(every_seconds)
        await _checkpoint(db, checkpoints, seal)


async def _checkpoint(db: Database, checkpoints: CheckpointFiles, seal: Seal) -> None:
    """A checkpoint round on its own: a failing step elsewhere must not leave the chains unanchored, nor this one
    stop the server (the next round retries)."""
    try:
        await checkpoint_chains(db, checkpoints, signer_for_seal(seal.config))
    except Exception:
        logger.exception("audit checkpoints failed")


async def _first_start(db: Database) -> None:
    """A fresh service loads the sub-processor list and offers the shipped templates to legal as drafts."""
    try:
        await ensure_seeded(db)
        await import_shipped(db)
    except Exception:  # an unreachable or unmigrated database must not stop /health from saying so
        logger.exception("could not load the reference data on start")


async def _open_state(app: Litestar, settings: Settings) -> None:
    state = app.state
    state.db = Database(settings.database)
    state.authenticate = functools.partial(authenticate, state.db)
    state.renderer = Renderer(
        document_pool(settings.render_processes),
        timeout=settings.render_timeout_seconds,
        shared=shared_cache(settings.redis_url, app.state.secret),
    )
    state.mailer = Mailer(settings)
    state.seal = Seal(SealConfig.from_settings(settings, organization=processor()["legal_name"]), state.renderer)
    state.problem_page = problem_page
    state.session_principal = functools.partial(session_principal, state.db)
    try:
        await state.renderer.start()  # now rather than on the first request; it retries on the next render
    except Exception:
        logger.exception("could not start the document workers")
    await state.seal.load()
    deferred_execution.install(state.renderer, state.seal)  # countersignatures queued with `Prefer: respond-async`
    prerender.install(state.renderer)  # drafts rendered as they become ready for signature
    state.docusign = None
    if settings.docusign is not None:  # DocuSign offered: its outbox jobs run with this process's account
        account = docusign.DocuSign.configure(
            settings.docusign, settings.public_base_url or "http://127.0.0.1:8000", settings.signing_link_days
        )
        account.renderer, account.seal = state.renderer, state.seal
        docusign.install(account)
        state.docusign = account


def _lifespan() -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        settings: Settings = app.state.settings  # create_app put it there; the one source for what runs
        await _open_state(app, settings)
        await _first_start(app.state.db)
        checkpoints = CheckpointFiles(settings.checkpoints_path)  # one per process: it remembers the last round
        # Anchor the chains as they are before serving (a restart after tampering finds the heads behind the
        # checkpoints and says so), and so a round never races the first requests.
        await _checkpoint(app.state.db, checkpoints, app.state.seal)
        # Everything loaded so far lives as long as the process: keep the collector from walking it on every
        # full collection (a pause every request would feel).
        gc.freeze()
        # Database calls and PDF transfers run in threads; a thread holding the GIL makes the event loop wait up to
        # the switch interval (5 ms by default) before it may answer the next request.
        sys.setswitchinterval(0.001)
        housekeeping = _housekeeping(app.state.db, checkpoints, app.state.seal, account=app.state.docusign)
        tasks = [asyncio.create_task(housekeeping)]
        if settings.run_worker:  # the in-process worker; `dpa worker` runs the same loop on its own
            deliver = run_forever(
                app.state.db,
                app.state.mailer,
                app.state.secret,
                allow_private=settings.webhook_allow_private,
                redis_url=settings.redis_url,
                queue_name=settings.queue_name,
            )
            tasks.append(asyncio.create_task(deliver))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                # Let each finish unwinding its transaction before the engine goes away.
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.db.dispose()

    return lifespan


def _middleware(settings: Settings) -> list[Any]:
    # The client's address first (everything after reads it); the rate limit runs before authentication, so
    # refused requests never reach the database.
    proxies = trusted_proxy_middleware(parse_networks(settings.trusted_proxies))
    return [
        *([proxies] if proxies else []),
        request_id_middleware,
        metrics.prometheus_config().middleware,  # outside the rest, so a refused request is timed and counted too
        security_headers_middleware(production=settings.environment == "production"),
        rate_limit_middleware(settings.rate_limit_per_minute),
        session_config(settings).middleware,
        session_principal_middleware,
        DefineMiddleware(ApiKeyAuthenticationMiddleware, exclude=PUBLIC_PATHS + PAGE_PATHS),
        json_body_limits_middleware,  # after authentication: nobody without a key makes us buffer a body
    ]


def _static_files() -> Any:
    directory = resources.files("dpa_service.web") / "static"
    return create_static_files_router(path="/static", directories=[str(directory)], include_in_schema=False,
                                      cache_control=CacheControlHeader(max_age=3600))  # fmt: skip


def _install_panels() -> None:
    """What domains add to pages other domains own (web.panels): a campaign's new DPA on the Subscriber's dashboard
    and its reason and decline form on the agreement's page."""
    panels.add(DASHBOARD, campaign_pages.dashboard_panel)
    panels.add(AGREEMENT, campaign_pages.agreement_panel)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    logs.configure(settings)
    reactions.install()
    _install_panels()
    secret = load_app_secret(settings)
    config = AppConfig(
        route_handlers=[health, favicon, metrics.MetricsController, *ROUTES, openapi_assets_router(), _static_files()],
        dependencies=dependencies,
        exception_handlers={**exception_handlers, SignInRequired: sign_in_redirect},  # type: ignore[dict-item]
        middleware=_middleware(settings),
        openapi_config=openapi_config(__version__),
        csrf_config=csrf_config(settings, secret),
        template_config=template_config(PAGE_TEMPLATE_PACKAGES),
        stores={**rate_limit_stores(settings.redis_url), **session_stores(settings)},
        lifespan=[_lifespan()],
        state=State({"settings": settings, "secret": secret}),
        debug=False,
        # Large enough for a signed PDF sent to /documents/verify, small enough to refuse abuse.
        request_max_body_size=25 * 1024 * 1024,
    )
    app = Litestar.from_config(config)
    document_problems(
        app,
        public=lambda path: any(re.match(pattern, path) for pattern in PUBLIC_PATHS + PAGE_PATHS),
        rate_limited=lambda path: LIMITED_PATHS.match(path) is not None,
        # The signing page (its JSON face shares the operation) and the e-mail confirmation page answer HTML too.
        pages=lambda path: path in ("/sign/{token}", "/verify-email/{token}"),
    )
    return app


__all__ = ["PUBLIC_PATHS", "create_app"]
