"""Is a transfer lawful on a given day? Pure functions over the catalogue, the adequacy lists and invalidations.

A transfer is judged only by its origin regime's tools (`origin`: eea, uk, ch): an EU export cannot rest on a UK or
Swiss instrument, nor the reverse. A UK export made before the UK applied its own law (2021-01-01) is judged by
the EU's tools. A mechanism closed to new instruments is tested on the instrument's date (`instrument_date`, the
contract's date), not on the transfer's start.

Dates follow API.md: a mechanism's `valid_from` is inclusive and `valid_until` exclusive; a transfer's
`start_date` and `end_date` are inclusive. An invalidation recorded by legal ends a mechanism early.

A valid transfer may still be fragile: `Verdict.risks` says why (no transfer impact assessment for an Article 46
tool, an importer certification nobody recorded checking, an adequacy decision limited in scope, a pending appeal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from dpa_service.core import registry
from dpa_service.core.registry import Mechanism, RegimeTerms

REGIME_NAMES = {"eea": "the EU/EEA", "uk": "the United Kingdom", "ch": "Switzerland"}
HOME_COUNTRY = {"uk": "GB", "ch": "CH"}


@dataclass(frozen=True)
class TransferFacts:
    destination_country: str
    mechanism: str
    start_date: date
    end_date: date | None
    importer_certified: bool | None
    origin: str = "eea"
    instrument_date: date | None = None
    importer: str = ""
    tia_reference: str | None = None
    certification: dict[str, Any] | None = None
    systematic: bool = False

    @property
    def concluded_on(self) -> date:
        return self.instrument_date or self.start_date


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str
    suggested: tuple[str, ...] = ()
    risks: tuple[str, ...] = field(default=())


def active_on(facts: TransferFacts, day: date) -> bool:
    return facts.start_date <= day and (facts.end_date is None or day <= facts.end_date)


def effective_regime(origin: str, day: date) -> str:
    """The regime whose law governs an export from `origin` on `day` (the UK applied EU law until 2020-12-31)."""
    if origin == "uk":
        own = registry.regimes()["uk"].own_law_from
        if own is not None and day < own:
            return "eea"
    return origin if origin in registry.ORIGINS else "eea"


def _until(terms: RegimeTerms, code: str, invalidations: dict[str, date]) -> date | None:
    dates = [d for d in (terms.valid_until, invalidations.get(code)) if d is not None]
    return min(dates) if dates else None


def _eu_adequate(country: str, day: date) -> registry.AdequacyDecision | None:
    decision = registry.adequacy_decisions().get(country)
    return decision if decision is not None and decision.covers(day) else None


def _organisation(importer: str) -> registry.AdequacyDecision | None:
    """The international organisation an importer names, if the register knows it (case and spacing aside)."""
    wanted = " ".join(importer.split()).casefold()
    for decision in registry.organisation_decisions():
        if wanted in {" ".join(n.split()).casefold() for n in (decision.organisation, *decision.importers)}:
            return decision
    return None


def _adequacy_finding(regime: str, country: str, day: date) -> tuple[str, str] | None:
    """(decision, scope) of the adequacy finding of `regime` covering `country` on `day`, if any."""
    if regime == "eea":
        found = _eu_adequate(country, day)
        return (found.decision, found.scope) if found else None
    hit = registry.regimes()[regime].adequate(country, day)
    return (hit.decision, hit.scope) if hit else None


def _covers(mechanism: Mechanism, facts: TransferFacts, day: date, invalidations: dict[str, date]) -> str | None:
    """None if `mechanism` covers the transfer on `day` under the transfer's regime, else the reason in plain words."""
    regime = effective_regime(facts.origin, day)
    name, country = mechanism.name, registry.country_name(facts.destination_country)
    terms = mechanism.terms(regime)
    if terms is None:
        return (
            f"{name} is not a transfer tool under the law of {REGIME_NAMES[regime]}: a transfer from "
            f"{REGIME_NAMES[regime]} can rest only on that regime's own mechanisms"
        )
    if mechanism.kind == "derogation" and facts.systematic:
        return f"{name} never covers systematic transfers such as a processor's or a listed sub-processor's"
    if day < terms.valid_from:
        return f"{name} could only be relied on from {terms.valid_from.isoformat()}"
    until = _until(terms, mechanism.code, invalidations)
    if until is not None and day >= until:
        if invalidations.get(mechanism.code) == until and (terms.valid_until is None or until < terms.valid_until):
            return f"{name} was invalidated with effect from {until.isoformat()} (recorded by legal)"
        return terms.invalid_reason or f"{name} stopped being valid on {until.isoformat()}"
    if terms.instruments_until is not None and facts.concluded_on >= terms.instruments_until:
        return (
            f"{name} could not be used for contracts concluded on or after {terms.instruments_until.isoformat()} "
            f"(this transfer's instrument is dated {facts.concluded_on.isoformat()})"
        )
    if mechanism.destinations and facts.destination_country not in mechanism.destinations:
        return f"{name} only covers transfers to {', '.join(registry.country_name(c) for c in mechanism.destinations)}"
    if mechanism.code == "adequacy" and _adequacy_finding(regime, facts.destination_country, day) is None:
        finding = {"eea": "EU adequacy decision", "uk": "UK adequacy regulations", "ch": "Swiss adequacy finding"}[
            regime
        ]
        return f"{country} has no {finding} in force on {day.isoformat()}"
    if mechanism.requires_certified_importer and not facts.importer_certified:
        return f"{name} only covers importers certified under it, and this importer is not recorded as certified"
    return None


