"""Check a DPA's variables: the template's JSON Schema, then the rules the schema cannot say.

Every failure is reported, each with its dotted path from the request body (e.g.
`variables.controller.legal_name`), so the Subscriber fixes everything in one go. Nothing is rendered
until the variables pass.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.exceptions import FieldError, InvalidInput
from dpa_service.core.validation import check_text_tree

# Variables that print as a party's name or a signatory's on the PDF: one line, no bidirectional overrides.
NAME_VARIABLES = (
    "controller.legal_name",
    "controller.registration_number",
    "controller.contact_email",
    "signatory.name",
    "signatory.title",
    "signatory.email",
    "controller.contact_person.name",
    "controller.contact_person.position",
    "controller.contact_person.email",
    "controller.contact_person.phone",
)


@lru_cache(maxsize=32)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json), format_checker=Draft202012Validator.FORMAT_CHECKER)


def validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    return _validator(json.dumps(schema, sort_keys=True))


def check_schema(schema: dict[str, Any]) -> list[FieldError]:
    try:
        Draft202012Validator.check_schema(schema)
    except Exception as exc:
        return [FieldError("variables_schema", f"is not a valid JSON Schema: {getattr(exc, 'message', exc)}")]
    return []


def _path(prefix: str, parts: Any) -> str:
    return ".".join([prefix, *(str(p) for p in parts)]) if prefix else ".".join(str(p) for p in parts)


def _schema_errors(error: ValidationError, prefix: str) -> list[FieldError]:
    where = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        return [
            FieldError(_path(prefix, [*where, name]), "is required")
            for name in error.validator_value
            if name not in error.instance
        ]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        return [
            FieldError(_path(prefix, [*where, name]), "is not a field of this template")
            for name in error.instance
            if name not in known
        ]
    return [FieldError(_path(prefix, where) or prefix or "variables", error.message)]


def _member(variables: dict[str, Any], group: str, name: str) -> Any:
    """`variables[group][name]` when `group` is an object; the schema reports a group of another type."""
    value = variables.get(group)
    return value.get(name) if isinstance(value, dict) else None


# The parts of a DPA the service itself reads (documents, signing, records): objects, whatever a template's schema
# says (a template posted without one accepts any variables).
OBJECT_VARIABLES = ("controller", "signatory", "processing", "transfers")


def _dpa_rules(variables: dict[str, Any], prefix: str) -> list[FieldError]:
    """Rules from reference data: mechanism codes exist, the law is an EU/EEA state's, countries are real; and
    the parts the service reads are objects."""
    errors = [
        FieldError(_path(prefix, [group]), "must be an object")
        for group in OBJECT_VARIABLES
        if group in variables and not isinstance(variables[group], dict)
    ]
    mechanisms = _member(variables, "transfers", "mechanisms")
    if isinstance(mechanisms, list):
        today = utcnow().date()  # the injected clock's: a DPA "made in 2019" may still offer Privacy Shield
        for index, code in enumerate(mechanisms):
            problem = mechanism_problem(code, today) if isinstance(code, str) else None
            if problem is not None:
                errors.append(FieldError(_path(prefix, ["transfers", "mechanisms", index]), problem))
    law = variables.get("governing_law")
    if isinstance(law, str):
        country = registry.country(law)
        if country is None or not country.eea:
            errors.append(
                FieldError(_path(prefix, ["governing_law"]), "must be the ISO code of an EU/EEA member state")
            )
    controller_country = _member(variables, "controller", "country")
    if isinstance(controller_country, str):
        problem = controller_country_problem(controller_country)
        if problem is not None:
            errors.append(FieldError(_path(prefix, ["controller", "country"]), problem))
    return errors


# The DPA's transfer clauses (SCC Module Two, the UK Addendum, the Swiss adaptations) fit a controller exporting
# under EU/EEA, UK or Swiss law. A controller established elsewhere is refused rather than given a text whose
# Clause 12 does not describe its transfers (Module Four, an EEA processor sending data back to a non-EEA
# controller, is not how this service is run: the processor may itself sit outside the EEA).
CONTROLLER_REGIMES = ("GB", "CH")


def controller_country_problem(code: str) -> str | None:
    country = registry.country(code)
    if country is None:
        return "is not an ISO 3166-1 alpha-2 country code"
    if country.eea or code in CONTROLLER_REGIMES:
        return None
    return (
        f"must be in the EU/EEA, the United Kingdom or Switzerland: this DPA covers exports under their law, and "
        f"a controller established in {country.name} needs an agreement drafted for its own law"
    )


def mechanism_problem(code: str, day: Any) -> str | None:
    """Why a DPA made on `day` cannot offer `code` (None: it can): unknown, never a DPA mechanism (Article 49),
    or not in force that day under any regime's law (withdrawn, closed to new contracts, or not yet valid)."""
    catalogue = registry.mechanisms()
    mechanism = catalogue.get(code)
    if mechanism is None:
        return f"unknown mechanism; use one of: {', '.join(sorted(catalogue))}"
    if not mechanism.dpa_selectable:
        return f"{mechanism.name} is never a DPA mechanism: it cannot cover the systematic transfers a DPA governs"
    if any(mechanism.in_force_on(day, origin) for origin in mechanism.regimes):
        return None
    starts = min(terms.valid_from for terms in mechanism.regimes.values())
    if day < starts:
        return f"{mechanism.name} is not in force yet on {day.isoformat()}"
    reason = mechanism.invalid_reason or "it is closed to new contracts"
    return f"{mechanism.name} is not in force for a DPA made on {day.isoformat()}: {reason}"


def validate_variables(schema: dict[str, Any], variables: Any, *, prefix: str = "variables") -> None:
    """Raise InvalidInput listing every failing field, or return quietly."""
    errors: list[FieldError] = []
    for error in sorted(validator_for(schema).iter_errors(variables), key=lambda e: list(map(str, e.absolute_path))):
        errors.extend(_schema_errors(error, prefix))
    if isinstance(variables, dict):
        reported = {e.field for e in errors}
        errors.extend(e for e in _dpa_rules(variables, prefix) if e.field not in reported)
    names = tuple(_path(prefix, name.split(".")) for name in NAME_VARIABLES)
    errors.extend(check_text_tree(variables, prefix or "variables", plain_under=names))
    if errors:
        unique = list(dict.fromkeys(errors))
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in unique), unique)
