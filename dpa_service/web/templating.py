"""The Jinja2 environment pages render with: templates from each package's `templates/` directory (shipped as
package data), autoescaped, and strict about undefined names so a typo fails a test instead of rendering blank."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from dpa_service.core.clock import rfc3339


def _when(value: object) -> str:
    """A time as people read it: `2026-12-01 10:30 UTC` (no microseconds, no `T`)."""
    if value is None or value == "":
        return ""
    text = rfc3339(value) if not isinstance(value, str) else value  # type: ignore[arg-type]
    return text.replace("T", " ")[:16] + " UTC"


def environment(packages: Iterable[str]) -> Environment:
    loaders = [
        PackageLoader(package, "templates") for package in packages if (resources.files(package) / "templates").is_dir()
    ]
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["day"] = lambda value: str(value)[:10] if value else ""
    return env


def template_config(packages: Iterable[str]) -> TemplateConfig[JinjaTemplateEngine]:
    env = environment(packages)
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(env))