def _risks(mechanism: Mechanism, facts: TransferFacts, day: date) -> tuple[str, ...]:
    risks = []
    if mechanism.requires_tia and not (facts.tia_reference or "").strip():
        risks.append(
            f"no transfer impact assessment is recorded for this {mechanism.name} transfer (CJEU C-311/18; "
            "EDPB Recommendations 01/2020): record its reference"
        )
    if mechanism.requires_certified_importer:
        record = facts.certification or {}
        if not all(str(record.get(key) or "").strip() for key in ("checked_by", "checked_on", "entry")):
            risks.append(
                f"the importer's {mechanism.name} certification is not verified: record who checked the list, "
                "when, and the list entry"
            )
        elif str(record["checked_on"]) > day.isoformat():
            risks.append(f"the importer's certification was checked only on {record['checked_on']}, after this day")
    if mechanism.risk_note and (mechanism.risk_from is None or day >= mechanism.risk_from):
        risks.append(mechanism.risk_note.strip())
    return tuple(risks)


def suggestions(facts: TransferFacts, day: date, invalidations: dict[str, date]) -> tuple[str, ...]:
    """Mechanisms of the transfer's own regime that would cover it on `day` (a new instrument that day)."""
    catalogue = registry.mechanisms()
    preferred = [
        "adequacy",
        "eu-us-dpf",
        "uk-us-data-bridge",
        "swiss-us-dpf",
        "scc-2021",
        "uk-addendum",
        "uk-idta",
        "scc-2010",
    ]
    candidates = [code for code in preferred if code in catalogue]
    mechanism = catalogue.get(facts.mechanism)
    if mechanism is not None:
        candidates = [*mechanism.successors, *candidates]
    fresh = TransferFacts(
        facts.destination_country,
        "",
        day,
        None,
        facts.importer_certified,
        origin=facts.origin,
        instrument_date=day,
        systematic=facts.systematic,
    )
    seen: list[str] = []
    for code in candidates:
        if code in seen or code == facts.mechanism or catalogue[code].kind == "derogation":
            continue
        if _covers(catalogue[code], fresh, day, invalidations) is None:
            seen.append(code)
    return tuple(seen)


