"""A Subscriber's webhook endpoints as pages, for its owners and admins (a member gets 404, as for any page of
another role): the list and a form for a new one, one endpoint with its delivery log, delete, and replay of a
dead-lettered delivery. The same services as `/api/v1/webhook-endpoints` and `/api/v1/webhook-deliveries`.

A new endpoint's signing secret is shown once, on the POST's own answer (201, `Cache-Control: no-store`) rather
than after a redirect, so it is never kept in the session.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from dpa_service.core.exceptions import InvalidInput
from dpa_service.http.deps import ActorDep, AppSecretDep, DbDep, PrincipalDep, SettingsDep
from dpa_service.http.pagination import DEFAULT_LIMIT
from dpa_service.notifications import services
from dpa_service.notifications.models import EVENT_NAMES, WebhookEndpointCreate
from dpa_service.web.auth import subscriber_admin_pages
from dpa_service.web.validation import validated
from dpa_service.web.views import field_errors, form_data, next_page, one, redirect, render

ENDPOINTS = "notifications/webhooks.html.j2"
EndpointId = FromPath[uuid.UUID]
EVENT_OPTIONS = [("*", "Every event (*)")] + [(name, name) for name in sorted(EVENT_NAMES - {"*"})]


def _events(value: Any) -> list[str]:
    """The checked boxes: none, one (a string) or several (a list)."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)] if value else []


class WebhookPages(Controller):
    include_in_schema = False
    guards = [subscriber_admin_pages]

    @get("/app/webhooks")
    async def endpoints(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, db: DbDep, cursor: FromQuery[str] = ""
    ) -> Template:
        """The tenant's webhook endpoints and a form for a new one."""
        found = await services.list_endpoints(db, principal, cursor=cursor or None, limit=DEFAULT_LIMIT)
        return render(request, ENDPOINTS, heading="Webhooks", endpoints=found.items, event_options=EVENT_OPTIONS,
                      next_url=next_page("/app/webhooks", found.next_cursor))  # fmt: skip

    @post("/app/webhooks", status_code=201)
    async def create(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, db: DbDep, actor: ActorDep,
        settings: SettingsDep, app_secret: AppSecretDep,
    ) -> Response[Any]:  # fmt: skip
        """A new endpoint (the same checks as the API: known events, no private or loopback URL); the signing
        secret is shown this once."""
        form = await form_data(request)
        form["events"] = _events(form.get("events"))
        try:
            data = validated(WebhookEndpointCreate, {"url": one(form, "url"), "events": form["events"]})
            await services.check_endpoint(data, allow_private=settings.webhook_allow_private)
            created = await services.create_endpoint(db, actor, principal, data, app_secret)
        except InvalidInput as exc:
            found = await services.list_endpoints(db, principal, cursor=None, limit=DEFAULT_LIMIT)
            return render(request, ENDPOINTS, status=422, heading="Webhooks", endpoints=found.items, form=form,
                          event_options=EVENT_OPTIONS, next_url=None, errors=field_errors(exc))  # fmt: skip
        page = render(
            request, "notifications/secret_shown.html.j2", status=201, heading="Webhook added", endpoint=created
        )
        page.headers["Cache-Control"] = "no-store"
        return page

    @get("/app/webhooks/{endpoint_id:uuid}")
    async def endpoint(
        self, request: Request[Any, Any, Any], endpoint_id: EndpointId, principal: PrincipalDep, db: DbDep,
        cursor: FromQuery[str] = "",
    ) -> Template:  # fmt: skip
        """One endpoint and its delivery log (status, attempts, last error, times), with replay of dead letters."""
        endpoint = await services.get_endpoint(db, principal, endpoint_id)
        log = await services.list_deliveries(db, principal, endpoint_id, cursor=cursor or None, limit=DEFAULT_LIMIT)
        next_url = next_page(f"/app/webhooks/{endpoint_id}", log.next_cursor)
        return render(request, "notifications/webhook.html.j2", heading="Webhook endpoint", endpoint=endpoint,
                      deliveries=log.items, next_url=next_url)  # fmt: skip

    @get("/app/webhooks/{endpoint_id:uuid}/delete")
    async def confirm_delete(
        self, request: Request[Any, Any, Any], endpoint_id: EndpointId, principal: PrincipalDep, db: DbDep
    ) -> Template:
        """Ask before deleting an endpoint."""
        endpoint = await services.get_endpoint(db, principal, endpoint_id)
        return render(request, "notifications/delete_webhook.html.j2", heading="Delete webhook", endpoint=endpoint)

    @post("/app/webhooks/{endpoint_id:uuid}/delete", status_code=200)
    async def delete(
        self, request: Request[Any, Any, Any], endpoint_id: EndpointId, principal: PrincipalDep, db: DbDep,
        actor: ActorDep,
    ) -> Response[Any]:  # fmt: skip
        """Delete the endpoint: nothing more is sent to it, its pending deliveries close."""
        await services.delete_endpoint(db, actor, principal, endpoint_id)
        return redirect(request, "/app/webhooks", "The webhook endpoint is deleted.")

    @post("/app/webhooks/deliveries/{delivery_id:uuid}/replay", status_code=200)
    async def replay(
        self, request: Request[Any, Any, Any], delivery_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep,
        actor: ActorDep,
    ) -> Response[Any]:  # fmt: skip
        """Try a dead-lettered delivery again (anything else is 409)."""
        delivery = await services.replay(db, actor, principal, delivery_id)
        return redirect(request, f"/app/webhooks/{delivery.endpoint_id}", "The delivery will be tried again.")
