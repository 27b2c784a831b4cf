"""The list envelope every collection uses: `{items, next_cursor}` with `?limit=` and `?cursor=`."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, NamedTuple, TypeVar

import msgspec
from litestar.params import QueryParameter
from pydantic import BaseModel

from dpa_service.core.exceptions import InvalidInput

T = TypeVar("T")
S = TypeVar("S")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

Limit = Annotated[
    int, QueryParameter(name="limit", ge=1, le=MAX_LIMIT, description="Page size, at most 200.", required=False)
]
Cursor = Annotated[
    str | None, QueryParameter(name="cursor", max_length=200, description="next_cursor of the previous page.")
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


_NOT_OURS = "is not a cursor this service issued"
# What the service encodes: a canonical UUID (the last row's id) or a sequence number that fits a 64-bit column.
# Anything else is refused before it reaches a query: `int()` and `uuid.UUID()` also read non-ASCII digits
# ('١٢٣' is 123 to Python), and a 1,000-digit number overflowed the database driver (a 500).
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SEQUENCE = re.compile(r"0|[1-9][0-9]{0,18}")
MAX_SEQUENCE = 2**63 - 1


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError) as exc:  # ValueError: a non-ASCII character in the cursor
        raise InvalidInput.field("cursor", _NOT_OURS) from exc


def decode_id_cursor(cursor: str | None) -> uuid.UUID | None:
    raw = decode_cursor(cursor)
    if raw is None:
        return None
    if not _CANONICAL_UUID.fullmatch(raw):
        raise InvalidInput.field("cursor", _NOT_OURS)
    return uuid.UUID(raw)


def decode_int_cursor(cursor: str | None) -> int:
    raw = decode_cursor(cursor)
    if raw is None:
        return 0
    if not _SEQUENCE.fullmatch(raw) or int(raw) > MAX_SEQUENCE:
        raise InvalidInput.field("cursor", _NOT_OURS)
    return int(raw)


def page_of(rows: Sequence[S], limit: int, to_item: Callable[[S], T], cursor_of: Callable[[S], str]) -> Page[T]:
    """Build a page from `limit + 1` fetched rows: the extra row only says there is more."""
    more = len(rows) > limit
    shown = rows[:limit]
    return Page[T](
        items=[to_item(row) for row in shown],
        next_cursor=encode_cursor(cursor_of(shown[-1])) if more and shown else None,
    )


class StructPage(NamedTuple):
    item: Any
    page: Any


def struct_page(model: type[BaseModel], name: str) -> StructPage:
    """msgspec twins of `model` and `Page[model]` (same fields, same JSON) for the busiest lists: rows become items
    without building pydantic objects, and Litestar encodes them natively. The OpenAPI schema comes from them too."""
    fields = [(field_name, info.annotation) for field_name, info in model.model_fields.items()]
    item = msgspec.defstruct(name, fields, kw_only=True)
    page = msgspec.defstruct(f"{name}Page", [("items", list[item]), ("next_cursor", str | None)], kw_only=True)  # type: ignore[valid-type]
    return StructPage(item, page)
