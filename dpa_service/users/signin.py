"""Signing in to the web pages: an e-mailed single-use link, or an API key; and the principal a session stands for.

A link is good for 15 minutes and once. Only its SHA-256 is stored, so a leaked database opens no session. An
address may ask for a few links per quarter hour: beyond that nothing more is sent (and the visitor is told the
same as always, so the form never reveals whether an address has an account). An address belongs to one account.

Signing in with a link proves the user reads mail sent to the address, as a confirmation link does: the first such
sign-in verifies an unverified address (`sign_in_link`, see `verification`).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from sqlalchemy import func, select, update
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import AuthenticationError, Gone, InvalidInput, NotFound
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.core.mailer import Mail
from dpa_service.users.keys import authenticate
from dpa_service.users.models import ApiKey, SignInLink, User, VerificationMethod
from dpa_service.users.verification import mark_verified

LINK_MINUTES = 15
LINKS_PER_ADDRESS = 5
"""At most this many links per address within LINK_MINUTES."""


@dataclass(frozen=True)
class SessionIdentity:
    """What a web session stores: who signed in, and with which key (None for an e-mail link)."""

    user_id: uuid.UUID
    api_key_id: uuid.UUID | None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _normalized_email(email: str) -> str:
    address = email.strip().lower()
    local, at, domain = address.partition("@")
    if not at or not local or "." not in domain or len(address) > 320 or any(c.isspace() for c in address):
        raise InvalidInput.field("email", "must be an e-mail address such as name@example.com")
    return address


async def request_links(db: Database, actor: Actor, email: str, login_url: str, next_path: str = "") -> list[Mail]:
    """Make a link for every account using `email` and return the mails to send (after the commit). Refuses a
    malformed address (422 on `email`); an unknown address or one over its allowance gets no mail, silently."""
    address = _normalized_email(email)
    now = utcnow()
    mails: list[Mail] = []
    async with db.transaction(Scope.system()) as session:
        recent = await session.scalar(
            select(func.count())
            .select_from(SignInLink)
            .where(col(SignInLink.email) == address, col(SignInLink.created_at) > now - timedelta(minutes=LINK_MINUTES))
        )
        if (recent or 0) >= LINKS_PER_ADDRESS:
            return []
        users = (await session.execute(select(User).where(col(User.email) == address))).scalars().all()
        for user in users:
            token = secrets.token_urlsafe(32)
            link = SignInLink(
                tenant_id=user.tenant_id,
                user_id=user.id,
                email=address,
                token_hash=_token_hash(token),
                created_at=now,
                expires_at=now + timedelta(minutes=LINK_MINUTES),
            )
            session.add(link)
            await audit.record(
                session, actor, "sign_in.link_sent", "user", user.id, tenant_id=user.tenant_id, data={"email": address}
            )
            back = f"?next={quote(next_path, safe='/')}" if next_path else ""
            mails.append(_link_mail(user, f"{login_url}/{token}{back}"))
    return mails


def _link_mail(user: User, url: str) -> Mail:
    account = "processor staff" if user.tenant_id is None else "your organisation's account"
    body = (
        f"Hello {user.name},\n\n"
        f"Sign in to the DPA service ({account}, role {user.role}) with this link. It works once, for "
        f"{LINK_MINUTES} minutes:\n{url}\n\n"
        "If you did not ask to sign in, ignore this e-mail: nobody can use the link without your inbox."
    )
    return Mail(to=user.email, subject="Your sign-in link for the DPA service", body=body)


async def _open_link(db: Database, token: str, *, consume: bool) -> SignInLink:
    if not token or len(token) > 100:
        raise NotFound("This sign-in link is not valid. Ask for a new one.")
    async with db.transaction(Scope.system(), write=consume) as session:
        query = select(SignInLink).where(col(SignInLink.token_hash) == _token_hash(token))
        link = await session.scalar(query.with_for_update() if consume else query)
        if link is None:
            raise NotFound("This sign-in link is not valid. Ask for a new one.")
        if link.used_at is not None:
            raise Gone("This sign-in link was used already. Ask for a new one.")
        if link.expires_at <= utcnow():
            raise Gone(f"This sign-in link expired ({LINK_MINUTES} minutes after it was sent). Ask for a new one.")
        if consume:
            # Signing in uses up every link the user still had open, not only this one.
            await session.execute(
                update(SignInLink)
                .where(col(SignInLink.user_id) == link.user_id, col(SignInLink.used_at).is_(None))
                .values(used_at=utcnow())
            )
            await session.refresh(link)
        return link


async def check_link(db: Database, token: str) -> None:
    """Whether a link can still be used (404 unknown, 410 used or expired), without using it: e-mail scanners
    open links, so only the confirming POST signs in."""
    await _open_link(db, token, consume=False)


async def sign_in_with_link(db: Database, actor: Actor, token: str) -> SessionIdentity:
    """Use a link (once) and audit the sign-in in the user's chain."""
    async with db.transaction(Scope.system()) as session:
        link = await _open_link(db, token, consume=True)
        await audit.record(
            session, actor, "sign_in.completed", "user", link.user_id, tenant_id=link.tenant_id,
            data={"method": "email_link"},
        )  # fmt: skip
        await mark_verified(session, actor, link.user_id, link.email, VerificationMethod.SIGN_IN_LINK)
        return SessionIdentity(link.user_id, None)


async def sign_in_with_key(db: Database, actor: Actor, key: str) -> SessionIdentity:
    """Sign in with an API key (staff and automation); the session ends when the key is revoked."""
    try:
        principal = await authenticate(db, key.strip())
    except AuthenticationError as exc:
        raise InvalidInput.field("api_key", "is not a valid API key (or it was revoked)") from exc
    async with db.transaction(Scope.system()) as session:
        await audit.record(
            session, actor, "sign_in.completed", "user", principal.user_id, tenant_id=principal.tenant_id,
            data={"method": "api_key", "api_key_id": str(principal.api_key_id)},
        )  # fmt: skip
    return SessionIdentity(principal.user_id, principal.api_key_id)


_USER_BY_ID = select(col(User.id), col(User.tenant_id), col(User.role), col(User.email), col(User.name))


async def session_principal(db: Database, user_id: uuid.UUID, api_key_id: uuid.UUID | None) -> Principal | None:
    """The principal a session stands for, read afresh on every request (one indexed select), or None when the
    user is gone or the key the session was opened with has been revoked."""
    query = _USER_BY_ID.where(col(User.id) == user_id)
    if api_key_id is not None:
        query = query.join(ApiKey, col(ApiKey.user_id) == User.id).where(
            col(ApiKey.id) == api_key_id, col(ApiKey.revoked_at).is_(None)
        )
    async with db.read_connection(Scope.system()) as conn:
        row = (await conn.execute(query)).one_or_none()
    if row is None:
        return None
    found_id, tenant_id, role, email, name = row
    return Principal(found_id, tenant_id, Role(role), email, name, api_key_id)
