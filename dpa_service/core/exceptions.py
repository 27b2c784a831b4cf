"""Domain errors, each mapped once to an RFC 9457 problem (see `dpa_service.problems`).

    DPAError                      500  something we did not expect to go wrong
    ├── AuthenticationError       401  no API key, or an unknown or revoked one
    ├── PermissionDenied          403  authenticated, but the role may not do this
    ├── NotFound                  404  absent, or another tenant's (never say which)
    ├── Conflict                  409  illegal state transition, duplicate, in-flight duplicate request
    ├── Gone                      410  a signing link already used, voided or expired
    ├── InvalidInput              422  well-formed but wrong; `errors` names each failing field
    │   └── IdempotencyKeyReused  422  same Idempotency-Key, different body
    └── Unavailable               503  could not be done now (a render crashed or timed out); try again

Services raise these; controllers never build error responses by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class DPAError(Exception):
    status_code = 500
    title = "Internal server error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class AuthenticationError(DPAError):
    status_code = 401
    title = "Authentication required"


class PermissionDenied(DPAError):
    status_code = 403
    title = "Permission denied"


class NotFound(DPAError):
    status_code = 404
    title = "Not found"


class Conflict(DPAError):
    status_code = 409
    title = "Conflict"

    def __init__(self, detail: str = "", errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        # None for a conflict of the whole request (a state transition); else the fields it is about, as in a 422
        # (an e-mail address another account uses).
        self.errors = errors

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.detail, self.errors))

    @classmethod
    def field(cls, field: str, message: str) -> Conflict:
        return cls(f"{field}: {message}", [FieldError(field, message)])


class Gone(DPAError):
    status_code = 410
    title = "Gone"


class InvalidInput(DPAError):
    status_code = 422
    title = "Invalid input"

    def __init__(self, detail: str = "", errors: list[FieldError] | None = None) -> None:
        super().__init__(detail or "The request is not valid.")
        self.errors = errors or []

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt with its field errors when it crosses from a render worker to the request's process.
        return (type(self), (self.detail, self.errors))

    @classmethod
    def field(cls, field: str, message: str) -> InvalidInput:
        return cls(f"{field}: {message}", [FieldError(field, message)])


class IdempotencyKeyReused(InvalidInput):
    title = "Idempotency-Key reused"


class Unavailable(DPAError):
    status_code = 503
    title = "Service unavailable"
