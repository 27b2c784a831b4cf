"""Countersign-to-sealed-PDF time against a bare render + bare pyHanko seal of the same document.

    .venv/bin/python bench/sign_flow.py [--runs 5]

service: `agreements.services.countersign` on a signed agreement in a fresh SQLite database: reads, renders the
         DPA and the certificate of completion, composes, seals (PAdES), stores and supersedes in one transaction.
bare:    WeasyPrint of the same two HTML documents plus pyHanko's async_sign_pdf with the same key.
Goal: service <= 1.2x bare.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from sqlalchemy import select

from dpa_service import migrate, reactions
from dpa_service.agreements import documents, execution, links, services, signing
from dpa_service.agreements.models import AgreementCreate, SignatureRequestCreate
from dpa_service.core.db import Database, Scope
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.core.registry import processor
from dpa_service.core.settings import DatabaseSettings, Settings
from dpa_service.demo import seed_demo
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.rendering import render_html
from dpa_service.documents.seal import Seal, SealConfig, signer_for
from dpa_service.subprocessors.registry_sync import ensure_seeded
from dpa_service.template_versions import services as templates
from dpa_service.template_versions.bundle import shipped_bundles
from dpa_service.users.models import User


async def signed_agreements(db: Database, renderer: Renderer, count: int) -> tuple[list[uuid.UUID], Principal]:
    await seed_demo(db)
    await ensure_seeded(db)
    async with db.transaction(Scope.system(), write=False) as session:
        owner = await session.scalar(select(User).where(User.role == Role.OWNER.value))
        legal = await session.scalar(select(User).where(User.role == Role.LEGAL.value))
    assert owner and legal
    subscriber = Principal(owner.id, owner.tenant_id, Role.OWNER, owner.email, owner.name, uuid.uuid4())
    actor = Actor(owner.id, "owner", owner.tenant_id)
    variables = next(b for b in shipped_bundles() if b.key == "standard-dpa").sample_variables
    ids = []
    for _ in range(count):
        body = AgreementCreate(variables={k: v for k, v in variables.items() if k != "controller"})
        agreement = await services.create_agreement(db, actor, subscriber, body)
        await services.submit(db, actor, subscriber, agreement.id)
        request = SignatureRequestCreate(signer={"name": owner.name, "email": owner.email, "title": "CEO"})
        prepared = await signing.prepare_signature(db, renderer, subscriber, agreement.id, request)
        opened = signing.OpenedLinks("http://bench")
        await signing.open_request(
            db, actor, subscriber, prepared, request, valid_for=timedelta(days=1), links_out=opened
        )
        form = signing.SigningForm(typed_name=owner.name, consent=True, authority_confirmed=True)
        await signing.sign_with_token(db, opened.opened[0][1], form, ip="127.0.0.1", user_agent="bench")
        ids.append(agreement.id)
    return ids, Principal(legal.id, None, Role.LEGAL, legal.email, legal.name, uuid.uuid4())


async def main(runs: int) -> None:
    var_dir = Path(tempfile.mkdtemp(prefix="dpa-bench-sign-"))
    settings = Settings(var_dir=var_dir, database=DatabaseSettings(url=f"sqlite+aiosqlite:///{var_dir / 'dpa.db'}"))
    await asyncio.to_thread(migrate.upgrade, settings)
    reactions.install()
    db, renderer = Database(settings.database), Renderer()
    seal = Seal(SealConfig.from_settings(settings, organization=processor()["legal_name"]), renderer)
    await seal.load()
    await renderer.start()
    ids, legal = await signed_agreements(db, renderer, runs + 1)
    actor = Actor(legal.user_id, "legal", None)

    # The bare baseline: the same two HTML documents, laid out and sealed with nothing around them.
    async with db.transaction(Scope.system(), write=False) as session:
        agreement = await services.find(session, ids[0])
        sigs = list(await links.signatures_of(session, agreement.id))
    version = await templates.version_by_id(db, Scope.system(), agreement.template_id)
    context = documents.build_context(
        version,
        agreement.variables,
        reference=str(agreement.id),
        status="executed",
        generated_on=agreement.updated_at.date(),
        custom_clauses=agreement.custom_clauses,
    )
    job = documents.render_job(version, context)
    dpa_html = render_html(job)
    certificate = documents.compiled_template(
        "certificate:" + documents.CERTIFICATE, documents.CERTIFICATE, documents._certificate_source()
    )
    cert_html = certificate.render(
        {
            "agreement": {
                k: "x"
                for k in (
                    "reference",
                    "template_key",
                    "template_version",
                    "template_title",
                    "template_sha256",
                    "controller",
                    "processor",
                    "effective_date",
                    "executed_at",
                    "document_sha256",
                    "subprocessor_list",
                )
            },
            "signatures": documents._signature_rows(sigs * 2, "Controller"),
            "consent_text": links.consent_text(),
        }
    )

    async def bare() -> None:
        pdf = await asyncio.to_thread(
            documents._compose, [(dpa_html, job.stylesheet, job.assets), (cert_html, "", None)]
        )
        meta = signers.PdfSignatureMetadata(
            field_name="Seal", subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
        )
        await signers.async_sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=signer_for(seal.config))

    async def service(agreement_id: uuid.UUID) -> None:
        await execution.countersign(db, renderer, seal, actor, legal, agreement_id)

    await bare()  # warm-up
    await service(ids[0])
    bare_times, service_times = [], []
    for agreement_id in ids[1:]:
        start = time.perf_counter()
        await bare()
        bare_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        await service(agreement_id)
        service_times.append(time.perf_counter() - start)
    await db.dispose()
    b, s = statistics.median(bare_times), statistics.median(service_times)
    print(f"runs: {runs}; medians")
    print(f"bare render + pyHanko seal:       {b * 1000:8.1f} ms")
    print(f"service countersign to sealed PDF: {s * 1000:8.1f} ms   {s / b:.2f}x bare (goal <= 1.2)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
