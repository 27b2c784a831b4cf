"""The house rules that keep the code base readable, checked on every run (the layering itself is import-linter's
job: pyproject.toml, `lint-imports` in scripts/test)."""

from __future__ import annotations

import inspect
from pathlib import Path

from litestar.handlers import HTTPRouteHandler

from dpa_service.app import create_app
from dpa_service.core.settings import DatabaseSettings, Settings

PACKAGE = Path(__file__).resolve().parent.parent / "dpa_service"
MAX_MODULE_LINES = 450
MAX_HANDLER_BODY_LINES = 15


def _handlers(tmp_path: Path) -> list[HTTPRouteHandler]:
    app = create_app(Settings(var_dir=tmp_path, database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/x.db")))
    found = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if isinstance(handler, HTTPRouteHandler) and handler.fn.__module__.startswith("dpa_service."):
                found[id(handler.fn)] = handler
    return list(found.values())


def test_no_module_is_longer_than_450_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): count
        for path in PACKAGE.rglob("*.py")
        if "migrations/versions" not in str(path) and (count := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these modules: {long}"


def test_every_handler_has_a_docstring_for_its_openapi_operation(tmp_path: Path) -> None:
    handlers = _handlers(tmp_path)
    assert len(handlers) > 60
    missing = [handler.handler_name for handler in handlers if not inspect.getdoc(handler.fn)]
    assert not missing, f"handlers without a docstring: {missing}"


def test_handlers_are_thin(tmp_path: Path) -> None:
    """A handler parses, authorizes (guards), calls one service function and returns a schema."""
    fat = {}
    for handler in _handlers(tmp_path):
        source = inspect.getsource(handler.fn)
        after_docstring = source.split('"""', 2)[2].splitlines()[1:]
        body = [line for line in after_docstring if line.strip() and not line.strip().startswith("#")]
        if len(body) > MAX_HANDLER_BODY_LINES:
            fat[handler.handler_name] = len(body)
    assert not fat, f"move the work into a service: {fat}"


def test_the_openapi_operations_say_what_they_do(tmp_path: Path) -> None:
    schema = create_app(
        Settings(var_dir=tmp_path, database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/x.db"))
    ).openapi_schema.to_schema()
    operations = [
        op
        for url, path in schema["paths"].items()
        if not url.startswith("/schema")
        for op in path.values()
        if isinstance(op, dict)
    ]
    assert operations and all(op.get("description") for op in operations), [
        op.get("operationId") for op in operations if not op.get("description")
    ]
