"""Showing that a user's e-mail address is theirs: single-use confirmation links, and sign-in by e-mail link.

Every new user (a tenant's first owner, a user an owner or admin adds, a member of staff) is e-mailed a link to
`/verify-email/{token}`; opening it marks the address verified (`confirmation_link`). Signing in with an e-mailed
sign-in link proves the same, and verifies it too (`sign_in_link`). A link works once and for CONFIRM_DAYS days;
only its SHA-256 is stored. Only a verified user is handed an embedded signing link for themself (agreements).

Links leave through the mailer once the transaction has committed, as sign-in and signing links do, and not through
the outbox: the outbox keeps each e-mail's body in the database (`mail_deliveries`), and a token kept there in
clear would undo storing only its hash. A failed send is logged; an owner or admin (or the user) asks for a new one.

Addresses never change once an account exists (no endpoint edits them), so a verification stays true; the link
and the user must still name the same address when it is used.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core.clock import as_utc, utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import Conflict, Gone, NotFound
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.core.mailer import Mail, Mailer
from dpa_service.users.models import EmailConfirmation, User, VerificationMethod, VerificationSent

logger = logging.getLogger("dpa_service.users")

CONFIRM_DAYS = 7
"""A confirmation link works this long: a week leaves time for holidays without leaving a link open for ever."""
LINKS_PER_DAY = 5
"""At most this many links per user within 24 hours, so an owner cannot flood someone's inbox."""
SUBJECT = "Confirm your e-mail address for the DPA service"


@dataclass(frozen=True)
class Verification:
    """When and how a user's address was verified."""

    at: datetime
    method: VerificationMethod


@dataclass
class ConfirmationMails:
    """Confirmation links opened in a transaction, to be e-mailed once it has committed (a replay opens none)."""

    base_url: str
    mails: list[Mail] = field(default_factory=list)

    def url(self, token: str) -> str:
        return f"{self.base_url}/verify-email/{token}"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def verification(user: User) -> Verification | None:
    if user.email_verified_at is None or user.email_verification is None:
        return None
    return Verification(as_utc(user.email_verified_at), VerificationMethod(user.email_verification))


