"""API-key authentication for every request, and the role guards handlers declare.

The middleware only reads the `Authorization` header and asks the authenticator the app was built with (the users
domain's `authenticate`), so HTTP knows nothing about how keys are stored. Revocation is checked on every request
(nothing is cached), so a revoked key is refused on its next use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from dpa_service.core import log_context
from dpa_service.core.exceptions import AuthenticationError, PermissionDenied
from dpa_service.core.identity import Actor, Principal, Role

Authenticator = Callable[[str], Awaitable[Principal]]
Guard = Callable[[ASGIConnection, BaseRouteHandler], None]


class ApiKeyAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        principal = await optional_principal(connection)
        if principal is None:
            raise AuthenticationError("Send an API key as 'Authorization: Bearer <key>'.")
        return AuthenticationResult(user=principal, auth=principal.api_key_id)


async def optional_principal(connection: ASGIConnection) -> Principal | None:
    """The caller of an endpoint that needs no key: None without one, 401 for a key that is not valid."""
    header = connection.headers.get("authorization", "")
    if not header:
        return None
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthenticationError("Send an API key as 'Authorization: Bearer <key>'.")
    authenticate: Authenticator = connection.app.state.authenticate
    principal = await authenticate(key.strip())
    log_context.identify(principal.user_id, principal.tenant_id)
    return principal


def actor_of(connection: ASGIConnection) -> Actor:
    """The audit log's actor for an authenticated request: the principal, its address and user agent."""
    return Actor.of(
        connection.user,
        ip=connection.client.host if connection.client else None,
        user_agent=connection.headers.get("user-agent"),
    )


def require_roles(*roles: Role) -> Guard:
    allowed = frozenset(roles)

    def guard(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
        if connection.user.role not in allowed:
            raise PermissionDenied(f"This action needs one of the roles: {', '.join(sorted(allowed))}.")

    guard.__name__ = f"require_{'_or_'.join(sorted(allowed))}"
    return guard


subscriber_only = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER)
subscriber_admin = require_roles(Role.OWNER, Role.ADMIN)
staff_only = require_roles(Role.LEGAL, Role.SALES, Role.PLATFORM_ADMIN)
platform_admin_only = require_roles(Role.PLATFORM_ADMIN)
legal_only = require_roles(Role.LEGAL)
