"""Errors on pages: the same statuses as the API, as HTML in the layout (a 404 page, a 409 explanation, a 429 with
Retry-After), and a visitor who is not signed in sent to `/login`."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.response import Redirect

from dpa_service.web.auth import SignInRequired
from dpa_service.web.views import render


def problem_page(request: Request[Any, Any, Any], status: int, heading: str, detail: str) -> Response[Any]:
    return render(request, "web/problem.html.j2", status=status, heading=heading, detail=detail, status_code=status)


def sign_in_redirect(request: Request[Any, Any, Any], exc: SignInRequired) -> Response[Any]:
    return Redirect(path=exc.location, status_code=303)
