"""What a tenant is told when a campaign makes it a new DPA: one outbox message (an e-mail to its owners and admins
and to the executed DPA's contact address, and the `campaign.draft_created` webhook)."""

from __future__ import annotations

import uuid
from typing import Any

from dpa_service.campaigns.models import Campaign
from dpa_service.core import registry

TOPIC = "campaign.draft_created"


def _name(code: str) -> str:
    found = registry.mechanisms().get(code)
    return found.name if found else code


def notice_payload(
    campaign: Campaign, agreement_id: uuid.UUID, previous_id: uuid.UUID, contact: str | None, base_url: str
) -> dict[str, Any]:
    """The webhook's data, and the e-mail's subject and text."""
    processor = registry.processor().get("trading_name") or registry.processor()["legal_name"]
    due = campaign.due_on.isoformat()
    changes = []
    if campaign.template_key:
        changes.append(f"the new version of the agreement ({campaign.template_key} v{campaign.template_version})")
    if campaign.replace_mechanism:
        changes.append(
            f"{_name(campaign.replacement_mechanism or '')} in place of {_name(campaign.replace_mechanism)} for "
            "transfers"
        )
    text = "\n".join(
        [
            f"{processor} asks you to sign a new Data Processing Agreement by {due}.",
            "",
            f"Why: {campaign.reason}",
            "",
            "It is pre-filled from your current DPA, with " + " and ".join(changes) + "."
            if changes
            else "It is pre-filled from your current DPA.",
            "Check it, submit it and sign it; your current DPA stays in force until the new one is executed.",
            "If you object, you can decline it with a reason on its page.",
            "",
            f"{base_url}/app/agreements/{agreement_id}",
        ]
    )
    return {
        "campaign_id": str(campaign.id),
        "agreement_id": str(agreement_id),
        "replaces": str(previous_id),
        "reason": campaign.reason,
        "due_on": due,
        "subject": f"{processor}: please sign your new Data Processing Agreement by {due}",
        "text": text,
        **({"email_also": [contact]} if contact else {}),
    }
