"""The short edition most tests execute (tests/helpers/short_dpa.py) is the shipped DPA minus its fixed text, and
the `shipped_dpa` marker really gives a test the shipped one."""

from __future__ import annotations

import re

import pytest
from sqlmodel import col, select

from dpa_service.core.db import Database, Scope
from dpa_service.template_versions.bundle import TemplateBundle, shipped_bundles
from dpa_service.template_versions.models import TemplateVersion
from tests.helpers.short_dpa import short_standard_dpa


def shipped() -> TemplateBundle:
    return next(bundle for bundle in shipped_bundles() if bundle.key == "standard-dpa")


def test_the_short_edition_cuts_exactly_the_sections_its_docstring_names() -> None:
    """A section added to the shipped template is kept or cut on purpose: this list changes with it."""
    full, short = shipped(), short_standard_dpa()
    headings = re.compile(r'<section class="[^"]*">.*?<h[12][^>]*>(.*?)</h[12]>', re.S)
    cut = [re.sub(r"<[^>]+>", "", h) for h in headings.findall(full.source) if h not in short.source]
    assert cut == [
        "1.Definitions and interpretation", "2.Roles, subject matter and duration", "3.Instructions",
        "4.Confidentiality", "5.Security of processing", "6.Sub-processors", "7.Assistance to the Subscriber",
        "8.Personal data breaches", "9.Obligations of the Subscriber as controller",
        "10.Deletion and return of personal data", "11.Information and audits", "13.Liability",
        "14.Term and termination", "15.Governing law and jurisdiction", "16.Order of precedence",
        "17.General provisions", "Annex I — Description of the processing",
        "Annex II — Technical and organisational measures",
    ]  # fmt: skip
    for kept in ("Custom clauses", "International transfers", "Signatures", "Annex III", "{{ c.legal_name }}"):
        assert kept in short.source, kept


async def _drafts(db: Database) -> list[str]:
    async with db.transaction(Scope.system(), write=False) as session:
        query = select(TemplateVersion.sha256).where(col(TemplateVersion.key) == "standard-dpa")
        return list((await session.execute(query)).scalars())


async def test_a_test_s_database_holds_the_short_edition(db: Database) -> None:
    assert await _drafts(db) == [short_standard_dpa().sha256]


@pytest.mark.shipped_dpa
async def test_a_shipped_dpa_test_s_database_holds_the_shipped_template(db: Database) -> None:
    assert await _drafts(db) == [shipped().sha256]
