"""The cross-tenant check every feature reuses: tenant B's key must never reach tenant A's objects.

Describe what A owns as probes; `assert_isolated` tries each with B's key and insists on 404 for direct
access (never 403, which would reveal that the object exists) and on absence from B's lists. Later features
add their own probes (agreements, transfers, ...) and call the same function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.helpers.api import Api


@dataclass(frozen=True)
class Probe:
    """One of tenant A's objects: how to reach it directly, and lists where it must not show up for B."""

    label: str
    object_id: str
    direct: list[tuple[str, str, Any]] = field(default_factory=list)  # (method, path, body)
    lists: list[str] = field(default_factory=list)


async def assert_isolated(owner: Api, intruder: Api, probes: list[Probe]) -> None:
    for probe in probes:
        readable = [path for method, path, _ in probe.direct if method == "GET" and not path.endswith("/document")]
        before = [(await owner.get(path)).json() for path in readable]
        for method, path, body in probe.direct:
            mine = await _call(owner, "GET", path, None) if method == "GET" else None
            if mine is not None:
                assert mine.status_code == 200, f"{probe.label}: the owner cannot read {path}: {mine.text}"
            response = await _call(intruder, method, path, body)
            assert response.status_code == 404, (
                f"{probe.label}: {method} {path} with another tenant's key answered "
                f"{response.status_code}, expected 404: {response.text}"
            )
            assert response.headers["content-type"].startswith("application/problem+json")
        after = [(await owner.get(path)).json() for path in readable]
        assert after == before, f"{probe.label} changed after another tenant's attempts"
        for path in probe.lists:
            response = await intruder.get(path, limit=200)
            assert response.status_code == 200, response.text
            assert probe.object_id not in response.text, f"{probe.label} leaked into another tenant's {path}"


async def _call(api: Api, method: str, path: str, body: Any) -> Any:
    if method == "GET":
        return await api.get(path)
    if method == "DELETE":
        return await api.delete(path)
    if method == "PATCH":
        return await api.patch(path, body)
    return await api.post(path, body)
