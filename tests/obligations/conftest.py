"""What the obligations tests share."""

from __future__ import annotations

import pytest

from dpa_service.core import registry


@pytest.fixture
def irish_processor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Due dates that count the processor's public holidays as an Irish processor's (St Patrick's Day, the October
    bank holiday): pin the processor's country, whatever registry/processor.yaml says (the shipped processor is a
    U.S. company, whose holidays are others)."""
    shipped = registry._processor_file()
    monkeypatch.setattr(registry, "_processor_file", lambda: {**shipped, "country": "IE"})
