"""`GET /api/v1/records-of-processing`: the processor's Art. 30(2) record per controller tenant, JSON or CSV."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import QueryParameter
from litestar.response import Stream

from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import require_roles
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit
from dpa_service.obligations import records
from dpa_service.obligations.records_models import RecordPage

record_readers = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL)

Format = Annotated[
    str | None,
    QueryParameter(
        name="format",
        max_length=20,
        description="`json` (default) or `csv`; without it, `Accept: text/csv` asks for CSV.",
        examples=[Example(value="csv")],
    ),
]
TenantFilter = Annotated[uuid.UUID | None, QueryParameter(name="tenant_id", description="Legal: one tenant.")]

CSV_MEDIA_TYPE = "text/csv"  # Litestar adds "; charset=utf-8"


def csv_response(export: records.CsvExport) -> Stream:
    """A streamed CSV download: the rows leave batch by batch while the next batch is read."""
    return Stream(
        export.chunks,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"', "Cache-Control": "no-store"},
    )


class RecordsOfProcessingController(Controller):
    path = "/api/v1/records-of-processing"
    tags = ["Obligations"]

    @get(
        "/",
        guards=[record_readers],
        operation_id="getRecordsOfProcessing",
        responses={
            200: ResponseSpec(
                data_container=RecordPage,
                generate_examples=False,
                description="The records as JSON `{items, next_cursor}`, or as `text/csv` (`format=csv`)",
            )
        },
    )
    async def export(
        self,
        request: Request[Principal, Any, Any],
        principal: PrincipalDep,
        db: DbDep,
        actor: ActorDep,
        export_format: Format = None,
        tenant_id: TenantFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Response[Any]:
        """The processor's record of processing (Art. 30(2) GDPR), one record per controller tenant, built from
        its executed DPA (Annex I and III), its authorized sub-processors, its transfers with their safeguards and
        the template's Annex II.

        A Subscriber (owner, admin or member) gets its own tenant's record; a `tenant_id` it passes is ignored
        (never another tenant's rows). Legal names one tenant with `?tenant_id=` (404 if there is no such tenant)
        or, without it, gets every tenant with an executed DPA: as JSON paged by `limit`/`cursor`, as CSV in one
        streamed download. A tenant with no executed DPA has no record: 200 with `items: []` (CSV: the header
        row only); legal's all-tenants export skips it. `format` other than `json`/`csv` is 422 naming `format`.
        CSV is `text/csv; charset=utf-8` with a header row, one row per (tenant, processing), list fields joined
        by "; ", cells a spreadsheet would run as formulas prefixed with `'`. Every export is audited
        (`records_of_processing.exported`: the tenant's chain, or the platform chain for all tenants)."""
        chosen = records.export_format(export_format, request.headers.get("accept", ""))
        if chosen == "csv":
            return csv_response(await records.export_csv(db, actor, principal, tenant_id=tenant_id))
        page = await records.export_json(db, actor, principal, tenant_id=tenant_id, cursor=cursor, limit=limit)
        return Response(page)
