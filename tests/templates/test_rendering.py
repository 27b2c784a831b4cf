"""Rendering the shipped DPA: complete content, deterministic bytes, embedded fonts, sandboxed and offline."""

from __future__ import annotations

import copy
import hashlib
import io
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pypdf import PdfReader

from dpa_service.core import registry
from dpa_service.core.exceptions import InvalidInput
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.rendering import render_sync
from dpa_service.template_versions.models import TemplateVersion
from dpa_service.template_versions.variables import validate_variables
from tests.templates.conftest import job_for, pdf_text, squash


@pytest.fixture(scope="module")
def rendered(version: TemplateVersion, bundle: Any) -> bytes:
    return render_sync(job_for(version, bundle.sample_variables))


def test_the_dpa_names_parties_annexes_mechanisms_obligations_and_pages(
    rendered: bytes, version: TemplateVersion, bundle: Any
) -> None:
    text = pdf_text(rendered)
    flat = squash(text)
    variables = bundle.sample_variables
    assert squash(variables["controller"]["legal_name"]) in flat
    assert squash(registry.processor()["legal_name"]) in flat
    for heading in ("Annex I", "Annex II", "Annex III", "Annex I.A", "Annex I.B", "Annex I.C"):
        assert squash(heading) in flat, heading
    for code in variables["transfers"]["mechanisms"]:
        assert squash(registry.mechanisms()[code].name) in flat, code
    assert len(version.obligations) == 6
    for obligation in version.obligations:
        assert squash(obligation["title"]) in flat, obligation["code"]
    pages = len(PdfReader(io.BytesIO(rendered)).pages)
    assert f"Page 1 of {pages}" in text
    assert pages >= 5
    for anchor in ("[[SIG_SUBSCRIBER]]", "[[SIG_PROCESSOR]]", "[[DATE_SUBSCRIBER]]", "[[NAME_PROCESSOR]]"):
        assert anchor in flat


def test_the_pdf_embeds_its_fonts(rendered: bytes) -> None:
    reader = PdfReader(io.BytesIO(rendered))
    fonts = {}
    for page in reader.pages:
        for font in (page.get("/Resources", {}).get("/Font") or {}).values():
            font = font.get_object()
            descriptor = font.get("/FontDescriptor") or font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            descriptor = descriptor.get_object()
            fonts[font["/BaseFont"]] = any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
    assert fonts and all(fonts.values()), fonts
    # The template's own font files (its @font-face families), not whatever the system has.
    assert any("DPA-Serif" in name for name in fonts), fonts


def test_obligation_clauses_point_at_real_clauses(rendered: bytes, version: TemplateVersion) -> None:
    flat = squash(pdf_text(rendered))
    for obligation in version.obligations:
        assert re.fullmatch(r"\d+(\.\d+)*", str(obligation["clause"])), obligation
        assert squash(str(obligation["clause"])) in flat
    assert {o["code"] for o in version.obligations} == {
        "breach_notice_72h",
        "answer_inquiries",
        "records_of_processing",
        "transfer_prior_notice",
        "personnel_awareness",
        "delete_end_user_data",
    }


def test_same_inputs_give_the_same_bytes_and_one_character_changes_the_hash(
    version: TemplateVersion, sample: dict[str, Any], rendered: bytes
) -> None:
    again = render_sync(job_for(version, copy.deepcopy(sample)))
    assert hashlib.sha256(again).hexdigest() == hashlib.sha256(rendered).hexdigest()
    sample["processing"]["retention"] += "."
    changed = render_sync(job_for(version, sample))
    assert hashlib.sha256(changed).hexdigest() != hashlib.sha256(rendered).hexdigest()


async def test_the_renderer_caches_finished_documents(version: TemplateVersion, sample: dict[str, Any]) -> None:
    renderer = Renderer()
    first = await renderer.render(job_for(version, sample))
    second = await renderer.render(job_for(version, copy.deepcopy(sample)))
    assert not first.cached and second.cached and first.content == second.content
    other = await renderer.render(job_for(version, sample, reference="TEST-2"))
    assert not other.cached and other.sha256 != first.sha256


# --- Variables ----------------------------------------------------------------------------------------------


