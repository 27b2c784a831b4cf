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
from dpa_service.core.exceptions import FieldError, InvalidInput


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


def _dpa_rules(variables: dict[str, Any], prefix: str) -> list[FieldError]:
    """Rules from reference data: mechanism codes exist, the law is an EU/EEA state's, countries are real."""
    errors: list[FieldError] = []
    mechanisms = (variables.get("transfers") or {}).get("mechanisms")
    if isinstance(mechanisms, list):
        catalogue = registry.mechanisms()
        for index, code in enumerate(mechanisms):
            if isinstance(code, str) and code not in catalogue:
                known = ", ".join(sorted(catalogue))
                errors.append(
                    FieldError(
                        _path(prefix, ["transfers", "mechanisms", index]), f"unknown mechanism; use one of: {known}"
                    )
                )
    law = variables.get("governing_law")
    if isinstance(law, str):
        country = registry.country(law)
        if country is None or not country.eea:
            errors.append(
                FieldError(_path(prefix, ["governing_law"]), "must be the ISO code of an EU/EEA member state")
            )
    controller_country = (variables.get("controller") or {}).get("country")
    if isinstance(controller_country, str) and registry.country(controller_country) is None:
        errors.append(FieldError(_path(prefix, ["controller", "country"]), "is not an ISO 3166-1 alpha-2 country code"))
    return errors


def validate_variables(schema: dict[str, Any], variables: Any, *, prefix: str = "variables") -> None:
    """Raise InvalidInput listing every failing field, or return quietly."""
    errors: list[FieldError] = []
    for error in sorted(validator_for(schema).iter_errors(variables), key=lambda e: list(map(str, e.absolute_path))):
        errors.extend(_schema_errors(error, prefix))
    if isinstance(variables, dict):
        errors.extend(_dpa_rules(variables, prefix))
    if errors:
        unique = list(dict.fromkeys(errors))
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in unique), unique)
