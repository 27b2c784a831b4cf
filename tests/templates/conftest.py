"""Rendering fixtures: the shipped standard-dpa template as an in-memory version, and a PDF text reader."""

from __future__ import annotations

import copy
import io
import re
from datetime import date
from typing import Any

import pytest
from pypdf import PdfReader

from dpa_service.documents.rendering import RenderJob
from dpa_service.template_versions.bundle import TemplateBundle, shipped_bundles
from dpa_service.template_versions.context import build_context
from dpa_service.template_versions.models import TemplateVersion
from dpa_service.template_versions.services import render_job


@pytest.fixture(scope="session")
def bundle() -> TemplateBundle:
    found = [b for b in shipped_bundles() if b.key == "standard-dpa"]
    assert found, "templates/dpa/standard-dpa is missing"
    return found[0]


@pytest.fixture(scope="session")
def version(bundle: TemplateBundle) -> TemplateVersion:
    return bundle.as_version(3)


@pytest.fixture
def sample(bundle: TemplateBundle) -> dict[str, Any]:
    return copy.deepcopy(bundle.sample_variables)


def job_for(version: TemplateVersion, variables: dict[str, Any], **kwargs: Any) -> RenderJob:
    context = build_context(
        version,
        variables,
        reference=kwargs.pop("reference", "TEST-1"),
        status="draft",
        generated_on=date(2026, 11, 29),
        **kwargs,
    )
    return render_job(version, context)


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(content)).pages)


def squash(value: str) -> str:
    """Text without any whitespace: PDF extraction breaks lines wherever the layout did."""
    return re.sub(r"\s+", "", value)