def test_every_failing_variable_is_named(version: TemplateVersion, sample: dict[str, Any]) -> None:
    del sample["controller"]["legal_name"]
    sample["signatory"]["email"] = 7
    sample["transfers"]["mechanisms"] = ["scc-2021", "pinky-promise"]
    sample["governing_law"] = "US"
    sample["surprise"] = True
    with pytest.raises(InvalidInput) as caught:
        validate_variables(version.variables_schema, sample)
    fields = {e.field for e in caught.value.errors}
    assert {
        "variables.controller.legal_name",
        "variables.signatory.email",
        "variables.transfers.mechanisms.1",
        "variables.governing_law",
        "variables.surprise",
    } <= fields


def test_the_sample_variables_are_valid(version: TemplateVersion, sample: dict[str, Any]) -> None:
    validate_variables(version.variables_schema, sample)


# --- Injection: user text is data, and the renderer never leaves the template's folder -----------------------

SSTI = ["{{7*7}}", "{{ ''.__class__ }}", "{% raw %}R{% endraw %}", "{{ cycler.__init__.__globals__ }}", "<b>x</b>"]


def _fill_strings(value: Any, payload: str) -> Any:
    if isinstance(value, dict):
        return {
            k: (v if k in {"country", "governing_law"} or "email" in k else _fill_strings(v, payload))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [v if isinstance(v, str) and v in registry.mechanisms() else _fill_strings(v, payload) for v in value]
    return payload if isinstance(value, str) else value


@pytest.mark.parametrize("payload", SSTI)
def test_template_syntax_in_every_field_is_printed_literally(
    version: TemplateVersion, sample: dict[str, Any], payload: str
) -> None:
    variables = _fill_strings(sample, payload)
    validate_variables(version.variables_schema, variables)
    clauses = [{"title": payload, "text": payload}]
    text = squash(pdf_text(render_sync(job_for(version, variables, custom_clauses=clauses))))
    assert text.count(squash(payload)) >= 8, "the payload should appear literally wherever a field is printed"
    assert "<class" not in text and "__globals__" not in text.replace(squash(payload), "")


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A local TCP listener that records every connection made to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    hits: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    hits.append(conn.recv(1024))
                except OSError:
                    hits.append(b"")
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/css\r\n\r\nbody{color:red}")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], hits
    stop.set()
    thread.join()
    server.close()


def test_urls_in_fields_fetch_nothing(
    version: TemplateVersion, sample: dict[str, Any], listener: tuple[int, list[bytes]]
) -> None:
    port, hits = listener
    payload = f'<img src="http://127.0.0.1:{port}/x"> file:///etc/passwd @import url(http://127.0.0.1:{port}/i);'
    variables = _fill_strings(sample, payload)
    text = pdf_text(render_sync(job_for(version, variables, custom_clauses=[{"title": "T", "text": payload}])))
    assert hits == []
    assert squash(f'<img src="http://127.0.0.1:{port}/x">') in squash(text)
    assert "root:x:0:0" not in text


def test_a_malicious_template_cannot_reach_the_network_or_the_file_system(
    version: TemplateVersion, sample: dict[str, Any], listener: tuple[int, list[bytes]]
) -> None:
    port, hits = listener
    source = f"""<html><head>
      <link rel="stylesheet" href="http://127.0.0.1:{port}/link.css">
      <style>@import url(http://127.0.0.1:{port}/import.css);
             body {{ background: url(file:///etc/passwd) }}
             h1 {{ background: url(../../../../../../etc/hostname) }}</style></head>
      <body><h1>{{{{ variables.controller.legal_name }}}}</h1>
      <img src="http://127.0.0.1:{port}/img.png"><img src="file:///etc/passwd">
      <object data="file:///etc/passwd"></object><iframe src="file:///etc/passwd"></iframe>
      <embed src="http://127.0.0.1:{port}/embed"><a href="file:///etc/passwd">link</a>
      <a rel="attachment" href="file:///etc/passwd">attached</a>
      <link rel="attachment" href="file:///etc/hostname"></body></html>"""
    evil = TemplateVersion(
        **{
            **version.model_dump(),
            "source": source,
            "sha256": "e" * 64,
            "stylesheet": f"@import url('http://127.0.0.1:{port}/sheet.css');",
        }
    )
    content = render_sync(job_for(evil, sample))
    assert hits == []
    assert "root:x:0:0" not in pdf_text(content)
    assert PdfReader(io.BytesIO(content)).attachments == {}, "a file was embedded as an attachment"
