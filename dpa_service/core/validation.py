"""Reusable field types for request schemas; each failure names its field in the 422 problem."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints
from sqlmodel.main import SQLModelConfig

from dpa_service.core import registry

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")

# Request bodies refuse unknown fields: a typo in legal data must not pass silently. SQLModelConfig (a ConfigDict
# TypedDict with SQLModel's extra keys, the type SQLModel declares for model_config) so that both SQLModel and plain
# pydantic models accept it; at runtime it is the same dict.
STRICT_BODY = SQLModelConfig(extra="forbid", str_strip_whitespace=True)


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("must be an e-mail address like name@example.com")
    return value


def _country(value: str) -> str:
    code = value.upper()
    if registry.country(code) is None:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code, e.g. DE")
    return code


Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=320), AfterValidator(_email)]
CountryCode = Annotated[str, StringConstraints(min_length=2, max_length=2), AfterValidator(_country)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
LegalName = Annotated[str, Field(min_length=1, max_length=300)]
