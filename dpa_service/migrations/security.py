"""Building blocks for migrations: the application role, tenant row-level security, append-only tables,
write-once columns and rows that only move forward.

PostgreSQL gets the real thing; SQLite (one local process, no roles) gets the append-only triggers only.
Later migrations call these for each new table, so every tenant-owned table is protected the same way.
"""

from __future__ import annotations

from alembic import op

from dpa_service.core.db import ROLE_NAME
from dpa_service.core.settings import get_settings

_SCOPE = (
    "current_setting('app.cross_tenant', true) = 'on' "
    "OR {column} = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
)


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def app_role() -> str:
    role = get_settings().database.app_role
    if not ROLE_NAME.match(role):
        raise ValueError(f"DATABASE_APP_ROLE {role!r} is not a plain lowercase role name")
    return role


def create_app_role() -> None:
    """The non-owner, non-superuser role the application serves through (idempotent)."""
    if not _is_postgres():
        return
    role = app_role()
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE "{role}" NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
            END IF;
        END
        $$;
        """
    )
    # The migrating (owner) login may then SET ROLE to it on each connection.
    op.execute(f'GRANT "{role}" TO CURRENT_USER')
    op.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')


def grant_app(table: str, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> None:
    if _is_postgres():
        op.execute(f'GRANT {privileges} ON TABLE {table} TO "{app_role()}"')


def enable_tenant_rls(table: str, column: str = "tenant_id") -> None:
    """Fail closed: with no tenant set (and no cross-tenant scope) a query sees no row and writes none."""
    if not _is_postgres():
        return
    scope = _SCOPE.format(column=column)
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({scope}) WITH CHECK ({scope})")


def make_append_only(table: str) -> None:
    """Refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) for everyone, the owner included."""
    message = f"{table} is append-only"
    if _is_postgres():
        op.execute(
            """
            CREATE OR REPLACE FUNCTION dpa_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END
            $$;
            """
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION dpa_reject_change()"
        )
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )


def freeze_columns(table: str, columns: list[str]) -> None:
    """Refuse any UPDATE that sets these columns: the row's legal content is immutable once written."""
    listed = ", ".join(columns)
    if _is_postgres():
        op.execute(
            """
            CREATE OR REPLACE FUNCTION dpa_reject_content_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% content is immutable: create a new version instead', TG_TABLE_NAME
                    USING ERRCODE = 'insufficient_privilege';
            END
            $$;
            """
        )
        op.execute(
            f"CREATE TRIGGER {table}_content_frozen BEFORE UPDATE OF {listed} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION dpa_reject_content_change()"
        )
        return
    op.execute(
        f"CREATE TRIGGER {table}_content_frozen BEFORE UPDATE OF {listed} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} content is immutable'); END"
    )


def _null_safe_differs(column: str, postgres: bool) -> str:
    return f"NEW.{column} IS DISTINCT FROM OLD.{column}" if postgres else f"NEW.{column} IS NOT OLD.{column}"


def write_once_columns(table: str, columns: list[str]) -> None:
    """Once a column holds a value it keeps it, for everyone (the owner included): an UPDATE may set it from NULL
    (an agreement's hash appears when it is executed), never change it or clear it."""
    postgres = _is_postgres()
    listed = ", ".join(columns)
    changed = " OR ".join(f"(OLD.{c} IS NOT NULL AND {_null_safe_differs(c, postgres)})" for c in columns)
    name = f"{table}_write_once"
    if postgres:
        op.execute(
            """
            CREATE OR REPLACE FUNCTION dpa_reject_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '%.(%) is write-once: UPDATE refused', TG_TABLE_NAME, TG_ARGV[0]
                    USING ERRCODE = 'insufficient_privilege';
            END
            $$;
            """
        )
        op.execute(
            f"CREATE TRIGGER {name} BEFORE UPDATE OF {listed} ON {table} FOR EACH ROW WHEN ({changed}) "
            f"EXECUTE FUNCTION dpa_reject_rewrite('{listed}')"
        )
        return
    op.execute(
        f"CREATE TRIGGER {name} BEFORE UPDATE OF {listed} ON {table} FOR EACH ROW WHEN {changed} "
        f"BEGIN SELECT RAISE(ABORT, '{table}.({listed}) is write-once'); END"
    )


def forward_only(table: str, counter: str, fixed: list[str], advances: list[str]) -> None:
    """Rows that only move forward, for everyone (the owner included): no DELETE (nor TRUNCATE), and an UPDATE must
    raise `counter` or leave the row as it is; `fixed` columns never change, `advances` columns only with the
    counter. (The audit chain's heads: a head rewound to hide a removed tail is refused.)"""
    postgres = _is_postgres()
    rewinds = [
        f"NEW.{counter} < OLD.{counter}",
        *(_null_safe_differs(c, postgres) for c in fixed),
        *(f"(NEW.{counter} = OLD.{counter} AND {_null_safe_differs(c, postgres)})" for c in advances),
    ]
    condition = " OR ".join(rewinds)
    if postgres:
        op.execute(
            """
            CREATE OR REPLACE FUNCTION dpa_reject_rewind() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% only moves forward: an UPDATE that rewinds or rewrites a row is refused',
                    TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
            END
            $$;
            """
        )
        op.execute(
            """
            CREATE OR REPLACE FUNCTION dpa_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END
            $$;
            """
        )
        op.execute(
            f"CREATE TRIGGER {table}_forward_only BEFORE UPDATE ON {table} FOR EACH ROW WHEN ({condition}) "
            "EXECUTE FUNCTION dpa_reject_rewind()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION dpa_reject_change()"
        )
        return
    op.execute(
        f"CREATE TRIGGER {table}_forward_only BEFORE UPDATE ON {table} FOR EACH ROW WHEN {condition} "
        f"BEGIN SELECT RAISE(ABORT, '{table} only moves forward'); END"
    )
    op.execute(
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
    )


def drop_trigger(table: str, name: str) -> None:
    op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}" if _is_postgres() else f"DROP TRIGGER IF EXISTS {name}")