async def open_confirmation(
    session: AsyncSession, user: User, out: ConfirmationMails, *, added_by: str | None = None, again: bool = False
) -> EmailConfirmation:
    """A new link for `user` (in the caller's transaction); its e-mail waits in `out` for the commit. `added_by`
    names who made the account; `again` says this is a new link for an existing one."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    link = EmailConfirmation(
        tenant_id=user.tenant_id,
        user_id=user.id,
        email=user.email,
        token_hash=_token_hash(token),
        created_at=now,
        expires_at=now + timedelta(days=CONFIRM_DAYS),
    )
    session.add(link)
    out.mails.append(_mail(user, out.url(token), added_by, again))
    return link


def _mail(user: User, url: str, added_by: str | None, again: bool) -> Mail:
    account = "processor staff" if user.tenant_id is None else "your organisation's account"
    if again:
        opening = f"Here is a new link to confirm the address of your account on the DPA service ({account}"
    else:
        who = f"{added_by} added you" if added_by else "An account was made for you"
        opening = f"{who} on the DPA service ({account}"
    body = (
        f"Hello {user.name},\n\n"
        f"{opening}, role {user.role}). Confirm that this address is yours with this link. It works once, for "
        f"{CONFIRM_DAYS} days:\n{url}\n\n"
        "Once it is confirmed, this account can sign Data Processing Agreements in your name on its own screen. "
        "If you did not expect this account, do not open the link: until it is confirmed, anything sent to you "
        "for signature comes to this inbox, and only you can sign it."
    )
    return Mail(to=user.email, subject=SUBJECT, body=body)


async def send(mailer: Mailer, out: ConfirmationMails) -> None:
    """E-mail the links once their transaction has committed. A failure is logged, not raised: the account exists,
    and a new link can be asked for."""
    for mail in out.mails:
        try:
            await mailer.send(mail)
        except Exception:
            logger.exception("could not e-mail a confirmation link to %s", mail.to)


async def mark_verified(
    session: AsyncSession, actor: Actor, user_id: uuid.UUID, email: str, method: VerificationMethod
) -> bool:
    """Record that the user showed `email` is theirs, unless it was verified already (the first proof stays).
    Nothing happens when the account no longer uses that address."""
    now = utcnow()
    result = await session.execute(
        update(User)
        .where(col(User.id) == user_id, col(User.email) == email, col(User.email_verified_at).is_(None))
        .values(email_verified_at=now, email_verification=method.value)
        .returning(col(User.tenant_id))
    )
    row = result.one_or_none()
    if row is None:
        return False
    await audit.record(
        session, actor, "user.email_verified", "user", user_id, tenant_id=row[0],
        data={"email": email, "method": method.value},
    )  # fmt: skip
    return True


@dataclass(frozen=True)
class Confirmed:
    """What the confirmation page tells: whose address, and whether this link verified it or it already was."""

    email: str
    name: str
    newly: bool


async def confirm(db: Database, actor: Actor, token: str) -> Confirmed:
    """Use a confirmation link (once): 404 for an unknown link, 410 for a used or expired one."""
    if not token or len(token) > 100:
        raise NotFound("This confirmation link is not valid.")
    async with db.transaction(Scope.system()) as session:
        link = await session.scalar(
            select(EmailConfirmation).where(col(EmailConfirmation.token_hash) == _token_hash(token)).with_for_update()
        )
        if link is None:
            raise NotFound("This confirmation link is not valid.")
        if link.used_at is not None:
            raise Gone("This confirmation link was used already: it works once.")
        if as_utc(link.expires_at) <= utcnow():
            raise Gone(f"This confirmation link expired ({CONFIRM_DAYS} days after it was sent). Ask for a new one.")
        user = await session.get(User, link.user_id, with_for_update=True)
        if user is None or user.email != link.email:
            raise Gone("This confirmation link was for an address the account no longer uses.")
        # Confirming uses up every link the user still had open, not only this one.
        await session.execute(
            update(EmailConfirmation)
            .where(col(EmailConfirmation.user_id) == user.id, col(EmailConfirmation.used_at).is_(None))
            .values(used_at=utcnow())
        )
        newly = await mark_verified(session, actor, user.id, user.email, VerificationMethod.CONFIRMATION_LINK)
        return Confirmed(user.email, user.name, newly)


async def verification_of(db: Database, scope: Scope, user_id: uuid.UUID) -> Verification | None:
    """How and when the user's address was verified (None: not yet); in the caller's scope and transaction."""
    async with db.transaction(scope, write=False) as session:
        user = await session.get(User, user_id)
    return verification(user) if user is not None else None


def _may_resend(principal: Principal, user: User) -> bool:
    """Oneself; an owner or admin for its tenant's users; the platform admin for staff."""
    if user.id == principal.user_id:
        return True
    if user.tenant_id is not None:
        return user.tenant_id == principal.tenant_id and principal.role in (Role.OWNER, Role.ADMIN)
    return principal.tenant_id is None and principal.role == Role.PLATFORM_ADMIN


async def resend(
    db: Database, actor: Actor, principal: Principal, user_id: uuid.UUID, out: ConfirmationMails
) -> VerificationSent:
    """A new confirmation link for an unverified user (409 once verified, or past LINKS_PER_DAY); another tenant's
    user, or one the caller does not manage, is not found."""
    async with db.transaction(principal.scope) as session:
        user = await session.get(User, user_id, with_for_update=True)
        if user is None or not _may_resend(principal, user):
            raise NotFound("User not found.")
        if user.email_verified_at is not None:
            raise Conflict(f"{user.email} is verified already.")
        recent = await session.scalar(
            select(func.count())
            .select_from(EmailConfirmation)
            .where(
                col(EmailConfirmation.user_id) == user.id,
                col(EmailConfirmation.created_at) > utcnow() - timedelta(days=1),
            )
        )
        if (recent or 0) >= LINKS_PER_DAY:
            raise Conflict(
                f"{LINKS_PER_DAY} confirmation links were sent to {user.email} in the last 24 hours; "
                "ask them to look in their inbox (and spam folder), or try again tomorrow."
            )
        link = await open_confirmation(session, user, out, again=True)
        await audit.record(
            session, actor, "user.verification_sent", "user", user.id, tenant_id=user.tenant_id,
            data={"email": user.email},
        )  # fmt: skip
        return VerificationSent(user_id=user.id, email=user.email, expires_at=link.expires_at)
