"""What a DPA template sees when it renders: plain, JSON-like data only (it is also the render cache key)."""

from __future__ import annotations

from datetime import date
from typing import Any

from dpa_service.core import registry
from dpa_service.template_versions.models import TemplateVersion

_NOWHERE = registry.Country("", "", eu=False, eea=False)


def _mechanism(code: str) -> dict[str, str]:
    found = registry.mechanisms().get(code)
    if found is None:
        return {"code": code, "name": code, "legal_reference": ""}
    return {"code": code, "name": found.name, "legal_reference": found.legal_reference}


def subprocessor_annex(listing: dict[str, Any] | None = None) -> dict[str, Any]:
    """Annex III: the given sub-processor list version, or the shipped seed list for previews."""
    source = listing or registry.subprocessor_seed()
    return {
        "version": source.get("version"),
        "effective_at": source.get("effective_at"),
        "items": [
            {
                "name": item["name"],
                "entity": item.get("entity", item["name"]),
                "purpose": item.get("purpose", ""),
                "address": item.get("address", ""),
                "nature": item.get("nature", ""),
                "duration": item.get("duration", ""),
                "locations": [registry.location_name(code) for code in item.get("locations", [])],
                "data_categories": list(item.get("data_categories", [])),
                "transfer_mechanism": _mechanism(item["transfer_mechanism"])["name"]
                if item.get("transfer_mechanism")
                else registry.NO_MECHANISM_NAME,
            }
            for item in source.get("items", [])
        ],
        # The processor's own tools (registry/subprocessors.yaml `not_subprocessors`): not sub-processors, shown
        # so that nobody takes their absence from the list for an omission.
        "not_subprocessors": [
            {"name": row["name"], "entity": row.get("entity", ""), "why": row.get("why", "")}
            for row in registry.subprocessor_seed().get("not_subprocessors", [])
        ],
    }


def _supervisory_authority(variables: dict[str, Any]) -> dict[str, Any] | None:
    """The authority of the Member State where the Subscriber (the data exporter) is established, Clause 13(a) of
    the SCCs; None for a Subscriber outside the EEA, whose authority follows its Art. 27 representative (the
    template says so): the governing law's state is not a ground of competence."""
    authorities = registry.supervisory_authorities()
    code = (variables.get("controller") or {}).get("country")
    if isinstance(code, str) and code in authorities:
        found = authorities[code]
        return {key: found.get(key) for key in ("country", "name", "website", "note", "land_authority")}
    return None


# SCC Clause 17 (Option 1) and Clause 18(b) (Decision (EU) 2021/914) choose the law and courts of an *EU* Member
# State: an EEA-EFTA state (IS, LI, NO) may govern the DPA but not the SCCs. Ireland is the fallback because its law
# grants third-party beneficiary rights for the SCCs (S.I. No. 297 of 2021), as Clause 17 requires.
SCC_FALLBACK_LAW = "IE"


def scc_law(variables: dict[str, Any]) -> str:
    """The EU Member State whose law and courts the SCCs choose: the DPA's governing law when it is an EU state,
    else the Subscriber's country when that is one, else Ireland."""
    for code in (variables.get("governing_law"), (variables.get("controller") or {}).get("country")):
        found = registry.country(code) if isinstance(code, str) else None
        if found is not None and found.eu:
            return found.code
    return SCC_FALLBACK_LAW


def build_context(
    version: TemplateVersion,
    variables: dict[str, Any],
    *,
    reference: str,
    status: str,
    generated_on: date,
    custom_clauses: list[dict[str, str]] | None = None,
    subprocessors: dict[str, Any] | None = None,
) -> dict[str, Any]:
    mechanism_codes = (variables.get("transfers") or {}).get("mechanisms") or []
    processor = registry.processor()
    destination = registry.processor_transfer_destination()
    return {
        "variables": variables,
        "processor": processor,
        # Clause 12.1: where the processor hosts, and whether reaching it is itself a restricted transfer.
        "processor_location": {
            "established_in_eea": bool((registry.country(str(processor.get("country"))) or _NOWHERE).eea),
            "hosting": [registry.country_name(code) for code in processor.get("hosting_locations") or []],
            "hosting_in_eea": all(
                (registry.country(code) or _NOWHERE).eea for code in processor.get("hosting_locations") or []
            ),
            "transfer_to": registry.country_name(destination) if destination else None,
        },
        "template": {"key": version.key, "version": version.version, "title": version.title, "sha256": version.sha256},
        "document": {"reference": reference, "status": status, "generated_on": generated_on.isoformat()},
        "mechanisms": [_mechanism(code) for code in mechanism_codes],
        "subprocessors": subprocessor_annex(subprocessors),
        "custom_clauses": [{"title": c["title"], "text": c["text"]} for c in custom_clauses or []],
        "obligations": version.obligations,
        "supervisory_authority": _supervisory_authority(variables),
        "scc_law": scc_law(variables),
    }
