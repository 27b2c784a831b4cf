"""What the `dpa` commands share: counting for people, one service call on a fresh connection, migrating, and
the "cannot verify" exit."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import click

from dpa_service import migrate, reactions
from dpa_service.core.db import Database
from dpa_service.core.settings import get_settings

T = TypeVar("T")


def _count(n: int, noun: str, plural: str | None = None) -> str:
    """`1 event`, `2 events`: what an operator reads, not `1 events`."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _with_db(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run one service call on a fresh connection (the CLI is its own process: it installs the reactions too, and
    makes the documents the call needs itself, without starting the server's process pool)."""
    from dpa_service.documents.pool import make_documents_in_this_process

    make_documents_in_this_process()

    async def run() -> T:
        reactions.install()
        db = Database(get_settings().database)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _migrate() -> None:
    migrate.upgrade(get_settings())


def _cannot_verify(problem: str, remedy: str) -> NoReturn:
    click.echo(f"cannot verify: {problem}; {remedy}", err=True)
    sys.exit(3)
