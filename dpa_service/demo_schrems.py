"""`dpa demo --scenario schrems-ii`: the history this product was built for, replayed with the injectable clock.

From an empty database, through the same service functions the API and pages call:

* January 2019: the processor (a US company, certified under the EU-US Privacy Shield) loads its sub-processor
  list as it stood then: its US vendors under the Privacy Shield, the others under the 2010 SCCs (a reconstruction
  from today's `registry/subprocessors.yaml`: each Data Privacy Framework entry was a Privacy Shield one, each 2021
  SCC entry a 2010 SCC one).
* Spring 2019: four Subscribers request, sign and get countersigned DPAs relying on the Privacy Shield; each
  execution puts the Subscriber-to-processor transfer (Privacy Shield, Clause 12.2) and the sub-processors' US
  transfers in its register.
* 20 July 2020: legal records the Privacy Shield's invalidation as of 16 July 2020 (CJEU, C-311/18, Schrems II);
  the affected report lists the four tenants and their transfers.
* August 2021: legal publishes the sub-processor list of today (the 2021 SCCs, adopted by Commission Implementing
  Decision (EU) 2021/914 of 4 June 2021), with 30 days' notice.
* 4 October 2021: legal starts a campaign moving every DPA off the Privacy Shield to the 2021 SCCs, due
  31 December 2021. One Subscriber signs and legal countersigns (its old DPA is superseded, its register moves to
  the 2021 SCCs); one signs and awaits the countersignature; one declines, with a reason; one has not answered.
* 1 August 2023: the EU-US Data Privacy Framework applies since 10 July 2023 (Commission Implementing Decision
  (EU) 2023/1795), and the processor certified under it: the Subscriber that declined the campaign requests a new
  DPA choosing the DPF first, and it carries its transfer to the processor.

Left to look at: the affected report, the half-finished campaign and each tenant's register. The dates and
decisions are those of `registry/transfer_mechanisms.yaml`, which cites their sources.
"""

from __future__ import annotations

import copy
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from dpa_service.agreements import execution, signing
from dpa_service.agreements import services as agreements
from dpa_service.agreements.models import AgreementCreate, SignatureRequestCreate, Signer
from dpa_service.campaigns import declines
from dpa_service.campaigns import services as campaigns
from dpa_service.campaigns.models import CampaignCreate, DeclineCreate
from dpa_service.campaigns.progress import progress
from dpa_service.core import registry
from dpa_service.core.clock import travel_to
from dpa_service.core.db import Database, Scope
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.core.registry import processor
from dpa_service.core.settings import get_settings
from dpa_service.demo import DEMO_TENANTS, SIGN_IN, _approve_shipped_templates, _legal_actor, _staff
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.seal import Seal, SealConfig
from dpa_service.subprocessors import publishing
from dpa_service.subprocessors.models import ProposalPublish
from dpa_service.subprocessors.registry_sync import sync_registry
from dpa_service.template_versions.bundle import shipped_bundles
from dpa_service.tenants.models import TenantCreate
from dpa_service.tenants.services import create_tenant
from dpa_service.transfers.invalidations import affected, record_invalidation
from dpa_service.transfers.models import InvalidationCreate
from dpa_service.users.models import User

PS, SCC_2010, SCC_2021, DPF = "eu-us-privacy-shield", "scc-2010", "scc-2021", "eu-us-dpf"
# What each of today's sub-processor mechanisms was in 2019 (see the module docstring).
IN_2019 = {DPF: PS, SCC_2021: SCC_2010}


def at(day: str, hour: int = 10) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC) + timedelta(hours=hour)


@dataclass(frozen=True)
class Subscriber:
    tenant: TenantCreate
    signs_on: str
    signatory_title: str


ACME, GLOBEX = DEMO_TENANTS  # the two Subscribers of `dpa demo`, and two more
SUBSCRIBERS = (
    Subscriber(ACME, "2019-03-04", "Managing Director"),
    Subscriber(GLOBEX, "2019-04-08", "Director"),
    Subscriber(
        TenantCreate(
            name="Initech Analytics",
            legal_name="Initech Analytics SAS",
            country="FR",
            address="12 rue de la Paix, 75002 Paris",
            registration_number="RCS Paris 812 345 678",
            contact_email="dpo@initech-analytics.example",
            admin_email="owner@initech-analytics.example",
            admin_name="Isabelle Initech",
        ),
        "2019-05-13",
        "Présidente",
    ),
    Subscriber(
        TenantCreate(
            name="Hooli Software",
            legal_name="Hooli Software Oy",
            country="FI",
            address="Mannerheimintie 10, 00100 Helsinki",
            registration_number="Y-tunnus 3123456-7",
            contact_email="privacy@hooli-software.example",
            admin_email="owner@hooli-software.example",
            admin_name="Heikki Hooli",
        ),
        "2019-06-10",
        "CEO",
    ),
)
INVALIDATION = InvalidationCreate(
    invalid_from=date(2020, 7, 16),
    reason=(
        "The Court of Justice declared Commission Decision 2016/1250 (the EU-US Privacy Shield) invalid: transfers "
        "to the US can no longer rest on it and must move to another mechanism."
    ),
    legal_reference=(
        "CJEU, judgment of 16 July 2020, Data Protection Commissioner v Facebook Ireland and Schrems, C-311/18"
    ),
)
CAMPAIGN_REASON = (
    "The EU-US Privacy Shield your DPA relies on was invalidated by the CJEU on 16 July 2020 (C-311/18). This new "
    "DPA carries your transfers to us under the 2021 Standard Contractual Clauses (Decision (EU) 2021/914)."
)
DECLINE_REASON = "We are waiting for the new EU-US framework before we sign again."


