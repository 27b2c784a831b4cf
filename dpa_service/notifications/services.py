"""A Subscriber's webhook endpoints, their delivery log, and replay of dead-lettered deliveries."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from dpa_service.core.exceptions import Conflict, FieldError, InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Principal
from dpa_service.http.pagination import Page, decode_id_cursor, page_of
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


async def _endpoint(session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.tenant_id != principal.tenant_id or endpoint.deleted_at is not None:
        raise NotFound("Webhook endpoint not found.")
    return endpoint


async def check_endpoint(data: WebhookEndpointCreate, *, allow_private: bool) -> None:
    """Known event names, and a URL that is http(s) and resolves to public addresses only (the SSRF guard)."""
    unknown = [e for e in data.events if e not in EVENT_NAMES]
    if unknown:
        raise InvalidInput(
            "Unknown event names.",
            [FieldError("events", f"unknown: {', '.join(unknown)}; use {', '.join(sorted(EVENT_NAMES))}")],
        )
    try:
        await check_url(data.url, allow_private=allow_private)
    except UnsafeUrl as exc:
        raise InvalidInput.field("url", str(exc)) from exc


async def create_endpoint(
    db: Database, actor: Actor, principal: Principal, data: WebhookEndpointCreate, app_secret: bytes
) -> WebhookEndpointCreated:
    """A new endpoint; its signing secret is shown this once and stored sealed under the service secret."""
    tenant_id = principal.tenant_id
    if tenant_id is None:  # the controller's subscriber_admin guard already keeps staff out
        raise PermissionDenied("Webhook endpoints are a Subscriber's.")
    async with db.transaction(principal.scope) as session:
        secret, sealed = new_secret(app_secret)
        endpoint = WebhookEndpoint(
            tenant_id=tenant_id,
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


def _endpoint_public(endpoint: WebhookEndpoint) -> WebhookEndpointPublic:
    return WebhookEndpointPublic.model_validate(endpoint, from_attributes=True)


async def list_endpoints(
    db: Database, principal: Principal, *, cursor: str | None, limit: int
) -> Page[WebhookEndpointPublic]:
    query = (
        select(WebhookEndpoint)
        .where(col(WebhookEndpoint.tenant_id) == principal.tenant_id, col(WebhookEndpoint.deleted_at).is_(None))
        .order_by(col(WebhookEndpoint.id))
    )
    if (after := decode_id_cursor(cursor)) is not None:
        query = query.where(col(WebhookEndpoint.id) > after)
    async with db.transaction(principal.scope, write=False) as session:
        rows = (await session.execute(query.limit(limit + 1))).scalars().all()
    return page_of(rows, limit, _endpoint_public, lambda e: str(e.id))


async def get_endpoint(db: Database, principal: Principal, endpoint_id: uuid.UUID) -> WebhookEndpointPublic:
    async with db.transaction(principal.scope, write=False) as session:
        return _endpoint_public(await _endpoint(session, principal, endpoint_id))


async def delete_endpoint(db: Database, actor: Actor, principal: Principal, endpoint_id: uuid.UUID) -> None:
    """Nothing more goes to a deleted endpoint: its pending deliveries close now (kept in the log)."""
    async with db.transaction(principal.scope) as session:
        endpoint = await _endpoint(session, principal, endpoint_id)
        endpoint.deleted_at = utcnow()
        await session.execute(
            update(WebhookDelivery)
            .where(
                col(WebhookDelivery.endpoint_id) == endpoint.id, col(WebhookDelivery.status) == DeliveryStatus.PENDING
            )
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


async def list_deliveries(
    db: Database, principal: Principal, endpoint_id: uuid.UUID, *, cursor: str | None, limit: int
) -> Page[WebhookDeliveryPublic]:
    query = (
        select(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint_id).order_by(col(WebhookDelivery.id))
    )
    if (after := decode_id_cursor(cursor)) is not None:
        query = query.where(col(WebhookDelivery.id) > after)
    async with db.transaction(principal.scope, write=False) as session:
        await _endpoint(session, principal, endpoint_id)
        rows = (await session.execute(query.limit(limit + 1))).scalars().all()
    return page_of(
        rows, limit, lambda d: WebhookDeliveryPublic.model_validate(d, from_attributes=True), lambda d: str(d.id)
    )


async def replay(db: Database, actor: Actor, principal: Principal, delivery_id: uuid.UUID) -> WebhookDeliveryPublic:
    """A dead-lettered delivery is tried again, with a fresh retry window."""
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
