"""Reference data owned by legal, shipped as package data (`registry/` in the source tree).

Loaded lazily with `importlib.resources` and cached: never at import time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any


def data_root(name: str) -> Traversable:
    """`registry` or `templates`: inside the installed package, else beside the source checkout."""
    packaged = resources.files("dpa_service") / "_data" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name


def load_json(relative: str) -> Any:
    return json.loads((data_root("registry") / relative).read_text(encoding="utf-8"))


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