class ScenarioRefused(Exception):
    """The database is not empty: a replayed history cannot be mixed with what is already there."""


async def _refuse_unless_empty(db: Database) -> None:
    async with db.transaction(Scope.system(), write=False) as session:
        if await session.scalar(select(col(User.id)).limit(1)) is not None:
            raise ScenarioRefused(
                "the schrems-ii scenario replays a history from 2019 and needs an empty database "
                "(point DATABASE_URL and DPA_VAR_DIR at new ones)"
            )


def items_as_in_2019() -> list[dict[str, Any]]:
    """Today's sub-processor list with each mechanism as it was in 2019 (see the module docstring)."""
    items = copy.deepcopy(registry.subprocessor_seed().get("items", []))
    for item in items:
        code = item.get("transfer_mechanism")
        item["transfer_mechanism"] = IN_2019.get(code, code)
    return items


def _variables(mechanisms: list[str], subscriber: Subscriber) -> dict[str, Any]:
    sample = next(b for b in shipped_bundles() if b.key == "standard-dpa").sample_variables
    tenant = subscriber.tenant
    variables = {key: copy.deepcopy(value) for key, value in sample.items()}
    variables["controller"] = {
        "legal_name": tenant.legal_name,
        "address": tenant.address,
        "country": tenant.country,
        "contact_email": tenant.contact_email,
        "registration_number": tenant.registration_number,
    }
    variables["signatory"] = {
        "name": tenant.admin_name,
        "title": subscriber.signatory_title,
        "email": tenant.admin_email,
    }
    variables["transfers"] = {"mechanisms": mechanisms}
    variables["governing_law"] = tenant.country
    return variables


class Replay:
    """The service's parts a scenario step needs: the database, documents, the seal, and who is who."""

    def __init__(self, db: Database, renderer: Renderer, seal: Seal) -> None:
        self.db, self.renderer, self.seal = db, renderer, seal
        self.owners: dict[str, Principal] = {}
        self.legal: Principal | None = None

    @property
    def legal_principal(self) -> Principal:
        assert self.legal is not None
        return self.legal

    def actor(self, principal: Principal) -> Actor:
        return Actor(principal.user_id, principal.role.value, principal.tenant_id, user_agent="dpa demo schrems-ii")

    async def sign(self, owner: Principal, agreement_id: uuid.UUID, title: str) -> None:
        """The owner sends the DPA for signature to itself and signs it through its link."""
        request = SignatureRequestCreate(signer=Signer(name=owner.name, email=owner.email, title=title))
        prepared = await signing.prepare_signature(self.db, self.renderer, owner, agreement_id, request)
        opened = signing.OpenedLinks(get_settings().public_base_url or "http://127.0.0.1:8000")
        await signing.open_request(
            self.db, self.actor(owner), owner, prepared, request, valid_for=timedelta(days=14), links_out=opened
        )
        form = signing.SigningForm(typed_name=owner.name, consent=True, authority_confirmed=True)
        await signing.sign_with_token(self.db, opened.opened[0][1], form, ip="192.0.2.10", user_agent="demo browser")

    async def countersign(self, agreement_id: uuid.UUID) -> None:
        legal = self.legal_principal
        await execution.countersign(self.db, self.renderer, self.seal, self.actor(legal), legal, agreement_id)

    async def new_dpa(self, owner: Principal, subscriber: Subscriber, mechanisms: list[str]) -> uuid.UUID:
        body = AgreementCreate(variables=_variables(mechanisms, subscriber))
        created = await agreements.create_agreement(self.db, self.actor(owner), owner, body)
        await agreements.submit(self.db, self.actor(owner), owner, created.id)
        return created.id


async def _principal(db: Database, user_id: uuid.UUID) -> Principal:
    async with db.transaction(Scope.system(), write=False) as session:
        user = await session.scalar(select(User).where(col(User.id) == user_id))
    assert user is not None
    return Principal(user.id, user.tenant_id, Role(user.role), user.email, user.name, None)


