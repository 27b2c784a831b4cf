"""`GET /verify-email/{token}`: the link e-mailed to every new user; opening it confirms the address is theirs.

No key and no session needed: the token is the secret. API.md has opening the link do it (not a button, as the
sign-in link has): confirming signs nobody in and grants no access, it only records that mail sent to the address
was read. The page is never cached and sends no referrer (the token is in its URL); the path is rate limited like
`/login` (http/rate_limits.py).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromPath
from litestar.response import Template

from dpa_service.core.exceptions import Gone, NotFound
from dpa_service.http.deps import DbDep
from dpa_service.users import verification
from dpa_service.users.pages import actor_of_visitor
from dpa_service.web.views import render

PAGE = "users/verify_email.html.j2"
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class EmailVerificationPage(Controller):
    tags = ["Identity"]

    @get(
        "/verify-email/{token:str}",
        operation_id="verifyEmail",
        exclude_from_auth=True,
        media_type="text/html",
        security=[],
    )
    async def verify_email(self, request: Request[Any, Any, Any], token: FromPath[str], db: DbDep) -> Template:
        """Confirm the address the link was e-mailed to (once): a page saying so; a used or expired link is a 410
        page, an unknown one 404."""
        try:
            confirmed = await verification.confirm(db, actor_of_visitor(request), token)
        except (NotFound, Gone) as exc:
            page = render(request, PAGE, status=exc.status_code, heading="This confirmation link cannot be used",
                          confirmed=None, detail=exc.detail)  # fmt: skip
        else:
            page = render(request, PAGE, heading="Your e-mail address is confirmed", confirmed=confirmed, detail="")
        page.headers.update(HEADERS)
        return page
