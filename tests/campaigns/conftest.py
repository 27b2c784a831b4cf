"""Re-papering tests start where the story starts: before the Privacy Shield fell.

A DPA may rely on the EU-US Privacy Shield only if it was made while the Shield stood (from 2016-08-01 until the
CJEU invalidated it on 2020-07-16, C-311/18), and it authorizes the sub-processor list in force that day. So these
tests take a database as migrated (`first_start`) and load the sub-processor list in January 2019, before the app
under test starts; the short edition of the standard DPA (tests/helpers/short_dpa.py), which every test but those of
the DPA's own text executes, is imported today, since its sample variables name mechanisms of today. Their DPAs on
the Shield are executed in 2019 (`test_campaigns.executed`).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dpa_service.core.clock import travel_to
from dpa_service.core.db import Database
from dpa_service.core.identity import Actor
from dpa_service.subprocessors.registry_sync import ensure_seeded
from dpa_service.template_versions.services import sync_from_files
from tests.helpers.short_dpa import short_standard_dpa

FIRST_STARTED = datetime(2019, 1, 7, 9, 0, tzinfo=UTC)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/campaigns/" in str(item.path):
            item.add_marker(pytest.mark.first_start)


@pytest.fixture(autouse=True)  # autouse: before `client`, whose app would otherwise load the list today
async def first_started_in_2019(db: Database) -> None:
    with travel_to(FIRST_STARTED):
        await ensure_seeded(db)
    # Imported today, as the app's first start would: its sample names mechanisms of today, unknown in 2019.
    await sync_from_files(db, Actor.system("startup"), bundles=[short_standard_dpa()])
