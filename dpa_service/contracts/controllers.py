"""The contracts API (API.md, "Contracts (sales)"): sales and legal create contracts for a tenant, attach and
detach its DPAs, close them (`won` only with an executed, current DPA) and download the bundle; Subscribers read
their own tenant's contracts. Another tenant's contract is 404 for a Subscriber."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream

from dpa_service.contracts import bundle, services
from dpa_service.contracts.models import AttachCreate, CloseCreate, ContractCreate, ContractPublic
from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import require_roles
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep, RendererDep, SealDep
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page

writers = require_roles(Role.SALES, Role.LEGAL)
readers = require_roles(Role.SALES, Role.LEGAL, Role.OWNER, Role.ADMIN, Role.MEMBER)

ContractId = FromPath[uuid.UUID]
TenantFilter = Annotated[uuid.UUID | None, QueryParameter(name="tenant_id", description="Staff: one tenant's")]
ZIP = {200: ResponseSpec(data_container=bytes, media_type="application/zip", description="The bundle (a zip)",
                         generate_examples=False)}  # fmt: skip


class ContractsController(Controller):
    path = "/api/v1/contracts"
    tags = ["Contracts"]

    @post("/", guards=[writers], operation_id="createContract", responses=created(ContractPublic))
    async def create(
        self, data: JSONBody[ContractCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        """Sales or legal create an open contract for a tenant: `reference` (unique per tenant, else 409) and
        `title` required; `value` a decimal string (`"12500.00"`, at least 0; a JSON number is 422) with its ISO
        4217 `currency`; `close_date` a date. `dpa_status` starts `missing`."""
        return await create_once(db, request, request.user, partial(services.create_contract, db, actor, request.user,
                                                                    data))  # fmt: skip

    @get("/", guards=[readers], operation_id="listContracts")
    async def list_contracts(
        self, principal: PrincipalDep, db: DbDep, tenant_id: TenantFilter = None, limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[ContractPublic]:  # fmt: skip
        """Contracts with their derived `dpa_status` (`missing`, `in_progress`, `executed`, `outdated`), why
        (`dpa_detail`) and the attached `agreements`: a Subscriber's own tenant's; sales and legal see all
        (`?tenant_id=` narrows)."""
        return await services.list_contracts(db, principal, tenant_id=tenant_id, cursor=cursor, limit=limit)

    @get("/{contract_id:uuid}", guards=[readers], operation_id="getContract")
    async def get_contract(self, contract_id: ContractId, principal: PrincipalDep, db: DbDep) -> ContractPublic:
        """One contract with its DPA status and attached agreements."""
        return await services.get_contract(db, principal, contract_id)

    @post("/{contract_id:uuid}/agreements", guards=[writers], operation_id="attachAgreement", status_code=200)
    async def attach(
        self, contract_id: ContractId, data: JSONBody[AttachCreate], principal: PrincipalDep, db: DbDep,
        actor: ActorDep,
    ) -> ContractPublic:  # fmt: skip
        """Attach one of the contract's tenant's agreements (`{agreement_id}`) and answer the contract; another
        tenant's agreement is 422 naming `agreement_id`; a closed contract is 409."""
        return await services.attach(db, actor, principal, contract_id, data)

    @delete("/{contract_id:uuid}/agreements/{agreement_id:uuid}", guards=[writers], operation_id="detachAgreement")
    async def detach(
        self, contract_id: ContractId, agreement_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep,
        actor: ActorDep,
    ) -> None:  # fmt: skip
        """Detach an agreement (204); one that is not attached is 404; a closed contract is 409."""
        await services.detach(db, actor, principal, contract_id, agreement_id)

    @post("/{contract_id:uuid}/close", guards=[writers], operation_id="closeContract", status_code=200)
    async def close(
        self, contract_id: ContractId, data: JSONBody[CloseCreate], principal: PrincipalDep, db: DbDep,
        actor: ActorDep,
    ) -> ContractPublic:  # fmt: skip
        """Close with `{outcome: "won"|"lost"}`. `won` without an executed, current DPA attached is 409 whose detail
        says why (none attached, only in progress, superseded, retired template, invalidated mechanism); closing a
        closed contract is 409."""
        return await services.close(db, actor, principal, contract_id, data)

    @get("/{contract_id:uuid}/bundle", guards=[writers], operation_id="getContractBundle", responses=ZIP,
         media_type="application/zip")  # fmt: skip
    async def bundle(
        self, contract_id: ContractId, principal: PrincipalDep, db: DbDep, renderer: RendererDep, seal: SealDep
    ) -> Stream:
        """`application/zip`, streamed: each attached DPA that was executed (sealed PDF, ending with its certificate
        of completion, and the certificate's facts as JSON), `manifest.json` `{contract_id, files: [{name, sha256,
        agreement_id}], agreements: [...], generated_at}` (superseded or outdated DPAs included, `current: false`),
        its detached signature `manifest.json.sig` and the seal's certificate and public key. Check offline with
        `openssl dgst -sha256 -verify seal-public-key.pem -signature manifest.json.sig manifest.json` and
        `sha256sum -c SHA256SUMS`. 409 when no attached DPA was executed."""
        made = await bundle.bundle(db, renderer, seal, principal, contract_id)
        disposition = f'attachment; filename="{made.filename}"'
        return Stream(made.chunks, media_type="application/zip", headers={"Content-Disposition": disposition})
