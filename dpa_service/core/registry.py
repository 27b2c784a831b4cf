"""Reference data owned by legal, shipped as package data (`registry/` in the source tree).

Loaded lazily with `importlib.resources` and cached: never at import time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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


@cache
def currencies() -> frozenset[str]:
    """ISO 4217 alphabetic codes a contract may be priced in (`currencies.json` says which and why)."""
    return frozenset(load_json("currencies.json")["codes"])


ORIGINS = ("eea", "uk", "ch")
# The regime a Subscriber exports under, by its country of establishment (the DPA accepts EU/EEA, UK, Swiss ones).
ORIGIN_OF = {"GB": "uk", "CH": "ch"}


def origin_of(country_code: str | None) -> str:
    return ORIGIN_OF.get((country_code or "").upper(), "eea")


# The regime whose dates a mechanism's catalogue entry shows (its own jurisdiction's).
PRIMARY_REGIME = {"EU": "eea", "UK": "uk", "CH": "ch"}


@dataclass(frozen=True)
class RegimeTerms:
    """When a mechanism can carry a transfer under one origin regime's law (`valid_from` inclusive, `valid_until`
    and `instruments_until` exclusive; `instruments_until` tests the instrument's, i.e. the contract's, date)."""

    valid_from: date
    valid_until: date | None = None
    instruments_until: date | None = None
    invalid_reason: str = ""
    sources: dict[str, str] = field(default_factory=dict)


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
    """A transfer mechanism; dates are `valid_from` inclusive and `valid_until` exclusive (API.md). The top-level
    dates are those of its own jurisdiction's regime; `regimes` has each origin regime's terms."""

    code: str
    name: str
    jurisdiction: str
    kind: str
    valid_from: date
    valid_until: date | None
    legal_reference: str
    requires_certified_importer: bool = False
    requires_tia: bool = False
    dpa_selectable: bool = True
    new_transfers_until: date | None = None
    destinations: tuple[str, ...] = ()
    invalid_reason: str = ""
    successors: tuple[str, ...] = ()
    risk_note: str = ""
    risk_from: date | None = None
    note: str = ""
    regimes: dict[str, RegimeTerms] = field(default_factory=dict)

    def terms(self, origin: str) -> RegimeTerms | None:
        """This mechanism's terms under `origin`'s law, or None when it is not one of that regime's tools."""
        return self.regimes.get(origin)

    def in_force_on(self, day: date, origin: str | None = None) -> bool:
        """Open to a new instrument (a DPA made) on `day` under `origin` (default: its own jurisdiction's)."""
        terms = self.terms(origin or PRIMARY_REGIME.get(self.jurisdiction, "eea"))
        if terms is None or day < terms.valid_from:
            return False
        return all(end is None or day < end for end in (terms.valid_until, terms.instruments_until))


def _terms(row: dict[str, Any]) -> RegimeTerms:
    return RegimeTerms(
        valid_from=row["valid_from"],
        valid_until=row.get("valid_until"),
        instruments_until=row.get("instruments_until"),
        invalid_reason=row.get("invalid_reason", ""),
        sources=dict(row.get("sources") or {}),
    )


@cache
def mechanisms() -> dict[str, Mechanism]:
    fields_ = set(Mechanism.__dataclass_fields__) - {"regimes", "valid_from", "valid_until", "new_transfers_until"}
    catalogue = {}
    for row in load_yaml("transfer_mechanisms.yaml"):
        values = {k: v for k, v in row.items() if k in fields_}
        values["destinations"] = tuple(values.get("destinations") or ())
        values["successors"] = tuple(values.get("successors") or ())
        regimes = {origin: _terms(terms) for origin, terms in (row.get("regimes") or {}).items()}
        primary = regimes[PRIMARY_REGIME[row["jurisdiction"]]]
        values.update(
            valid_from=primary.valid_from,
            valid_until=primary.valid_until,
            new_transfers_until=primary.instruments_until,
            invalid_reason=row.get("invalid_reason") or primary.invalid_reason,
            regimes=regimes,
        )
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
    renewed_on: date | None = None
    organisation: str = ""
    importers: tuple[str, ...] = ()
    note: str = ""
    sources: dict[str, str] = field(default_factory=dict)

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day < self.valid_until)


def _decisions() -> list[AdequacyDecision]:
    rows = load_yaml("adequacy.yaml")
    fields_ = set(AdequacyDecision.__dataclass_fields__)
    found = []
    for row in rows:
        values = {k: v for k, v in row.items() if k in fields_}
        values["importers"] = tuple(values.get("importers") or ())
        values["sources"] = dict(values.get("sources") or {})
        found.append(AdequacyDecision(**values))
    return found


@cache
def adequacy_decisions() -> dict[str, AdequacyDecision]:
    """EU adequacy decisions for third countries and territories, by ISO code."""
    return {d.country: d for d in _decisions() if not d.organisation}


@cache
def organisation_decisions() -> tuple[AdequacyDecision, ...]:
    """EU adequacy decisions for international organisations (wherever they sit)."""
    return tuple(d for d in _decisions() if d.organisation)


@dataclass(frozen=True)
class RegimeAdequacy:
    """A UK or Swiss adequacy finding for a destination (`valid_from` inclusive)."""

    country: str
    decision: str
    valid_from: date
    scope: str = ""


