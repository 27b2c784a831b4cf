"""No input yields a 5xx (issue 16): each reproduction of the security review, on both databases, answers a 4xx
problem naming what is wrong, and writes nothing."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import httpx
import pytest

from dpa_service.core.db import Database
from dpa_service.http.body_limits import MAX_JSON_BYTES
from dpa_service.http.pagination import encode_cursor
from tests.helpers.agreements import (
    approve_standard_dpa,
    new_agreement,
    request_own_signature,
    request_variables,
    to_status,
    token_of,
)
from tests.helpers.api import Api
from tests.test_errors import assert_problem


def fields(response: httpx.Response, status: int = 422) -> set[str]:
    return {error["field"] for error in assert_problem(response, status).get("errors", [])}


@pytest.fixture
async def owner(admin: Api, db: Database) -> Api:
    await approve_standard_dpa(db)
    return await admin.new_tenant()


async def test_non_object_transfers_or_controller_is_422_naming_it(owner: Api) -> None:
    variables = request_variables()
    for part, value in (("transfers", [1]), ("transfers", "scc-2021"), ("controller", "Acme"), ("controller", 7)):
        response = await owner.post(
            "/agreements", {"template_key": "standard-dpa", "variables": {**variables, part: value}}
        )
        assert f"variables.{part}" in fields(response), response.text
    assert (await owner.get("/agreements")).json()["items"] == []

    agreement = await new_agreement(owner)
    for part, value in (("transfers", [1]), ("controller", "Acme")):
        response = await owner.patch(f"/agreements/{agreement['id']}", {"variables": {part: value}})
        assert f"variables.{part}" in fields(response), response.text
    stored = (await owner.get(f"/agreements/{agreement['id']}")).json()["variables"]
    assert isinstance(stored["transfers"], dict) and isinstance(stored["controller"], dict)


@pytest.mark.parametrize("raw", ["١٢٣", "1" * 1000, "9223372036854775808", "12\n", "-1", "not-a-uuid"])
async def test_a_cursor_the_service_did_not_issue_is_422(owner: Api, raw: str) -> None:
    cursor = encode_cursor(raw)
    for path in ("/agreements", "/audit-events", "/transfers", "/webhook-endpoints"):
        assert fields(await owner.get(path, cursor=cursor)) == {"cursor"}, path


@pytest.mark.parametrize("url", ["http://example.com:99999/hook", "http://[::1", "https://[::1]x/", "http://a:b/"])
async def test_an_unparsable_webhook_url_is_422_naming_url(owner: Api, url: str) -> None:
    assert fields(await owner.post("/webhook-endpoints", {"url": url, "events": ["*"]})) == {"url"}
    assert (await owner.get("/webhook-endpoints")).json()["items"] == []


async def test_json_nested_5000_deep_is_400_and_a_huge_body_413(owner: Api) -> None:
    headers = {"Authorization": f"Bearer {owner.key}", "Content-Type": "application/json"}
    for deep in ("[" * 5000 + "]" * 5000, '{"a":' * 5000 + "1" + "}" * 5000, "[" * 5000):
        response = await owner.client.post("/api/v1/agreements", content=deep, headers=headers)
        assert fields(response, 400) == {"body"}
    nested_in_variables = {
        "template_key": "standard-dpa",
        "variables": {"x": json.loads("[" * 70 + "]" * 70)},
    }
    assert fields(await owner.post("/agreements", nested_in_variables), 400) == {"body"}
    huge = b'{"variables": {"x": "' + b"a" * MAX_JSON_BYTES + b'"}}'
    assert_problem(await owner.client.post("/api/v1/agreements", content=huge, headers=headers), 413)
    assert (await owner.get("/agreements")).json()["items"] == []


@pytest.mark.parametrize("text", ["Acme\x00 GmbH", "Acme\x1b[2J", "Ac\u0085me"])
async def test_nul_and_control_characters_are_422_naming_the_field(owner: Api, text: str) -> None:
    before = (await owner.get("/tenant")).json()
    assert fields(await owner.patch("/tenant", {"legal_name": text, "address": f"Street 1\n{text}"})) == {
        "legal_name",
        "address",
    }
    assert (await owner.get("/tenant")).json() == before
    notice = {"became_aware_at": "2026-01-01T00:00:00Z", "description": text, "data_categories": [text],
              "subjects_estimate": 1, "measures": "Reset"}  # fmt: skip
    assert fields(await owner.post("/breach-notices", notice)) == {"description", "data_categories.0"}
    variables = request_variables()
    variables["processing"]["subject_matter"] = text
    response = await owner.post("/agreements", {"template_key": "standard-dpa", "variables": variables})
    assert fields(response) == {"variables.processing.subject_matter"}
    assert (await owner.get("/agreements")).json()["items"] == []


async def test_bidi_overrides_in_names_that_reach_the_pdf_are_422(owner: Api) -> None:
    variables = request_variables()
    variables["signatory"] = {**variables["signatory"], "name": "Olive \u202enosrevO", "title": "CEO\u2066"}
    response = await owner.post("/agreements", {"template_key": "standard-dpa", "variables": variables})
    assert fields(response) == {"variables.signatory.name", "variables.signatory.title"}
    assert fields(await owner.patch("/tenant", {"legal_name": "Acme \u202eLtd"})) == {"legal_name"}
    # Right-to-left text itself is fine: only the invisible override characters are refused.
    assert (await owner.patch("/tenant", {"legal_name": "شركة أكمي"})).status_code == 200


async def test_typed_name_must_be_a_string_on_json_and_form_posts(owner: Api, admin: Api) -> None:
    legal = await admin.new_staff("legal")
    await to_status(owner, legal, "out_for_signature")
    agreement = (await owner.get("/agreements")).json()["items"][0]
    path = f"/sign/{token_of(await request_own_signature(owner, agreement['id']))}"
    for typed in (123, {"first": "Olive"}, ["Olive"], True):
        body: dict[str, Any] = {"typed_name": typed, "consent": True, "authority_confirmed": True}
        assert fields(await owner.client.post(path, json=body)) == {"typed_name"}
    form = {"consent": "on", "authority_confirmed": "on"}
    as_file = await owner.client.post(path, data=form, files={"typed_name": ("name.txt", b"Olive", "text/plain")})
    assert as_file.status_code == 422 and "typed_name" in as_file.text
    control = {"typed_name": "Olive\x00", "consent": True, "authority_confirmed": True}
    assert fields(await owner.client.post(path, json=control)) == {"typed_name"}
    assert (await owner.get(f"/agreements/{agreement['id']}")).json()["status"] == "out_for_signature"


SOURCES = {
    "include": '{% include "dpa.html.j2" %}',
    "import": '{% import "dpa.html.j2" as other %}',
    "from ... import": '{% from "dpa.html.j2" import x %}',
    "extends": '{% extends "dpa.html.j2" %}',
    "range": "{% for i in range(10000000) %}{{ i }}{% endfor %}",
}


@pytest.mark.parametrize("tag", SOURCES)
async def test_template_sources_refuse_include_import_extends_and_huge_ranges(admin: Api, tag: str) -> None:
    legal = await admin.new_staff("legal")
    body = {"key": "probe-dpa", "title": "Probe", "source": f"<p>Hello</p>\n{SOURCES[tag]}"}
    response = await legal.post("/templates", body)
    assert fields(response) == {"source"}
    assert re.search(r"not allowed|range\(\)", response.json()["errors"][0]["message"])
    assert [t for t in (await legal.get("/templates", key="probe-dpa")).json()["items"]] == []


def _sealed(client: httpx.AsyncClient) -> Any:
    from pypdf import PdfWriter

    blank = io.BytesIO()
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.write(blank)
    return client.app.state.seal.seal(blank.getvalue(), reason="test")  # type: ignore[attr-defined]


def damage_signature(pdf: bytes) -> bytes:
    """Overwrite part of the seal's CMS signature: the file still parses, the seal's bytes do not."""
    match = re.search(rb"/Contents\s*<([0-9a-fA-F]+)>", pdf)
    assert match is not None
    start = match.start(1) + 200
    return pdf[:start] + b"0" * 60 + pdf[start + 60 :]


def damage_xref(pdf: bytes) -> bytes:
    at = pdf.rfind(b"startxref")
    return pdf[:at] + b"startxref\n99999999\n%%EOF\n"


async def test_a_sealed_pdf_with_a_damaged_signature_is_tampered_and_a_damaged_xref_422(
    client: httpx.AsyncClient,
) -> None:
    pdf = await _sealed(client)
    headers = {"Content-Type": "application/pdf"}
    signature = await client.post("/api/v1/documents/verify", content=damage_signature(pdf), headers=headers)
    assert signature.status_code == 200 and signature.json()["status"] == "tampered", signature.text
    xref = await client.post("/api/v1/documents/verify", content=damage_xref(pdf), headers=headers)
    assert fields(xref) == {"body"} and "not a readable PDF" in xref.text


def test_dpa_verify_answers_a_damaged_sealed_pdf_without_a_traceback(
    sqlite_templates: dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's `dpa verify` on the same two damaged files: tampered (exit 1), unknown and why (exit 2)."""
    import shutil

    from click.testing import CliRunner
    from pypdf import PdfWriter

    from dpa_service.cli import main
    from dpa_service.core.settings import clear_settings_cache
    from dpa_service.documents.seal import SealConfig, seal_pdf

    shutil.copyfile(sqlite_templates["short"], tmp_path / "dpa.db")  # a database as a first start leaves it
    blank = io.BytesIO()
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.write(blank)
    pdf = seal_pdf(SealConfig(keys_dir=tmp_path / "keys"), blank.getvalue(), "test", None)
    monkeypatch.setenv("DPA_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    clear_settings_cache()
    try:
        for damage, code, status in ((damage_signature, 1, "tampered"), (damage_xref, 2, "unknown")):
            path = tmp_path / f"{damage.__name__}.pdf"
            path.write_bytes(damage(pdf))
            result = CliRunner().invoke(main, ["verify", str(path)])
            assert result.exit_code == code, result.output
            assert json.loads(result.stdout)["status"] == status
        assert "not a readable PDF" in result.stdout
    finally:
        clear_settings_cache()
