"""Drafts rendered ahead of their signature request, so the request does not wait for the layout.

A signature request shows its signer the exact PDF they sign and records its SHA-256, so it needs the draft
rendered: some 18 pages of WeasyPrint layout, a second or more of a core, which used to be spent inside the request.
The draft is fixed from the moment the agreement is ready for signature (its text can no longer change, and its
date is the day its text last changed), so the moment it becomes ready (`lifecycle.move` queues the job in that
transition's transaction) a worker renders it into the renderer's cache: this process's, and the store all the
service's processes share when Redis is configured (`documents.renderer`). The signature request, and the signing
page after it, then find it there. The request renders exactly as before; it is only faster when the draft is found:
the cache is keyed by everything the PDF is made of (template version, variables, sub-processor list, date), so a
list published meanwhile means a miss, never a stale PDF.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from dpa_service.agreements import signing
from dpa_service.agreements.lifecycle import PRERENDER_JOB
from dpa_service.agreements.models import AgreementStatus
from dpa_service.agreements.services import find
from dpa_service.core.db import Database, Scope
from dpa_service.documents.renderer import Renderer
from dpa_service.notifications.outbox import register_job

# A render that failed for want of resources is worth one more try; after that the request renders it itself.
ATTEMPTS = 2


async def prerender(db: Database, renderer: Renderer, payload: dict[str, Any]) -> None:
    """The job: render the agreement's draft as its signature request will, if it is still ready for signature."""
    agreement_id, scope = uuid.UUID(payload["agreement_id"]), Scope.tenant(uuid.UUID(payload["tenant_id"]))
    async with db.transaction(scope, write=False) as session:
        agreement = await find(session, agreement_id)
    if agreement.status == AgreementStatus.READY_FOR_SIGNATURE:  # else sent, voided or sent back meanwhile
        await signing.draft_to_sign(db, renderer, scope, agreement, None)  # as its signature request will ask


def install(renderer: Renderer) -> None:
    """Register the job with this process's renderer (at start: `dpa serve` and `dpa worker`)."""

    async def run(db: Database, payload: dict[str, Any]) -> None:
        await prerender(db, renderer, payload)

    register_job(PRERENDER_JOB, run, max_attempts=ATTEMPTS, first_retry=timedelta(seconds=5))
