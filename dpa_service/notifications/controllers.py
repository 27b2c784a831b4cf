"""A Subscriber's webhook endpoints, their delivery log, and replay of dead-lettered deliveries."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody
from sqlalchemy import select, update

from dpa_service.audit import services as audit
from dpa_service.core.clock import utcnow
from dpa_service.core.exceptions import Conflict, FieldError, InvalidInput, NotFound
from dpa_service.core.identity import Principal
from dpa_service.http.auth import subscriber_admin
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_id_cursor, page_of
from dpa_service.notifications.models import (
    EVENT_NAMES,
    DeliveryStatus,
    WebhookDelivery,
    WebhookDeliveryPublic,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointPublic,
)
from dpa_service.notifications.webhooks import UnsafeUrl, check_url, new_secret
from dpa_service.notifications.worker import RETRY_WINDOW


async def _endpoint(session: Any, principal: Principal, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.tenant_id != principal.tenant_id or endpoint.deleted_at is not None:
        raise NotFound("Webhook endpoint not found.")
    return endpoint


class WebhookEndpointsController(Controller):
    path = "/api/v1/webhook-endpoints"
    tags = ["Webhooks"]
    guards = [subscriber_admin]

    @post("/", operation_id="createWebhookEndpoint", responses=created(WebhookEndpointCreated))
    async def create(
        self, data: JSONBody[WebhookEndpointCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        unknown = [e for e in data.events if e not in EVENT_NAMES]
        if unknown:
            raise InvalidInput(
                "Unknown event names.",
                [FieldError("events", f"unknown: {', '.join(unknown)}; use {', '.join(sorted(EVENT_NAMES))}")],
            )
        try:
            await check_url(data.url, allow_private=request.app.state.settings.webhook_allow_private)
        except UnsafeUrl as exc:
            raise InvalidInput.field("url", str(exc)) from exc
        principal: Principal = request.user

        async def work(session: Any) -> WebhookEndpointCreated:
            secret, sealed = new_secret(request.app.state.secret)
            endpoint = WebhookEndpoint(
                tenant_id=principal.tenant_id,
                url=data.url,
                events=sorted(set(data.events)),
                secret_sealed=sealed,
                created_by=principal.user_id,
            )
            session.add(endpoint)
            await session.flush()
            await audit.record(
                session,
                actor,
                "webhook_endpoint.created",
                "webhook_endpoint",
                endpoint.id,
                tenant_id=principal.tenant_id,
                data={"url": endpoint.url, "events": endpoint.events},
            )
            return WebhookEndpointCreated(
                id=endpoint.id, url=endpoint.url, events=endpoint.events, created_at=endpoint.created_at, secret=secret
            )

        return await create_once(db, request, principal, work)

    @get("/", operation_id="listWebhookEndpoints")
    async def list_endpoints(
        self, principal: PrincipalDep, db: DbDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Page[WebhookEndpointPublic]:
        query = (
            select(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == principal.tenant_id, WebhookEndpoint.deleted_at.is_(None))
            .order_by(WebhookEndpoint.id)
        )
        if (after := decode_id_cursor(cursor)) is not None:
            query = query.where(WebhookEndpoint.id > after)
        async with db.transaction(principal.scope, write=False) as session:
            rows = (await session.execute(query.limit(limit + 1))).scalars().all()
        return page_of(
            rows, limit, lambda e: WebhookEndpointPublic.model_validate(e, from_attributes=True), lambda e: str(e.id)
        )

    @get("/{endpoint_id:uuid}", operation_id="getWebhookEndpoint")
    async def get_endpoint(
        self, endpoint_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep
    ) -> WebhookEndpointPublic:
        async with db.transaction(principal.scope, write=False) as session:
            return WebhookEndpointPublic.model_validate(
                await _endpoint(session, principal, endpoint_id), from_attributes=True
            )

    @delete("/{endpoint_id:uuid}", operation_id="deleteWebhookEndpoint", status_code=204)
    async def delete_endpoint(
        self, endpoint_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> None:
        async with db.transaction(principal.scope) as session:
            endpoint = await _endpoint(session, principal, endpoint_id)
            endpoint.deleted_at = utcnow()
            # Nothing more goes to a deleted endpoint: its pending deliveries close now (kept in the log).
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == DeliveryStatus.PENDING)
                .values(status=DeliveryStatus.DEAD.value, last_error="endpoint deleted")
            )
            await audit.record(
                session,
                actor,
                "webhook_endpoint.deleted",
                "webhook_endpoint",
                endpoint.id,
                tenant_id=principal.tenant_id,
                data={"url": endpoint.url},
            )

    @get("/{endpoint_id:uuid}/deliveries", operation_id="listWebhookDeliveries")
    async def deliveries(
        self,
        endpoint_id: FromPath[uuid.UUID],
        principal: PrincipalDep,
        db: DbDep,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[WebhookDeliveryPublic]:
        async with db.transaction(principal.scope, write=False) as session:
            await _endpoint(session, principal, endpoint_id)
            query = (
                select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id).order_by(WebhookDelivery.id)
            )
            if (after := decode_id_cursor(cursor)) is not None:
                query = query.where(WebhookDelivery.id > after)
            rows = (await session.execute(query.limit(limit + 1))).scalars().all()
        return page_of(
            rows, limit, lambda d: WebhookDeliveryPublic.model_validate(d, from_attributes=True), lambda d: str(d.id)
        )


class WebhookDeliveriesController(Controller):
    path = "/api/v1/webhook-deliveries"
    tags = ["Webhooks"]
    guards = [subscriber_admin]

    @post("/{delivery_id:uuid}/replay", operation_id="replayWebhookDelivery", status_code=200)
    async def replay(
        self, delivery_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> WebhookDeliveryPublic:
        async with db.transaction(principal.scope) as session:
            delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
            if delivery is None or delivery.tenant_id != principal.tenant_id:
                raise NotFound("Delivery not found.")
            if delivery.status != DeliveryStatus.DEAD:
                raise Conflict("Only a dead-lettered delivery can be replayed.")
            now = utcnow()
            delivery.status, delivery.next_attempt_at, delivery.retry_until = (
                DeliveryStatus.PENDING.value,
                now,
                now + RETRY_WINDOW,
            )
            await audit.record(
                session,
                actor,
                "webhook_delivery.replayed",
                "webhook_delivery",
                delivery.id,
                tenant_id=principal.tenant_id,
                data={"event": delivery.event},
            )
            return WebhookDeliveryPublic.model_validate(delivery, from_attributes=True)
