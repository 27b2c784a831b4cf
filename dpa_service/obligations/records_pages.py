"""Records of processing pages: a Subscriber's record (`/app/records`) and legal's per-tenant view with the
all-tenants download (`/staff/records`).

The same service calls as `GET /api/v1/records-of-processing`: `records.record_of` for the readable view (a view is
not an export, so it is not audited), `records.export_json` / `export_csv` for the downloads (audited, like the
API's). A page for another role is 404; a tenant legal names that does not exist is 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.params import FromQuery
from litestar.response import Template

from dpa_service.core import registry
from dpa_service.core.db import Database
from dpa_service.core.exceptions import InvalidInput
from dpa_service.core.identity import Principal
from dpa_service.http.auth import actor_of
from dpa_service.http.deps import DbDep, PrincipalDep
from dpa_service.obligations import records
from dpa_service.obligations.records_controllers import Format, csv_response
from dpa_service.web.auth import legal_pages, subscriber_pages
from dpa_service.web.views import next_page, render

PICKER_SIZE = 50


def _mechanism_name(code: str) -> str:
    found = registry.mechanisms().get(code)
    return found.name if found else code


def _names() -> dict[str, Any]:
    """The lookups the templates show countries and mechanisms by name with."""
    return {
        "country_name": registry.country_name,
        "country_names": lambda codes: ", ".join(registry.country_name(code) for code in codes),
        "mechanism_name": _mechanism_name,
    }


def _tenant_id(value: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidInput.field("tenant_id", "is not a tenant id") from exc


async def _download(
    request: Request[Any, Any, Any],
    principal: Principal,
    db: Database,
    export_format: str | None,
    tenant_id: uuid.UUID | None,
) -> Response[Any]:
    """The API's export as a file download, JSON or CSV (the default; the CSV streamed)."""
    chosen = records.export_format(export_format or "csv")
    actor = actor_of(request)
    if chosen == "csv":
        return csv_response(await records.export_csv(db, actor, principal, tenant_id=tenant_id))
    page = await records.export_json(db, actor, principal, tenant_id=tenant_id, cursor=None, limit=1)
    filename = f"records-of-processing-{records.target_tenant(principal, tenant_id)}.json"
    return Response(
        page.model_dump_json(indent=2).encode(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


class RecordPages(Controller):
    """A Subscriber's record of processing, as the processor keeps it."""

    path = "/app/records"
    guards = [subscriber_pages]
    include_in_schema = False

    @get("/")
    async def view(self, request: Request[Any, Any, Any], principal: PrincipalDep, db: DbDep) -> Template:
        """The processor's record for the caller's organisation, readable, with JSON and CSV downloads."""
        record = await records.record_of(db, principal, None)
        return render(request, "obligations/records_app.html.j2", heading="Records of processing", record=record,
                      **_names())  # fmt: skip

    @get("/download", media_type="text/csv")
    async def download(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, db: DbDep, export_format: Format = None
    ) -> Response[Any]:
        """The record as a file: `?format=json` or `csv` (the default); audited like the API's export."""
        return await _download(request, principal, db, export_format, None)


class StaffRecordPages(Controller):
    """Legal's records of processing: a tenant picker, one tenant's record, and the all-tenants CSV."""

    path = "/staff/records"
    guards = [legal_pages]
    include_in_schema = False

    @get("/")
    async def view(
        self,
        request: Request[Any, Any, Any],
        principal: PrincipalDep,
        db: DbDep,
        tenant_id: FromQuery[str] = "",
        cursor: FromQuery[str] = "",
    ) -> Template:
        """Tenants with an executed DPA to pick from (paged), and the picked tenant's record."""
        chosen = _tenant_id(tenant_id)
        tenants, next_cursor = await records.tenants_with_records(db, principal, cursor=cursor or None,
                                                                  limit=PICKER_SIZE)  # fmt: skip
        record = await records.record_of(db, principal, chosen) if chosen else None
        return render(request, "obligations/records_staff.html.j2", heading="Records of processing",
                      tenants=tenants, chosen=chosen, record=record,
                      next_url=next_page("/staff/records", next_cursor, tenant_id=tenant_id), **_names())  # fmt: skip

    @get("/download", media_type="text/csv")
    async def download(
        self,
        request: Request[Any, Any, Any],
        principal: PrincipalDep,
        db: DbDep,
        export_format: Format = None,
        tenant_id: FromQuery[str] = "",
    ) -> Response[Any]:
        """One tenant's record (`?tenant_id=`) or every tenant's (streamed CSV), as a file; audited."""
        return await _download(request, principal, db, export_format, _tenant_id(tenant_id))