def _no_mechanism_needed(facts: TransferFacts, day: date) -> Verdict | None:
    """A verdict when the destination itself makes the transfer lawful (or no transfer at all), else None."""
    regime = effective_regime(facts.origin, day)
    country = registry.country(facts.destination_country)
    name = country.name if country else facts.destination_country
    organisation = _organisation(facts.importer) if facts.importer else None
    if organisation is not None and regime == "eea":
        if organisation.covers(day):
            return Verdict(True, f"{organisation.organisation} has an EU adequacy decision ({organisation.decision}).")
        return None  # an international organisation is a Chapter V recipient wherever it sits
    if HOME_COUNTRY.get(facts.origin) == facts.destination_country:
        return Verdict(True, f"{name} is where the data comes from: this is not an international transfer.")
    if regime == "eea":
        if country is not None and country.eea:
            return Verdict(True, f"{name} is in the EU/EEA: no transfer mechanism is needed.")
        if facts.destination_country == "GB":
            for until, status in registry.regimes()["uk"].eu_status:
                if day < until:
                    return Verdict(True, f"On {day.isoformat()} the United Kingdom was {status}: no mechanism needed.")
        adequate = _eu_adequate(facts.destination_country, day)
        if adequate is not None:
            risks: tuple[str, ...] = ()
            scope = ""
            if adequate.scope:
                scope = f", for {adequate.scope}"
                risks = (f"the adequacy decision for {name} covers only {adequate.scope}: confirm the importer is one",)
            renewed = ""
            if adequate.renewed_on is not None and day >= adequate.renewed_on:
                renewed = f"; renewed on {adequate.renewed_on.isoformat()}"
            return Verdict(
                True, f"{name} has an EU adequacy decision ({adequate.decision}{scope}{renewed}).", (), risks
            )
        return None
    finding = _adequacy_finding(regime, facts.destination_country, day)
    if finding is not None:
        decision, scope = finding
        risks = (f"the adequacy finding for {name} covers only {scope}: confirm the importer is one",) if scope else ()
        scope_text = f", for {scope}" if scope else ""
        law = registry.regimes()[regime].name
        return Verdict(True, f"{name} is adequate under {law} ({decision}{scope_text}).", (), risks)
    return None


def assess(facts: TransferFacts, day: date, invalidations: dict[str, date] | None = None) -> Verdict:
    invalidations = invalidations or {}
    settled = _no_mechanism_needed(facts, day)
    if settled is not None:
        return settled
    mechanism = registry.mechanisms().get(facts.mechanism)
    if mechanism is None:
        return Verdict(
            False, f"'{facts.mechanism}' is not a known transfer mechanism.", suggestions(facts, day, invalidations)
        )
    problem = _covers(mechanism, facts, day, invalidations)
    if problem is None:
        return Verdict(
            True,
            f"Covered by {mechanism.name} ({mechanism.legal_reference.split(';')[0].strip()}).",
            (),
            _risks(mechanism, facts, day),
        )
    return Verdict(False, f"{problem}.", suggestions(facts, day, invalidations))


def listing_problem(mechanism_code: str, country_code: str, day: date, invalidations: dict[str, date]) -> str | None:
    """Why a sub-processor located in `country_code` cannot rely on `mechanism_code` from `day` (None: it can).

    A listed sub-processor is engaged from `day`, so the mechanism must be open to new instruments then; its
    transfers are systematic (never Article 49); one relying on a framework that certifies importers (the DPF) is
    listed by legal as certified."""
    country = registry.country(country_code)
    if country is not None and country.eea:
        return None
    if _eu_adequate(country_code, day) is not None:
        return None
    mechanism = registry.mechanisms().get(mechanism_code)
    if mechanism is None:
        return f"'{mechanism_code}' is not a known transfer mechanism"
    facts = TransferFacts(country_code, mechanism_code, day, None, importer_certified=True, systematic=True)
    return _covers(mechanism, facts, day, invalidations)
