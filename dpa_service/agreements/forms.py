"""The DPA request form, generated from the template version's variables JSON Schema.

One field per schema property, named by the API's dotted path (`variables.controller.legal_name`), so the service's
`InvalidInput` lands beside the field that caused it. Nested objects become fieldsets, arrays of strings a textarea
with one item per line, the transfer mechanisms checkboxes from the catalogue, country codes a select of names.
A field left empty is sent as null (a JSON merge patch removes it), so clearing an optional field clears it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from dpa_service.agreements.models import CustomClause
from dpa_service.core import registry
from dpa_service.core.exceptions import FieldError, InvalidInput
from dpa_service.web.views import lines, one, unflatten

ROOT = "variables"
MECHANISMS = "variables.transfers.mechanisms"
GOVERNING_LAW = "variables.governing_law"
CLAUSE_ROWS = 3
_COUNTRY_PATTERN = "^[A-Z]{2}$"

# Where the schema's description speaks of codes, the form shows names: these hints say it in the form's words.
_HINTS = {
    MECHANISMS: "The legal mechanisms that cover transfers of your end users' data outside the EU/EEA.",
    GOVERNING_LAW: "The EU/EEA Member State whose law governs the DPA and whose courts have jurisdiction.",
    "variables.controller.country": "Your country of establishment.",
}


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    hint: str | None
    kind: str  # group | text | email | textarea | lines | select | checkboxes
    required: bool = False
    options: tuple[tuple[str, str], ...] = ()
    children: tuple[FormField, ...] = field(default_factory=tuple)


def _label(name: str, schema: dict[str, Any]) -> str:
    return str(schema.get("title") or name.replace("_", " ").capitalize())


def _countries(eea_only: bool) -> tuple[tuple[str, str], ...]:
    found = [c for c in registry.countries().values() if c.eea or not eea_only]
    return tuple((c.code, c.name) for c in sorted(found, key=lambda c: c.name))


def _leaf(
    path: str, name: str, schema: dict[str, Any], required: bool, mechanisms: Sequence[tuple[str, str]]
) -> FormField:
    hint = _HINTS.get(path, schema.get("description"))
    label = _label(name, schema)
    if schema.get("type") == "array":
        if path == MECHANISMS:
            return FormField(path, label, hint, "checkboxes", required, tuple(mechanisms))
        return FormField(path, label, f"{hint or ''} One per line.".strip(), "lines", required)
    if schema.get("pattern") == _COUNTRY_PATTERN:
        return FormField(path, label, hint, "select", required, _countries(eea_only=path == GOVERNING_LAW))
    if schema.get("format") == "email":
        return FormField(path, label, hint, "email", required)
    kind = "textarea" if int(schema.get("maxLength", 0)) >= 500 else "text"
    return FormField(path, label, hint, kind, required)


def build_fields(
    schema: dict[str, Any], mechanisms: Sequence[tuple[str, str]], path: str = ROOT
) -> tuple[FormField, ...]:
    """The form for `schema` (an object schema); `mechanisms` are the catalogue's (code, label) pairs."""
    required = set(schema.get("required", []))
    fields = []
    for name, sub in schema.get("properties", {}).items():
        where = f"{path}.{name}"
        if sub.get("type") == "object":
            children = build_fields(sub, mechanisms, where)
            fields.append(FormField(where, _label(name, sub), sub.get("description"), "group", name in required,
                                    children=children))  # fmt: skip
        else:
            fields.append(_leaf(where, name, sub, name in required, mechanisms))
    return tuple(fields)


def leaves(fields: Sequence[FormField]) -> Iterator[FormField]:
    for f in fields:
        if f.kind == "group":
            yield from leaves(f.children)
        else:
            yield f


def _listed(f: FormField) -> bool:
    return f.kind in ("lines", "checkboxes")


def variables_from(fields: Sequence[FormField], form: dict[str, Any]) -> dict[str, Any]:
    """The posted form as the API's `variables` (empty fields null, lists split one item per line)."""
    flat: dict[str, Any] = {}
    for f in leaves(fields):
        raw = form.get(f.name)
        if _listed(f):
            flat[f.name] = lines(raw) or None
        else:
            text = str(raw[-1] if isinstance(raw, list) else raw or "").strip()
            flat[f.name] = text or None
    variables = unflatten(flat).get(ROOT, {})
    for section in variables.values():
        _drop_blank_objects(section)
    return variables


