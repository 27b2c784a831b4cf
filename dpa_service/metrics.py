"""Prometheus metrics at `/metrics`, through Litestar's Prometheus plugin.

* Requests: `dpa_http_requests_total` and the latency histogram `dpa_http_request_duration_seconds`, labelled by
  method, status and the route's path *template* (`/api/v1/agreements/{agreement_id:uuid}`), never the raw path,
  so ids cannot blow up the number of series.
* The render pool (this process's): workers, busy workers, jobs waiting for one.
* Delivery, from the database so that it covers every worker process: the outbox's undelivered messages and the
  oldest one's age, webhook and e-mail deliveries pending, retrying after a failure, and dead-lettered; read at
  scrape time in one statement with a short timeout. Attempts by outcome (`dpa_delivery_attempts_total`) are
  counted by the process that records them.

Nothing here names a tenant, a user or an id. Still, it says how busy the service is: with DPA_METRICS_TOKEN set,
a scraper sends it as a bearer token; without one, only loopback clients are answered (a scraper on the same host,
or a reverse proxy that does not forward /metrics). With `dpa serve --workers N`, set PROMETHEUS_MULTIPROC_DIR to
an empty directory so that a scrape adds up every process's counters (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from typing import Any

from litestar import Request, Response, get
from litestar._asgi.utils import wrap_in_exception_handler
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController, PrometheusMiddleware
from litestar.types import ASGIApp
from prometheus_client import Gauge

from dpa_service.core.clock import utcnow
from dpa_service.core.exceptions import AuthenticationError, PermissionDenied
from dpa_service.notifications.backlog import backlog

logger = logging.getLogger("dpa_service.metrics")

SCRAPE_DB_TIMEOUT = 3.0  # seconds for the backlog query, connection included
# Request latency buckets (seconds): fine-grained around the 500 ms p99 goal.
BUCKETS: list[str | float] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0]

RENDER_WORKERS = Gauge("dpa_render_pool_workers", "Render pool size (this process)", multiprocess_mode="livesum")
RENDER_BUSY = Gauge("dpa_render_pool_busy", "Render pool workers running a job", multiprocess_mode="livesum")
RENDER_QUEUE = Gauge("dpa_render_pool_queue", "Render jobs waiting for a free worker", multiprocess_mode="livesum")
# Read from the database: every process sees the same numbers, so the freshest one counts.
OUTBOX_BACKLOG = Gauge("dpa_outbox_backlog", "Outbox messages not yet fanned out", multiprocess_mode="mostrecent")
OUTBOX_OLDEST_AGE = Gauge(
    "dpa_outbox_oldest_age_seconds", "Age of the oldest undelivered outbox message (0: none)",
    multiprocess_mode="mostrecent",
)  # fmt: skip
DELIVERIES = Gauge(
    "dpa_deliveries",
    "Webhook and e-mail deliveries by state: pending, retrying (pending after a failed attempt), dead (dead letters)",
    ["kind", "state"],
    multiprocess_mode="mostrecent",
)
BACKLOG_UP = Gauge(
    "dpa_metrics_backlog_up", "1 when the last scrape could read the delivery backlog from the database",
    multiprocess_mode="mostrecent",
)  # fmt: skip


class RequestMetricsMiddleware(PrometheusMiddleware):
    """Litestar's, except for requests refused by a middleware further in (authentication's 401, CSRF's 403): those
    raise rather than answer, and the plugin would count them as a 200 that took no time. Here the exception
    becomes its response inside the measurement, through the app's own exception handlers, as Litestar does
    around every handler (litestar._asgi.utils: private, and tests/test_metrics.py checks the 401 is counted)."""

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(wrap_in_exception_handler(app), config)


def prometheus_config() -> PrometheusConfig:
    """The request metrics middleware: grouped by route template (`group_path`)."""
    return PrometheusConfig(
        app_name="dpa", prefix="dpa_http", group_path=True, buckets=BUCKETS, middleware_class=RequestMetricsMiddleware
    )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def metrics_access(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """The metrics token as a bearer token when one is configured; otherwise loopback clients only."""
    configured = connection.app.state.settings.metrics_token
    if configured is not None:
        scheme, _, given = connection.headers.get("authorization", "").partition(" ")
        expected = configured.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise AuthenticationError("Send the metrics token as 'Authorization: Bearer <DPA_METRICS_TOKEN>'.")
        return
    if not _loopback(connection.client.host if connection.client else ""):
        raise PermissionDenied("Metrics are served to loopback clients only, unless DPA_METRICS_TOKEN is set.")


async def refresh(state: Any) -> None:
    """Set the gauges that are read, not counted: the render pool's now, and the delivery backlog."""
    stats = state.renderer.pool.stats()
    RENDER_WORKERS.set(stats.size)
    RENDER_BUSY.set(stats.busy)
    RENDER_QUEUE.set(stats.queued)
    try:
        async with asyncio.timeout(SCRAPE_DB_TIMEOUT):
            now = await backlog(state.db)
    except Exception as exc:  # a slow or unreachable database must not fail the scrape: the gauge says so
        logger.warning("metrics: the delivery backlog could not be read: %s", exc)
        BACKLOG_UP.set(0)
        return
    BACKLOG_UP.set(1)
    OUTBOX_BACKLOG.set(now.outbox_pending)
    oldest = now.oldest_pending_at
    OUTBOX_OLDEST_AGE.set(max((utcnow() - oldest).total_seconds(), 0.0) if oldest else 0.0)
    for kind, states in now.deliveries.items():
        for name, count in states.items():
            DELIVERIES.labels(kind, name).set(count)


class MetricsController(PrometheusController):
    """Litestar's Prometheus exposition (multiprocess-aware), behind the access rule and with fresh gauges."""

    path = "/metrics"
    include_in_schema = False

    @get(guards=[metrics_access], exclude_from_auth=True, include_in_schema=False)
    async def get(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Prometheus text exposition of the service's metrics (loopback clients, or the metrics token)."""
        await refresh(request.app.state)
        response: Response[Any] = await PrometheusController.get.fn(self)
        return response
