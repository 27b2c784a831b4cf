"""What every page handler uses: render a template in the layout, redirect after a POST, flash a message to the
next page, read a form, and show a service's field errors beside their fields.

Form fields are named by the same dotted paths as the JSON API's fields (`variables.controller.legal_name`), so a
service's `InvalidInput` errors land next to the field that caused them without any mapping table.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Request
from litestar.response import Redirect, Template

from dpa_service.core.exceptions import InvalidInput
from dpa_service.web.auth import viewer
from dpa_service.web.nav import navigation

_FLASH = "flash"


def render(request: Request[Any, Any, Any], template: str, *, status: int = 200, **context: Any) -> Template:
    """`template` in the layout, with the viewer, the navigation and any message flashed by the last redirect."""
    principal = viewer(request)
    session = request.scope.get("session") or {}
    flashed = session.pop(_FLASH, []) if isinstance(session, dict) else []
    base: dict[str, Any] = {
        "viewer": principal,
        "nav": navigation(principal, request.url.path),
        "flashed": flashed,
        "errors": {},
        "form": {},
    }
    return Template(template_name=template, context={**base, **context}, status_code=status)


def flash(request: Request[Any, Any, Any], message: str, kind: str = "success") -> None:
    session = request.scope.get("session")
    if isinstance(session, dict) and session:
        session.setdefault(_FLASH, []).append({"kind": kind, "message": message})


def redirect(request: Request[Any, Any, Any], path: str, message: str | None = None) -> Redirect:
    """POST-redirect-GET: 303 to `path`, with `message` shown there once."""
    if message:
        flash(request, message)
    return Redirect(path=path, status_code=303)


async def form_data(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The posted form as a dict; a field sent several times (checkboxes) becomes a list. The CSRF token is not
    part of it."""
    form = await request.form()
    data: dict[str, Any] = {}
    for key in form:
        if key == "_csrf_token":
            continue
        values = form.getall(key)
        data[key] = values if len(values) > 1 else values[0]
    return data


def next_page(path: str, cursor: str | None, *, cursor_name: str = "cursor", **params: str | None) -> str | None:
    """The link to a list's next page (None on the last): `path` with the filters that are set, and the cursor,
    query-encoded."""
    if not cursor:
        return None
    return f"{path}?{urlencode({**{k: v for k, v in params.items() if v}, cursor_name: cursor})}"


def one(form: dict[str, Any], key: str) -> str:
    """A field that takes one value ("" when absent). Sent twice, it is refused rather than stored as a list's
    text."""
    value = form.get(key)
    if isinstance(value, list):
        raise InvalidInput.field(key, "was sent more than once")
    return "" if value is None else str(value)


def field_errors(exc: InvalidInput) -> dict[str, str]:
    """A service's errors by field path (the first message per field)."""
    found: dict[str, str] = {}
    for error in exc.errors:
        found.setdefault(error.field, error.message)
    return found


def lines(value: Any) -> list[str]:
    """A list typed one item per line in a textarea (or sent as repeated fields)."""
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [line.strip() for line in str(value or "").splitlines() if line.strip()]


def unflatten(data: dict[str, Any]) -> dict[str, Any]:
    """`{"a.b": 1}` -> `{"a": {"b": 1}}`: dotted form names back into the API's nested shape."""
    nested: dict[str, Any] = {}
    for key, value in data.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InvalidInput.field(key, "conflicts with another field")
        node[leaf] = value
    return nested