@dataclass(frozen=True)
class Regime:
    code: str
    name: str
    law: str
    own_law_from: date | None = None
    eu_status: tuple[tuple[date, str], ...] = ()
    adequacy: tuple[RegimeAdequacy, ...] = ()
    sources: dict[str, str] = field(default_factory=dict)

    def adequate(self, country_code: str, day: date) -> RegimeAdequacy | None:
        return next((a for a in self.adequacy if a.country == country_code and a.valid_from <= day), None)


@cache
def regimes() -> dict[str, Regime]:
    eea = [c.code for c in countries().values() if c.eea]
    found = {}
    for code, row in load_yaml("regimes.yaml").items():
        adequacy = []
        for entry in row.get("adequacy") or []:
            codes = eea if entry["countries"] == "EEA" else entry["countries"]
            adequacy += [
                RegimeAdequacy(c, entry["decision"], entry["valid_from"], entry.get("scope", "")) for c in codes
            ]
        sources = {
            **dict(row.get("sources") or {}),
            **{f"adequacy.{k}": v for k, v in (row.get("adequacy_sources") or {}).items()},
        }
        found[code] = Regime(
            code=code,
            name=row["name"],
            law=row["law"],
            own_law_from=row.get("own_law_from"),
            eu_status=tuple((s["until"], s["status"]) for s in row.get("eu_status") or []),
            adequacy=tuple(adequacy),
            sources=sources,
        )
    return found


@cache
def _processor_file() -> dict[str, Any]:
    return load_yaml("processor.yaml")


def processor() -> dict[str, Any]:
    """The processor's identity (processor.yaml), with the deployment's hosting locations (DPA_PROCESSOR_HOSTING)
    when set."""
    from dpa_service.core.settings import get_settings

    data = _processor_file()
    hosting = get_settings().processor_hosting
    return {**data, "hosting_locations": list(hosting)} if hosting else data


def processor_transfer_destination() -> str | None:
    """Where the Subscriber-to-processor transfer goes when it is a restricted transfer: the processor's country
    of establishment when that is outside the EU/EEA, else its first hosting location outside it; None when the
    processor is established and hosts only in the EU/EEA (no transfer, Clause 12.1)."""
    data = processor()
    for code in (data.get("country"), *(data.get("hosting_locations") or [])):
        found = country(str(code)) if code else None
        if found is not None and not found.eea:
            return found.code
    return None


@dataclass(frozen=True)
class Certification:
    """The processor's self-certification under a framework (`since` inclusive, `until` exclusive)."""

    mechanism: str
    since: date
    until: date | None
    entry: str

    def covers(self, day: date) -> bool:
        return self.since <= day and (self.until is None or day < self.until)


def processor_certifications() -> dict[str, tuple[Certification, ...]]:
    """The frameworks the processor is (or was) certified under, by mechanism code (processor.yaml)."""
    found: dict[str, list[Certification]] = {}
    for row in _processor_file().get("certifications") or []:
        found.setdefault(row["mechanism"], []).append(
            Certification(row["mechanism"], row["since"], row.get("until"), str(row.get("entry", "")))
        )
    return {code: tuple(rows) for code, rows in found.items()}


def adequate_destination(origin: str, destination: str, day: date) -> bool:
    """Is `destination` covered by an adequacy finding of `origin`'s regime on `day` (the generic `adequacy`
    mechanism; a framework such as the DPF is a mechanism of its own)?"""
    if origin == "eea":
        decision = adequacy_decisions().get(destination)
        return decision is not None and decision.covers(day)
    regime = regimes().get(origin)
    return regime is not None and regime.adequate(destination, day) is not None


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
        problems += source_problems(mechanism)
        for origin, terms in mechanism.regimes.items():
            if origin not in ORIGINS:
                problems.append(f"{mechanism.code}: unknown origin regime {origin}")
            if terms.valid_until is not None and terms.valid_until <= terms.valid_from:
                problems.append(f"{mechanism.code} ({origin}): valid_until is not after valid_from")
        problems += [f"{mechanism.code}: unknown successor {s}" for s in mechanism.successors if s not in catalogue]
        problems += [f"{mechanism.code}: unknown destination {c}" for c in mechanism.destinations if country(c) is None]
    for decision in adequacy_decisions().values():
        found = country(decision.country)
        if found is None or found.eea:
            problems.append(f"adequacy: {decision.country} is not a third country")
        problems += source_problems(decision)
    for decision in organisation_decisions():
        problems += source_problems(decision)
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


def source_problems(entry: Mechanism | AdequacyDecision) -> list[str]:
    """Every date of a mechanism (per regime) or adequacy decision must cite a source (registry files' `sources`)."""
    if isinstance(entry, Mechanism):
        dated = [
            (
                f"{entry.code} ({origin})",
                terms.sources,
                {
                    "valid_from": terms.valid_from,
                    "valid_until": terms.valid_until,
                    "instruments_until": terms.instruments_until,
                },
            )
            for origin, terms in entry.regimes.items()
        ]
        if not entry.regimes:
            return [f"{entry.code}: no regime, so no dated source"]
    else:
        label = entry.organisation or entry.country
        dates = {"valid_from": entry.valid_from, "valid_until": entry.valid_until, "renewed_on": entry.renewed_on}
        dated = [(f"adequacy {label}", entry.sources, dates)]
        if entry.scope and not entry.sources.get("scope"):
            return [f"adequacy {label}: scope has no source"]
    return [
        f"{label}: {name} {value} has no source"
        for label, sources, dates in dated
        for name, value in dates.items()
        if value is not None and not str(sources.get(name) or "").strip()
    ]
