"""What every log line says about the request it belongs to: its correlation id, and the tenant and user once
they are known.

One `LogContext` per request, held in a ContextVar: the request-id middleware opens it, authentication fills in
who is calling, and the log formatter (dpa_service.logs) reads it. The object is shared, not copied, so what
authentication learns deeper in the stack is also on the access-log line the server writes as the response starts
(same task) and on lines logged from threads the request starts (they copy the context, hence the same object).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class LogContext:
    request_id: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None


_current: ContextVar[LogContext | None] = ContextVar("dpa_log_context", default=None)


def current() -> LogContext | None:
    return _current.get()


@contextmanager
def request(request_id: str) -> Iterator[LogContext]:
    """The log context of one request (or of one job: a worker may open one per batch it sends)."""
    context = LogContext(request_id=request_id)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def identify(user_id: uuid.UUID | None, tenant_id: uuid.UUID | None) -> None:
    """Record who is calling on the current request's log lines (nothing outside a request)."""
    context = _current.get()
    if context is not None:
        context.user_id = str(user_id) if user_id else None
        context.tenant_id = str(tenant_id) if tenant_id else None
