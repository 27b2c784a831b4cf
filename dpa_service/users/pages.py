"""Signing in and out of the web pages: `/login` (an e-mailed link, or an API key), `/login/{token}`, `/logout`.

The sign-in form always answers the same ("if an account uses that address...") so it cannot be used to find out
who has an account, and the e-mail goes out after the response. Opening the e-mailed link shows a button: only
its POST signs in, because mail scanners open links on their own.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from dpa_service.core.exceptions import InvalidInput
from dpa_service.core.identity import Actor
from dpa_service.core.mailer import Mail, Mailer
from dpa_service.http.deps import DbDep, MailerDep, SettingsDep, public_base_url
from dpa_service.users import signin
from dpa_service.web.auth import home_of, viewer
from dpa_service.web.sessions import start_session
from dpa_service.web.views import field_errors, form_data, one, render

LOGIN = "web/login.html.j2"


def _safe_next(value: Any) -> str:
    """Only a path of ours: never another site (`//evil.example`) or a scheme."""
    text = str(value or "")
    if text.startswith("/") and not text.startswith("//") and "\\" not in text and len(text) < 500:
        return text
    return ""


async def _send_all(mailer: Mailer, mails: list[Mail]) -> None:
    for mail in mails:
        await mailer.send(mail)


def _open(request: Request[Any, Any, Any], identity: signin.SessionIdentity, next_path: str) -> Redirect:
    start_session(
        request,
        {"user_id": str(identity.user_id), "api_key_id": str(identity.api_key_id) if identity.api_key_id else None},
    )
    return Redirect(path=next_path or "/", status_code=303)


class SignInPages(Controller):
    tags = ["Web pages"]
    include_in_schema = False

    @get("/", exclude_from_auth=True)
    async def root(self, request: Request[Any, Any, Any]) -> Redirect:
        """The front door: a signed-in user's home page, or the sign-in page."""
        principal = viewer(request)
        return Redirect(path=home_of(principal) if principal else "/login", status_code=303)

    @get("/login", exclude_from_auth=True)
    async def login_page(
        self, request: Request[Any, Any, Any], next: FromQuery[str] = "", ended: FromQuery[str] = ""
    ) -> Template:
        """The sign-in page: an e-mailed link, or an API key."""
        return render(request, LOGIN, heading="Sign in", next=_safe_next(next), ended=bool(ended), sent=None)

    @post("/login", exclude_from_auth=True, status_code=200)
    async def request_link(
        self, request: Request[Any, Any, Any], db: DbDep, mailer: MailerDep, settings: SettingsDep
    ) -> Response[Any]:
        """E-mail a single-use sign-in link (15 minutes) to every account using the address."""
        form = await form_data(request)
        next_path = _safe_next(form.get("next"))
        try:
            login_url = f"{public_base_url(request, settings)}/login"
            mails = await signin.request_links(db, actor_of_visitor(request), one(form, "email"), login_url, next_path)
        except InvalidInput as exc:
            return render(request, LOGIN, status=422, heading="Sign in", next=next_path, ended=False, sent=None,
                          errors=field_errors(exc), form=form)  # fmt: skip
        page = render(request, LOGIN, heading="Sign in", next=next_path, ended=False, sent=one(form, "email").strip())
        page.background = BackgroundTask(_send_all, mailer, mails)
        return page

    @post("/login/key", exclude_from_auth=True, status_code=200)
    async def key_sign_in(self, request: Request[Any, Any, Any], db: DbDep) -> Response[Any]:
        """Sign in with an API key; the session lasts until sign-out, a timeout, or the key's revocation."""
        form = await form_data(request)
        next_path = _safe_next(form.get("next"))
        try:
            identity = await signin.sign_in_with_key(db, actor_of_visitor(request), one(form, "api_key"))
        except InvalidInput as exc:
            return render(request, LOGIN, status=422, heading="Sign in", next=next_path, ended=False, sent=None,
                          errors=field_errors(exc), form={})  # fmt: skip
        return _open(request, identity, next_path)

    @get("/login/{token:str}", exclude_from_auth=True)
    async def link_page(
        self, request: Request[Any, Any, Any], token: FromPath[str], db: DbDep, next: FromQuery[str] = ""
    ) -> Template:
        """The e-mailed link: a button that signs in (a used or expired link is 410, an unknown one 404)."""
        await signin.check_link(db, token)
        return render(request, "web/login_link.html.j2", heading="Sign in", token=token, next=_safe_next(next))

    @post("/login/{token:str}", exclude_from_auth=True, status_code=200)
    async def link_sign_in(self, request: Request[Any, Any, Any], token: FromPath[str], db: DbDep) -> Response[Any]:
        """Use the e-mailed link (once) and open a session."""
        form = await form_data(request)
        identity = await signin.sign_in_with_link(db, actor_of_visitor(request), token)
        return _open(request, identity, _safe_next(form.get("next")))

    @post("/logout", exclude_from_auth=True, status_code=200)
    async def logout(self, request: Request[Any, Any, Any]) -> Redirect:
        """End the session (its stored data is deleted, not only the cookie)."""
        request.clear_session()
        return Redirect(path="/login", status_code=303)


def actor_of_visitor(request: Request[Any, Any, Any]) -> Actor:
    """The audit actor of someone not yet signed in: only where they came from."""
    return Actor(
        user_id=None,
        role=None,
        tenant_id=None,
        ip=request.client.host if request.client else None,
        user_agent=(request.headers.get("user-agent") or "")[:500] or None,
    )
