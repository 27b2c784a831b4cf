"""The short edition most tests execute (tests/helpers/short_dpa.py) is the shipped DPA minus its fixed text, and
the `shipped_dpa` marker really gives a test the shipped one."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from dpa_service.core.db import Database, Scope
from dpa_service.template_versions.bundle import TemplateBundle, shipped_bundles
from dpa_service.template_versions.models import TemplateVersion
from tests.helpers.short_dpa import short_standard_dpa


def shipped() -> TemplateBundle:
    return next(bundle for bundle in shipped_bundles() if bundle.key == "standard-dpa")


def test_the_short_edition_differs_from_the_shipped_dpa_only_in_its_fixed_text() -> None:
    full, short = shipped(), short_standard_dpa()
    assert (short.key, short.variables_schema, short.sample_variables, short.stylesheet, short.obligations) == (
        full.key,
        full.variables_schema,
        full.sample_variables,
        full.stylesheet,
        full.obligations,
    )  # the same schema and styling (fonts, page numbers), so requests and layout behave alike
    assert len(short.source) < len(full.source) / 2
    for kept in ("Custom clauses", "International transfers", "Signatures", "Annex III"):
        assert kept in short.source, kept
    for cut in ("Definitions and interpretation", "Annex II — Technical and organisational measures"):
        assert cut not in short.source, cut


async def _drafts(db: Database) -> list[str]:
    async with db.transaction(Scope.system(), write=False) as session:
        query = select(TemplateVersion.sha256).where(col(TemplateVersion.key) == "standard-dpa")
        return list((await session.execute(query)).scalars())


async def test_a_test_s_database_holds_the_short_edition(db: Database) -> None:
    assert await _drafts(db) == [short_standard_dpa().sha256]


@pytest.mark.shipped_dpa
async def test_a_shipped_dpa_test_s_database_holds_the_shipped_template(db: Database) -> None:
    assert await _drafts(db) == [shipped().sha256]
