"""A posted form checked by the same request schema as the JSON API: pydantic's errors become one `InvalidInput`
with the API's dotted field paths, so `views.field_errors` puts each message beside its field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from dpa_service.core.exceptions import FieldError, InvalidInput

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: dict[str, Any]) -> M:
    """`model` built from `data`, or InvalidInput naming every failing field."""
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
