"""A legal template is bounded when it renders: loops, repetition, output size and recursion end in the template's
409 (TemplateRenderError), never a hung worker or a 500; the shipped DPA renders exactly as before."""

from __future__ import annotations

import hashlib

import pytest

from dpa_service.documents import rendering
from dpa_service.documents.rendering import (
    RenderJob,
    TemplateRenderError,
    TemplateSourceError,
    check_source,
    render_html,
)


def job(source: str, **context: object) -> RenderJob:
    digest = hashlib.sha256(source.encode()).hexdigest()
    return RenderJob(digest, "t.html.j2", source, "", None, {"variables": {}, **context})


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(n) %}{% for j in range(n) %}.{% endfor %}{% endfor %}",  # 10^8 iterations
        "{% for i in range(n * 100) %}{% endfor %}",
        "{{ 'x' * 100000000 }}",
        "{{ [1] * 100000000 }}",
        "{{ 9 ** 99999999 }}",
        "{% macro down() %}{{ down() }}{% endmacro %}{{ down() }}",
        "{{ 1 / 0 }}",
        "{{ 'abc'[10] | int }}{{ none.x }}",
    ],
)
def test_a_runaway_template_fails_as_the_templates_fault(source: str) -> None:
    with pytest.raises(TemplateRenderError):
        render_html(job(source, n=10_000))


def test_output_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rendering, "MAX_OUTPUT_CHARS", 1000)
    with pytest.raises(TemplateRenderError, match="grew past"):
        render_html(job("{% for i in range(100) %}{{ 'x' * 50 }}{% endfor %}"))
    assert render_html(job("{% for i in range(10) %}{{ i }}{% endfor %}")) == "0123456789"


@pytest.mark.parametrize(
    "source", ['{% include "t.html.j2" %}', '{% import "t.html.j2" as t %}', '{% extends "t.html.j2" %}']
)
def test_a_stored_source_with_a_forbidden_tag_does_not_compile(source: str) -> None:
    with pytest.raises(TemplateSourceError, match="not allowed"):
        check_source("t.html.j2", source)
    with pytest.raises(TemplateRenderError, match="not allowed"):
        render_html(job(source))


def test_loops_within_the_bounds_render() -> None:
    assert render_html(
        job("{% for i in range(3) %}{% for j in range(2) %}{{ i }}{{ j }} {% endfor %}{% endfor %}")
    ) == ("00 01 10 11 20 21 ")