def _drop_blank_objects(node: Any) -> None:
    """An object inside a section left wholly blank (an optional one, such as `controller.contact_person`) is
    omitted rather than sent with every field null; a blank section itself stays, so its required fields are named."""
    if not isinstance(node, dict):
        return
    for key, value in list(node.items()):
        if isinstance(value, dict):
            _drop_blank_objects(value)
            if all(v is None for v in value.values()):
                del node[key]


def _lookup(variables: dict[str, Any], name: str) -> Any:
    node: Any = variables
    for part in name.split(".")[1:]:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def values_from(fields: Sequence[FormField], variables: dict[str, Any]) -> dict[str, Any]:
    """An agreement's variables as form values (lists one per line, mechanisms as the checked codes)."""
    values: dict[str, Any] = {}
    for f in leaves(fields):
        value = _lookup(variables, f.name)
        if value is None:
            continue
        if f.kind == "checkboxes":
            values[f.name] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        elif f.kind == "lines":
            values[f.name] = "\n".join(str(v) for v in value) if isinstance(value, list) else str(value)
        else:
            values[f.name] = str(value)
    return values


def kept(fields: Sequence[FormField], form: dict[str, Any]) -> dict[str, Any]:
    """The posted form as it is shown again after an error: exactly what was typed, checkboxes as a list."""
    values = dict(form)
    for f in leaves(fields):
        if f.kind == "checkboxes":
            values[f.name] = lines(form.get(f.name))
    return values


def prefill(profile: Any, name: str, email: str) -> dict[str, Any]:
    """A new request: the controller from the tenant profile, the signed-in user as signatory."""
    values = {
        "variables.controller.legal_name": profile.legal_name,
        "variables.controller.address": profile.address,
        "variables.controller.country": profile.country,
        "variables.controller.registration_number": profile.registration_number,
        "variables.controller.contact_email": profile.contact_email,
        "variables.signatory.name": name,
        "variables.signatory.email": email,
    }
    country = registry.country(profile.country or "")
    if country is not None and country.eea:
        values[GOVERNING_LAW] = country.code
    return {key: value for key, value in values.items() if value}


# --- Custom clauses ------------------------------------------------------------------------------------------


def _posted_rows(form: dict[str, Any]) -> list[dict[str, str]]:
    rows, index = [], 0
    while f"custom_clauses.{index}.title" in form or f"custom_clauses.{index}.text" in form:
        rows.append({key: one(form, f"custom_clauses.{index}.{key}") for key in ("title", "text")})
        index += 1
    return rows


def clause_rows(form: dict[str, Any], stored: Sequence[dict[str, str]] = ()) -> list[dict[str, str]]:
    """The clause rows the form shows: the posted ones (else the stored ones), then blank rows: at least three
    rows, and always one blank row to add a clause."""
    rows = _posted_rows(form) or [{"title": c["title"], "text": c["text"]} for c in stored]
    filled = sum(1 for row in rows if row["title"].strip() or row["text"].strip())
    while len(rows) < max(CLAUSE_ROWS, filled + 1):
        rows.append({"title": "", "text": ""})
    return rows


def clauses_from(form: dict[str, Any]) -> list[CustomClause]:
    """The filled clause rows (a row left wholly blank is skipped); an incomplete row names its field."""
    clauses, errors = [], []
    for index, row in enumerate(_posted_rows(form)):
        if not row["title"].strip() and not row["text"].strip():
            continue
        try:
            clauses.append(CustomClause.model_validate(row))
        except ValidationError as exc:
            errors += invalid_from(exc, f"custom_clauses.{index}").errors
    if errors:
        raise InvalidInput("A custom clause is incomplete.", errors)
    return clauses


def invalid_from(exc: ValidationError, prefix: str = "") -> InvalidInput:
    """A pydantic error as the service's InvalidInput, each field by its dotted path."""
    errors = []
    for error in exc.errors():
        where = ".".join([prefix, *(str(p) for p in error["loc"])] if prefix else [str(p) for p in error["loc"]])
        message = "is required" if error["type"] in ("missing", "string_too_short") else error["msg"]
        errors.append(FieldError(where, message))
    return InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors), errors)


def placed(errors: dict[str, str], names: set[str]) -> dict[str, str]:
    """Errors by form field: a list item's error (`...mechanisms.0`) goes to its list's field."""
    found: dict[str, str] = {}
    for where, message in errors.items():
        target = where
        while target not in names and "." in target and target.rsplit(".", 1)[1].isdigit():
            target = target.rsplit(".", 1)[0]
        found.setdefault(target, message)
    return found
