"""Every event the obligations package puts in the outbox can be subscribed to by name (`EVENT_NAMES`): a topic
enqueued but not listed would reach `*` subscribers only, and naming it on an endpoint would be 422."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from dpa_service.notifications.models import EVENT_NAMES
from tests.helpers.api import Api

OBLIGATIONS = Path(__file__).resolve().parents[2] / "dpa_service" / "obligations"
# An IP literal that is global: the SSRF guard passes it without a DNS lookup, and nothing is ever sent to it
# (the tests run the outbox worker themselves and deliver nothing here).
PUBLIC_URL = "https://93.184.215.14/hooks"


def enqueued_topics() -> set[str]:
    """The topics of every `enqueue_many(session, TOPIC, ...)` in the package, read from its source."""
    topics: set[str] = set()
    for path in sorted(OBLIGATIONS.glob("*.py")):
        module = importlib.import_module(f"dpa_service.obligations.{path.stem}")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "enqueue_many":
                topic = node.args[1]
                if isinstance(topic, ast.Name):
                    topics.add(getattr(module, topic.id))
                else:  # e.g. inquiries_notices' `kind.topic`: the module names its topics `*_TOPIC`
                    topics |= {value for name, value in vars(module).items() if name.endswith("_TOPIC")}
    return topics


def test_every_topic_the_obligations_package_enqueues_is_a_known_event_name() -> None:
    topics = enqueued_topics()
    assert {
        "tenant.termination_recorded",
        "deletion_certificate.issued",
        "assistance_request.created",
        "assistance_request.answered",
        "breach_notice.reported",
        "inquiry.overdue",
    } <= topics
    assert topics - EVENT_NAMES == set()


async def test_a_subscriber_subscribes_to_the_obligations_events_by_name(admin: Api) -> None:
    owner = await admin.new_tenant()
    events = sorted(enqueued_topics())
    created = await owner.post("/webhook-endpoints", {"url": PUBLIC_URL, "events": events})
    assert created.status_code == 201, created.text
    assert (await owner.get(f"/webhook-endpoints/{created.json()['id']}")).json()["events"] == events
