"""Reference data owned by legal, shipped as package data (`registry/` in the source tree).

Loaded lazily with `importlib.resources` and cached: never at import time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

import yaml


def data_root(name: str) -> Traversable:
    """`registry` or `templates`: inside the installed package, else beside the source checkout."""
    packaged = resources.files("dpa_service") / "_data" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name


def load_json(relative: str) -> Any:
    return json.loads((data_root("registry") / relative).read_text(encoding="utf-8"))


def load_yaml(relative: str) -> Any:
    return yaml.safe_load((data_root("registry") / relative).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Country:
    code: str
    name: str
    eu: bool
    eea: bool


@cache
def countries() -> dict[str, Country]:
    return {row["code"]: Country(**row) for row in load_json("countries.json")["countries"]}


def country(code: str) -> Country | None:
    return countries().get(code)


def country_name(code: str) -> str:
    found = country(code)
    return found.name if found else code


@dataclass(frozen=True)
class Mechanism:
    code: str
    name: str
    jurisdiction: str
    valid_from: date | None
    valid_until: date | None
    legal_reference: str
    requires_certified_importer: bool = False
    note: str = ""


@cache
def mechanisms() -> dict[str, Mechanism]:
    rows = load_yaml("mechanisms.yaml")
    rows = rows["mechanisms"] if isinstance(rows, dict) else rows
    fields = set(Mechanism.__dataclass_fields__)
    return {row["code"]: Mechanism(**{k: v for k, v in row.items() if k in fields}) for row in rows}


@cache
def processor() -> dict[str, Any]:
    return load_yaml("processor.yaml")


@cache
def supervisory_authorities() -> dict[str, dict[str, Any]]:
    rows = load_yaml("supervisory_authorities.yaml")
    rows = rows["authorities"] if isinstance(rows, dict) else rows
    return {row["country"]: row for row in rows}


@cache
def subprocessor_seed() -> dict[str, Any]:
    return load_yaml("subprocessors.yaml")
