"""Reusable field types for request schemas; each failure names its field in the 422 problem.

Text from outside is checked here once, for every domain:

* `SafeText` (any free text) refuses control characters other than tab, line feed and carriage return: NUL
  cannot be stored in a PostgreSQL text column at all (asyncpg refuses it), and the others are invisible in a page
  or a PDF. Unpaired surrogates (which cannot be encoded as UTF-8) are refused with them.
* `PlainName` (a name, a title: one line that may reach a PDF) refuses every control character and the Unicode
  bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069), with which "Acme Ltd" can be made to show
  as another name than the one stored (the "Trojan Source" trick, CVE-2021-42574).
* `check_text_tree` applies the same rules to free-form JSON (a DPA's `variables`), naming the dotted path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints
from sqlmodel.main import SQLModelConfig

from dpa_service.core import registry
from dpa_service.core.exceptions import FieldError

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")

# C0 controls but tab, LF and CR; DEL; C1 controls; surrogates (only unpaired ones reach a Python str).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_LINE_BREAKS = re.compile("[\t\n\r]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# The same as a JSON Schema `pattern` (documented in OpenAPI, so generated clients and fuzzers send valid text).
SAFE_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
PLAIN_NAME_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"

CONTROL_MESSAGE = "must not contain control characters (such as NUL) other than tab and line breaks"
BIDI_MESSAGE = "must not contain Unicode bidirectional override or isolate characters (U+202A-U+202E, U+2066-U+2069)"
LINE_MESSAGE = "must be a single line (no tabs or line breaks)"

# Request bodies refuse unknown fields: a typo in legal data must not pass silently. SQLModelConfig (a ConfigDict
# TypedDict with SQLModel's extra keys, the type SQLModel declares for model_config) so that both SQLModel and plain
# pydantic models accept it; at runtime it is the same dict.
STRICT_BODY = SQLModelConfig(extra="forbid", str_strip_whitespace=True)


def text_problem(value: str, *, plain: bool = False) -> str | None:
    """Why `value` is refused as text (a name when `plain`), or None."""
    if _CONTROL.search(value):
        return CONTROL_MESSAGE
    if plain and _LINE_BREAKS.search(value):
        return LINE_MESSAGE
    if plain and _BIDI.search(value):
        return BIDI_MESSAGE
    return None


def safe_text(value: str) -> str:
    if (problem := text_problem(value)) is not None:
        raise ValueError(problem)
    return value


def plain_name(value: str) -> str:
    if (problem := text_problem(value, plain=True)) is not None:
        raise ValueError(problem)
    return value


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(key, f"{path}.{key}") if isinstance(key, str) and _CONTROL.search(key) else ()
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}.{index}")


def check_text_tree(value: Any, path: str, *, plain_under: tuple[str, ...] = ()) -> list[FieldError]:
    """Every string in a JSON tree checked as `SafeText`, and as `PlainName` below the dotted paths in
    `plain_under`; the errors name each string's dotted path (`variables.signatory.name`)."""
    errors: list[FieldError] = []
    for where, text in _walk(value, path):
        plain = any(where == p or where.startswith(f"{p}.") for p in plain_under)
        if (problem := text_problem(text, plain=plain)) is not None:
            errors.append(FieldError(where, problem))
    return errors


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("must be an e-mail address like name@example.com")
    return value


def _country(value: str) -> str:
    code = value.upper()
    if registry.country(code) is None:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code, e.g. DE")
    return code


# Free text (descriptions, statements, clauses: line breaks allowed) and one-line names; bound them with Field.
# The patterns go to the JSON Schema only: the validators give the readable message.
SafeText = Annotated[str, Field(json_schema_extra={"pattern": SAFE_TEXT_PATTERN}), AfterValidator(safe_text)]
PlainName = Annotated[str, Field(json_schema_extra={"pattern": PLAIN_NAME_PATTERN}), AfterValidator(plain_name)]

Email = Annotated[PlainName, StringConstraints(strip_whitespace=True, max_length=320), AfterValidator(_email)]
CountryCode = Annotated[str, StringConstraints(min_length=2, max_length=2), AfterValidator(_country)]
Name = Annotated[PlainName, Field(min_length=1, max_length=200)]
LegalName = Annotated[PlainName, Field(min_length=1, max_length=300)]
