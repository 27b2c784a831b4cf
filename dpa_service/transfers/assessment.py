"""Is a transfer lawful on a given day? Pure functions over the catalogue, the adequacy list and invalidations.

Dates follow API.md: a mechanism's `valid_from` is inclusive and `valid_until` exclusive; a transfer's
`start_date` and `end_date` are inclusive. An invalidation recorded by legal ends a mechanism early.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from dpa_service.core import registry
from dpa_service.core.registry import Mechanism


@dataclass(frozen=True)
class TransferFacts:
    destination_country: str
    mechanism: str
    start_date: date
    end_date: date | None
    importer_certified: bool | None


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str
    suggested: tuple[str, ...] = ()


def active_on(facts: TransferFacts, day: date) -> bool:
    return facts.start_date <= day and (facts.end_date is None or day <= facts.end_date)


def _until(mechanism: Mechanism, invalidations: dict[str, date]) -> date | None:
    dates = [d for d in (mechanism.valid_until, invalidations.get(mechanism.code)) if d is not None]
    return min(dates) if dates else None


def _adequate(country: str, day: date) -> registry.AdequacyDecision | None:
    decision = registry.adequacy_decisions().get(country)
    return decision if decision is not None and decision.covers(day) else None


def _covers(mechanism: Mechanism, facts: TransferFacts, day: date, invalidations: dict[str, date]) -> str | None:
    """None if `mechanism` covers the transfer on `day`, else the reason in plain words."""
    name, country = mechanism.name, registry.country_name(facts.destination_country)
    if day < mechanism.valid_from:
        return f"{name} could only be relied on from {mechanism.valid_from.isoformat()}"
    until = _until(mechanism, invalidations)
    if until is not None and day >= until:
        if mechanism.code in invalidations and invalidations[mechanism.code] == until:
            return f"{name} was invalidated with effect from {until.isoformat()} (recorded by legal)"
        return mechanism.invalid_reason or f"{name} stopped being valid on {until.isoformat()}"
    if mechanism.new_transfers_until is not None and facts.start_date >= mechanism.new_transfers_until:
        return (
            f"{name} could not be used for transfers starting on or after {mechanism.new_transfers_until.isoformat()}"
        )
    if mechanism.destinations and facts.destination_country not in mechanism.destinations:
        return f"{name} only covers transfers to {', '.join(registry.country_name(c) for c in mechanism.destinations)}"
    if mechanism.code == "adequacy" and _adequate(facts.destination_country, day) is None:
        return f"{country} has no EU adequacy decision in force on {day.isoformat()}"
    if mechanism.requires_certified_importer and not facts.importer_certified:
        return f"{name} only covers importers certified under it, and this importer is not recorded as certified"
    return None


def suggestions(facts: TransferFacts, day: date, invalidations: dict[str, date]) -> tuple[str, ...]:
    """Mechanisms that would cover this transfer on `day`, most suitable first."""
    catalogue = registry.mechanisms()
    preferred = ["adequacy", "eu-us-dpf", "scc-2021", "uk-idta", "uk-addendum", "swiss-us-dpf", "scc-2010"]
    candidates = [code for code in preferred if code in catalogue]
    mechanism = catalogue.get(facts.mechanism)
    if mechanism is not None:
        candidates = [*mechanism.successors, *candidates]
    fresh = TransferFacts(facts.destination_country, "", day, None, facts.importer_certified)
    seen: list[str] = []
    for code in candidates:
        if code in seen or code == facts.mechanism:
            continue
        if catalogue[code].jurisdiction != "EU":
            continue  # the register assesses transfers from the EU/EEA; UK and Swiss tools are for their exporters
        if _covers(catalogue[code], fresh, day, invalidations) is None:
            seen.append(code)
    return tuple(seen)


def assess(facts: TransferFacts, day: date, invalidations: dict[str, date] | None = None) -> Verdict:
    invalidations = invalidations or {}
    country = registry.country(facts.destination_country)
    country_name = country.name if country else facts.destination_country
    if country is not None and country.eea:
        return Verdict(True, f"{country_name} is in the EU/EEA: no transfer mechanism is needed.")
    adequate = _adequate(facts.destination_country, day)
    if adequate is not None:
        scope = f", for {adequate.scope}" if adequate.scope else ""
        return Verdict(True, f"{country_name} has an EU adequacy decision ({adequate.decision}{scope}).")
    mechanism = registry.mechanisms().get(facts.mechanism)
    if mechanism is None:
        return Verdict(
            False, f"'{facts.mechanism}' is not a known transfer mechanism.", suggestions(facts, day, invalidations)
        )
    problem = _covers(mechanism, facts, day, invalidations)
    if problem is None:
        return Verdict(True, f"Covered by {mechanism.name} ({mechanism.legal_reference.split(';')[0].strip()}).")
    return Verdict(False, f"{problem}.", suggestions(facts, day, invalidations))


def listing_problem(mechanism_code: str, country_code: str, day: date, invalidations: dict[str, date]) -> str | None:
    """Why a sub-processor located in `country_code` cannot rely on `mechanism_code` from `day` (None: it can).

    A listed sub-processor is engaged from `day`, so the mechanism must be open to new transfers then; one relying
    on a framework that certifies importers (the DPF) is listed by legal as certified."""
    country = registry.country(country_code)
    if country is not None and country.eea:
        return None
    mechanism = registry.mechanisms().get(mechanism_code)
    if mechanism is None:
        return f"'{mechanism_code}' is not a known transfer mechanism"
    facts = TransferFacts(country_code, mechanism_code, day, None, importer_certified=True)
    return _covers(mechanism, facts, day, invalidations)
