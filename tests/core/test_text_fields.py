"""Every text field of every request body refuses NUL and other control characters, and every name refuses the
bidirectional overrides that make a PDF show another name than the one stored (issue 16, "No input yields a 5xx":
asyncpg refuses NUL in a PostgreSQL text column, so one unchecked field was a 500)."""

from __future__ import annotations

import importlib
import pkgutil
import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

import dpa_service
from dpa_service.core.validation import check_text_tree

# Free-form JSON, checked by the service with dotted paths (variables), or a JSON Schema (checked as one).
FREE_FORM = {"variables", "variables_schema", "sample_variables", "tenant_ids"}


def request_models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for module_info in pkgutil.walk_packages(dpa_service.__path__, "dpa_service."):
        if not module_info.name.endswith("models") or ".migrations" in module_info.name:
            continue
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.__module__ == module.__name__
                and value.model_config.get("extra") == "forbid"
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


def _takes_text(annotation: Any) -> str | None:
    """'str' for a text field, 'list' for a list of texts, else None."""
    origin = typing.get_origin(annotation)
    if annotation is str:
        return "str"
    if origin is typing.Annotated:
        return _takes_text(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        kinds = {_takes_text(arg) for arg in typing.get_args(annotation)} - {None}
        return kinds.pop() if len(kinds) == 1 else None
    if origin is list:
        return "list" if _takes_text(typing.get_args(annotation)[0]) == "str" else None
    return None


def text_fields() -> list[tuple[str, Any, str]]:
    fields = []
    for model in request_models():
        for name, info in model.model_fields.items():
            kind = _takes_text(info.annotation)
            if kind and name not in FREE_FORM:
                annotated = typing.Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
                fields.append((f"{model.__name__}.{name}", annotated, kind))
    return fields


def test_the_walk_finds_the_request_bodies() -> None:
    names = {model.__name__ for model in request_models()}
    assert {"AgreementCreate", "TenantUpdate", "BreachNoticeCreate", "TemplateCreate", "Signer"} <= names
    assert len(text_fields()) > 60


@pytest.mark.parametrize(("field", "annotation", "kind"), text_fields(), ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x7f", "\x85"])
def test_every_text_field_refuses_control_characters(field: str, annotation: Any, kind: str, control: str) -> None:
    adapter = TypeAdapter(annotation)
    bad = f"acme{control}@example.com"  # shaped like an e-mail address, so only the control character is wrong
    # Refused: by the text rule, or by a stricter one the field has (a pattern, a country code).
    with pytest.raises(ValidationError):
        adapter.validate_python([bad] if kind == "list" else bad)


NAMES = [
    "AgreementCreate.template_key", "CustomClause.title", "Signer.name", "Signer.title", "TenantCreate.legal_name",
    "TenantCreate.name", "TenantUpdate.legal_name", "TenantUpdate.contact_name", "TemplateCreate.title",
    "UserCreate.name", "StaffCreate.name", "SubprocessorItem.name", "SubprocessorItem.entity",
    "DeletionCertificateCreate.systems", "TransferCreate.importer",
]  # fmt: skip


@pytest.mark.parametrize("field", NAMES)
def test_names_that_reach_a_pdf_refuse_bidi_overrides(field: str) -> None:
    annotation, kind = next((a, k) for name, a, k in text_fields() if name == field)
    adapter = TypeAdapter(annotation)
    for bad in ("Acme \u202egnp.exe", "Acme \u2066Ltd\u2069"):
        with pytest.raises(ValidationError, match="bidirectional"):
            adapter.validate_python([bad] if kind == "list" else bad)


def test_free_text_keeps_line_breaks_and_tabs() -> None:
    from dpa_service.obligations.breaches_models import BreachNoticeUpdateCreate

    assert BreachNoticeUpdateCreate(text="line one\n\tline two\r\n").text == "line one\n\tline two"


def test_a_json_tree_names_the_dotted_path_of_each_bad_string() -> None:
    tree = {"signatory": {"name": "A\u202eB"}, "processing": {"categories": ["ok", "x\x00"]}, "n": 1}
    errors = check_text_tree(tree, "variables", plain_under=("variables.signatory",))
    assert [e.field for e in errors] == ["variables.signatory.name", "variables.processing.categories.1"]
