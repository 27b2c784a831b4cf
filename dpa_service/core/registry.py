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
    return Path(__file__).resolve().parents[2] / name


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


# A sub-processor location that is no one country: a network that processes data wherever its users are (a CDN
# terminating TLS at the data centre nearest each visitor sees chat content in transit in any of them).
WORLDWIDE = "worldwide"
WORLDWIDE_NAME = "Worldwide (in transit, at the data centre nearest each user)"
# What a sub-processor list shows for an entry located only in the EU/EEA: there is no transfer, so no mechanism.
NO_MECHANISM_NAME = "None required (EEA)"


def location_name(code: str) -> str:
    """A sub-processor location as legal text shows it: a country's short name, or the worldwide network."""
    return WORLDWIDE_NAME if code == WORLDWIDE else country_name(code)


def needs_mechanism(locations: list[str]) -> bool:
    """A sub-processor needs a transfer mechanism unless every location is in the EU/EEA (Chapter V GDPR applies to
    transfers to third countries only)."""
    return any(not (found := country(code)) or not found.eea for code in locations)


@dataclass(frozen=True)
class Mechanism:
    """A transfer mechanism; dates are `valid_from` inclusive and `valid_until` exclusive (API.md)."""

    code: str
    name: str
    jurisdiction: str
    kind: str
    valid_from: date
    valid_until: date | None
    legal_reference: str
    requires_certified_importer: bool = False
    new_transfers_until: date | None = None
    destinations: tuple[str, ...] = ()
    invalid_reason: str = ""
    successors: tuple[str, ...] = ()
    risk_note: str = ""
    note: str = ""


@cache
def mechanisms() -> dict[str, Mechanism]:
    fields = set(Mechanism.__dataclass_fields__)
    catalogue = {}
    for row in load_yaml("transfer_mechanisms.yaml"):
        values = {k: v for k, v in row.items() if k in fields}
        values["destinations"] = tuple(values.get("destinations") or ())
        values["successors"] = tuple(values.get("successors") or ())
        catalogue[row["code"]] = Mechanism(**values)
    return catalogue


@dataclass(frozen=True)
class AdequacyDecision:
    country: str
    name: str
    decision: str
    valid_from: date
    valid_until: date | None = None
    scope: str = ""

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day < self.valid_until)


@cache
def adequacy_decisions() -> dict[str, AdequacyDecision]:
    return {row["country"]: AdequacyDecision(**row) for row in load_yaml("adequacy.yaml")}


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


def check() -> list[str]:
    """Problems in the reference data (empty when it is consistent): run by `dpa registry sync`."""
    problems = []
    catalogue = mechanisms()
    for mechanism in catalogue.values():
        if mechanism.valid_until is not None and mechanism.valid_until <= mechanism.valid_from:
            problems.append(f"{mechanism.code}: valid_until is not after valid_from")
        problems += [f"{mechanism.code}: unknown successor {s}" for s in mechanism.successors if s not in catalogue]
        problems += [f"{mechanism.code}: unknown destination {c}" for c in mechanism.destinations if country(c) is None]
    for decision in adequacy_decisions().values():
        found = country(decision.country)
        if found is None or found.eea:
            problems.append(f"adequacy: {decision.country} is not a third country")
    for item in subprocessor_seed().get("items", []):
        code, locations = item.get("transfer_mechanism"), list(item.get("locations") or [])
        problems += [
            f"subprocessors: {item['name']} has unknown location {where}"
            for where in locations
            if where != WORLDWIDE and country(where) is None
        ]
        if code is None and needs_mechanism(locations):
            problems.append(f"subprocessors: {item['name']} is located outside the EEA and cites no mechanism")
        elif code is not None and code not in catalogue:
            problems.append(f"subprocessors: {item['name']} cites unknown mechanism {code}")
        elif code is not None and not needs_mechanism(locations):
            problems.append(f"subprocessors: {item['name']} is only in the EEA: no mechanism ({NO_MECHANISM_NAME})")
    return problems
