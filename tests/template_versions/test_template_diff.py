"""Legal compares two template versions through the API: the rendered DPA text line against line, not the Jinja
source, with line numbers and a unified diff; only legal may, and a bad `against` is a clear error. Both databases."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from dpa_service.core.db import Database
from dpa_service.template_versions.bundle import shipped_bundles
from tests.helpers.agreements import approve_standard_dpa
from tests.helpers.api import Api

OLD_LINE = "Signed by the authorised representatives of the parties on the dates stated below."
NEW_LINE = "Signed by the authorised representatives of the parties on the dates shown below."
# A template comment changes the source but nothing a reader of the DPA sees.
SOURCE_ONLY = "{# reviewed by legal, 2026-12 #}"


@pytest.fixture
async def legal(admin: Api, db: Database) -> Api:
    await approve_standard_dpa(db)
    return await admin.new_staff("legal")


async def _versions(legal: Api, source: str) -> tuple[str, str]:
    first = next(v for v in (await legal.get("/templates", key="standard-dpa")).json()["items"] if v["version"] == 1)
    created = await legal.post("/templates", {"key": "standard-dpa", "title": first["title"], "source": source})
    assert created.status_code == 201, created.text
    return first["id"], created.json()["id"]


def _standard_source() -> str:
    source = next(b for b in shipped_bundles() if b.key == "standard-dpa").source
    assert OLD_LINE in source, "the shipped template no longer has the line this test changes"
    return source


@pytest.mark.shipped_dpa  # edits clauses of the shipped text
async def test_legal_sees_the_changed_clause_text_with_line_numbers_and_a_unified_diff(legal: Api) -> None:
    old_id, new_id = await _versions(legal, _standard_source().replace(OLD_LINE, NEW_LINE))

    response = await legal.get(f"/templates/{new_id}/diff", against=old_id)

    assert response.status_code == 200, response.text
    diff = response.json()
    assert diff["from"]["id"] == old_id and diff["from"]["version"] == 1
    assert diff["to"]["id"] == new_id and diff["to"]["version"] == 2 and diff["to"]["status"] == "draft"
    clauses = _beyond_identification(diff["changes"])
    assert diff["changed"] == len(diff["changes"])
    assert len(clauses) == 1, diff["unified"]
    [change] = clauses
    assert change["kind"] == "changed"
    assert change["old"] == OLD_LINE and change["new"] == NEW_LINE
    assert change["old_line"] == change["new_line"] and change["old_line"] > 1
    assert f"-{OLD_LINE}" in diff["unified"].splitlines()
    assert f"+{NEW_LINE}" in diff["unified"].splitlines()
    assert diff["unified"].startswith("--- standard-dpa v1\n+++ standard-dpa v2")

    reverse = (await legal.get(f"/templates/{old_id}/diff", against=new_id)).json()
    [back] = _beyond_identification(reverse["changes"])
    assert back["old"] == NEW_LINE and back["new"] == OLD_LINE


@pytest.mark.shipped_dpa  # edits clauses of the shipped text
async def test_a_change_to_the_source_that_no_reader_sees_changes_only_the_version_it_names(legal: Api) -> None:
    old_id, new_id = await _versions(legal, SOURCE_ONLY + "\n" + _standard_source())

    diff = (await legal.get(f"/templates/{new_id}/diff", against=old_id)).json()

    # The rendered DPA names its own version and template fingerprint, so those lines differ, truthfully; the
    # template comment itself shows nowhere.
    assert diff["changes"], diff
    assert _beyond_identification(diff["changes"]) == [], diff["unified"]
    assert "reviewed by legal" not in diff["unified"]
    fingerprints = [c for c in diff["changes"] if (c["new"] or "").startswith("Template fingerprint (SHA-256):")]
    assert [c["new"].split()[-1] for c in fingerprints] == [diff["to"]["sha256"]]


def _beyond_identification(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The changes other than the lines where each rendered version names itself (version label, fingerprint)."""
    return [
        change
        for change in changes
        if not any(
            marker in (change["old"] or "") + (change["new"] or "")
            for marker in ("standard-dpa v1", "standard-dpa v2", "Template fingerprint (SHA-256):")
        )
    ]


async def test_only_legal_may_compare_and_a_bad_against_is_a_clear_error(admin: Api, legal: Api) -> None:
    old_id, new_id = await _versions(legal, _standard_source().replace(OLD_LINE, NEW_LINE))
    owner, sales = await admin.new_tenant(), await admin.new_staff("sales")
    for caller in (owner, sales, admin):
        refused = await caller.get(f"/templates/{new_id}/diff", against=old_id)
        assert refused.status_code == 403, refused.text

    unknown = await legal.get(f"/templates/{new_id}/diff", against=str(uuid.uuid4()))
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")

    for bad in ({}, {"against": "v1"}):
        response = await legal.get(f"/templates/{new_id}/diff", **bad)
        assert response.status_code in (400, 422), response.text
        problem = response.json()
        assert any(error["field"] == "against" for error in problem["errors"]), problem
