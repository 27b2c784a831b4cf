"""A template as legal keeps it on disk (`templates/dpa/<key>/`), and the hash that pins its content."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from dpa_service.core.registry import data_root
from dpa_service.template_versions.models import TemplateVersion


@dataclass(frozen=True)
class TemplateBundle:
    key: str
    title: str
    source: str
    stylesheet: str
    entrypoint: str
    variables_schema: dict[str, Any]
    sample_variables: dict[str, Any] = field(default_factory=dict)
    obligations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        return content_sha256(self.source, self.stylesheet, self.variables_schema, self.obligations)

    def as_version(self, number: int = 1, status: str = "approved") -> TemplateVersion:
        """An unsaved version with this content (benchmarks and tests render the shipped files this way)."""
        return TemplateVersion(
            key=self.key,
            version=number,
            title=self.title,
            source=self.source,
            stylesheet=self.stylesheet,
            entrypoint=self.entrypoint,
            variables_schema=self.variables_schema,
            sample_variables=self.sample_variables,
            obligations=self.obligations,
            sha256=self.sha256,
            status=status,
        )


def content_sha256(
    source: str, stylesheet: str, variables_schema: dict[str, Any], obligations: list[dict[str, Any]]
) -> str:
    """What legal approves: the text, its styling, its variables and the obligations it imposes."""
    canonical = json.dumps(
        {"source": source, "stylesheet": stylesheet, "schema": variables_schema, "obligations": obligations},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def templates_root() -> Traversable:
    return data_root("templates") / "dpa"


def assets_dir(key: str) -> Path | None:
    """The folder whose files (fonts, images) a template's PDF may use; None if legal keeps none for it."""
    folder = templates_root() / key
    return Path(str(folder)) if folder.is_dir() else None


def load_bundle(folder: Traversable) -> TemplateBundle:
    meta = yaml.safe_load((folder / "template.yaml").read_text(encoding="utf-8"))

    def text(name: str | None) -> str:
        return (folder / name).read_text(encoding="utf-8") if name else ""

    return TemplateBundle(
        key=meta["key"],
        title=meta["title"],
        source=text(meta["entrypoint"]),
        stylesheet=text(meta.get("stylesheet")),
        entrypoint=meta["entrypoint"],
        variables_schema=json.loads(text(meta["schema"])),
        sample_variables=json.loads(text(meta["sample"])) if meta.get("sample") else {},
        obligations=yaml.safe_load(text(meta["obligations"])) or [] if meta.get("obligations") else [],
    )


def shipped_bundles() -> list[TemplateBundle]:
    root = templates_root()
    if not root.is_dir():
        return []
    folders = sorted((f for f in root.iterdir() if f.is_dir() and (f / "template.yaml").is_file()), key=str)
    return [load_bundle(folder) for folder in folders]
