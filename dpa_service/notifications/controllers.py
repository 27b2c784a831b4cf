"""A Subscriber's webhook endpoints, their delivery log, and replay of dead-lettered deliveries."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody

from dpa_service.core.identity import Principal
from dpa_service.http.auth import subscriber_admin
from dpa_service.http.deps import ActorDep, AppSecretDep, DbDep, PrincipalDep, SettingsDep
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from dpa_service.notifications import services
from dpa_service.notifications.models import (
    WebhookDeliveryPublic,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointPublic,
)

EndpointId = FromPath[uuid.UUID]


class WebhookEndpointsController(Controller):
    path = "/api/v1/webhook-endpoints"
    tags = ["Webhooks"]
    guards = [subscriber_admin]

    @post("/", operation_id="createWebhookEndpoint", responses=created(WebhookEndpointCreated))
    async def create(
        self,
        data: JSONBody[WebhookEndpointCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
        settings: SettingsDep,
        app_secret: AppSecretDep,
    ) -> Response[bytes]:
        """A webhook endpoint (`url`, `events`); the signing `secret` is shown once. Deliveries carry
        `DPA-Signature: t=<unix>,v1=<hex hmac-sha256(secret, "<t>.<body>")>`; private addresses are refused."""
        await services.check_endpoint(data, allow_private=settings.webhook_allow_private)
        work = partial(services.create_endpoint, db, actor, request.user, data, app_secret)
        return await create_once(db, request, request.user, work)

    @get("/", operation_id="listWebhookEndpoints")
    async def list_endpoints(
        self, principal: PrincipalDep, db: DbDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Page[WebhookEndpointPublic]:
        """The tenant's endpoints (deleted ones are gone)."""
        return await services.list_endpoints(db, principal, cursor=cursor, limit=limit)

    @get("/{endpoint_id:uuid}", operation_id="getWebhookEndpoint")
    async def get_endpoint(self, endpoint_id: EndpointId, principal: PrincipalDep, db: DbDep) -> WebhookEndpointPublic:
        """One endpoint (never its secret)."""
        return await services.get_endpoint(db, principal, endpoint_id)

    @delete("/{endpoint_id:uuid}", operation_id="deleteWebhookEndpoint", status_code=204)
    async def delete_endpoint(
        self, endpoint_id: EndpointId, principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> None:
        """Delete an endpoint: nothing more is sent to it, and its pending deliveries close."""
        await services.delete_endpoint(db, actor, principal, endpoint_id)

    @get("/{endpoint_id:uuid}/deliveries", operation_id="listWebhookDeliveries")
    async def deliveries(
        self,
        endpoint_id: EndpointId,
        principal: PrincipalDep,
        db: DbDep,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[WebhookDeliveryPublic]:
        """The endpoint's delivery log: status, attempts, next attempt, last status code and error."""
        return await services.list_deliveries(db, principal, endpoint_id, cursor=cursor, limit=limit)


class WebhookDeliveriesController(Controller):
    path = "/api/v1/webhook-deliveries"
    tags = ["Webhooks"]
    guards = [subscriber_admin]

    @post("/{delivery_id:uuid}/replay", operation_id="replayWebhookDelivery", status_code=200)
    async def replay(
        self, delivery_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> WebhookDeliveryPublic:
        """Replay a dead-lettered delivery (anything else is 409)."""
        return await services.replay(db, actor, principal, delivery_id)