async def run_schrems_ii(db: Database) -> dict[str, Any]:
    """Replay the scenario into an empty database; returns the personas' keys and what to look at."""
    started = time.monotonic()
    await _refuse_unless_empty(db)
    renderer = Renderer()
    seal = Seal(SealConfig.from_settings(get_settings(), organization=processor()["legal_name"]), renderer)
    await seal.load()
    replay = Replay(db, renderer, seal)
    system = Actor.system("demo schrems-ii")
    # Today, before the replay: the staff, and the shipped templates (their sample variables name today's
    # mechanisms, so they are approved today; the DPAs of 2019 use them as they are).
    out: dict[str, Any] = {"scenario": "schrems-ii", "staff": await _staff(db, system), "tenants": {}}
    legal_actor = await _legal_actor(db)
    out["templates"] = await _approve_shipped_templates(db, system, legal_actor)
    assert legal_actor.user_id is not None
    replay.legal = await _principal(db, legal_actor.user_id)

    with travel_to(at("2019-01-07")):
        await sync_registry(db, system, items=items_as_in_2019())

    for subscriber in SUBSCRIBERS:
        with travel_to(at(subscriber.signs_on)):
            created = await create_tenant(db, system, subscriber.tenant)
            owner = await _principal(db, created.admin_user_id)
            replay.owners[subscriber.tenant.name] = owner
            agreement_id = await replay.new_dpa(owner, subscriber, [PS])
            await replay.sign(owner, agreement_id, subscriber.signatory_title)
        with travel_to(at(subscriber.signs_on, hour=15) + timedelta(days=2)):
            await replay.countersign(agreement_id)
        out["tenants"][subscriber.tenant.name] = {
            "id": str(created.id),
            "email": subscriber.tenant.admin_email,
            "api_key": created.admin_api_key,
            "dpa_2019": str(agreement_id),
        }

    legal = replay.legal_principal
    with travel_to(at("2020-07-20")):
        await record_invalidation(db, replay.actor(legal), PS, INVALIDATION)
        report = await affected(db, legal, PS, cursor=None, limit=200)

    with travel_to(at("2021-08-02")):
        proposal = await sync_registry(db, replay.actor(legal))
        if proposal.change_id is not None:
            reason = "Our US sub-processors now rely on the 2021 Standard Contractual Clauses (Decision (EU) 2021/914)."
            await publishing.publish_proposal(
                db, replay.actor(legal), proposal.change_id, ProposalPublish(notice_days=30, reason=reason)
            )

    acme, globex, initech, _hooli = SUBSCRIBERS
    with travel_to(at("2021-10-04")):
        run = await campaigns.start_campaign(
            db,
            replay.actor(legal),
            CampaignCreate(
                replace_mechanism=PS,
                replacement_mechanism=SCC_2021,
                reason=CAMPAIGN_REASON,
                due_on=date(2021, 12, 31),
            ),
        )
    waiting = {}
    for subscriber in (acme, globex, initech):
        owner = replay.owners[subscriber.tenant.name]
        [draft] = await declines.waiting_for(db, owner)
        waiting[subscriber.tenant.name] = (owner, draft.agreement_id)
    with travel_to(at("2021-10-11")):
        for subscriber in (acme, globex):
            owner, draft_id = waiting[subscriber.tenant.name]
            await agreements.submit(db, replay.actor(owner), owner, draft_id)
            await replay.sign(owner, draft_id, subscriber.signatory_title)
        owner, draft_id = waiting[initech.tenant.name]
        await declines.decline(db, replay.actor(owner), owner, draft_id, DeclineCreate(reason=DECLINE_REASON))
    with travel_to(at("2021-10-13")):
        await replay.countersign(waiting[acme.tenant.name][1])

    with travel_to(at("2023-08-01")):
        owner = replay.owners[initech.tenant.name]
        dpf_dpa = await replay.new_dpa(owner, initech, [DPF, SCC_2021])
        await replay.sign(owner, dpf_dpa, initech.signatory_title)
    with travel_to(at("2023-08-02")):
        await replay.countersign(dpf_dpa)

    counts = await progress(db, run.id)
    out["look_at"] = {
        "affected_report": f"/staff/mechanisms/{PS}",
        "affected_tenants": sorted({item.tenant_name for item in report.items if item.tenant_name}),
        "campaign": f"/staff/campaigns/{run.id}",
        "campaign_progress": {
            k: getattr(counts, k) for k in ("total", "notified", "signed", "executed", "declined", "overdue")
        },
        "registers": "sign in as a Subscriber and open /app/transfers",
    }
    out["sign_in"] = SIGN_IN
    out["seconds"] = round(time.monotonic() - started, 1)
    return out
