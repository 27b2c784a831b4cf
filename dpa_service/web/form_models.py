"""A posted form read into the same request schema the JSON API validates, so a page and its API call refuse the
same input with the same message, beside the same field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from dpa_service.core.exceptions import FieldError, InvalidInput

M = TypeVar("M", bound=BaseModel)


def parse_form(model: type[M], data: dict[str, Any]) -> M:
    """`data` as `model`, or `InvalidInput` naming each failing field by its dotted path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(
                ".".join(str(part) for part in error["loc"]) or "body", error["msg"].removeprefix("Value error, ")
            )
            for error in exc.errors()
        ]
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors), errors) from exc
