"""The demo data reads right on the page a new user opens first: the DPA's parties block."""

from __future__ import annotations

import pytest

from dpa_service.core.registry import country_name
from dpa_service.demo import DEMO_TENANTS


@pytest.mark.parametrize("tenant", DEMO_TENANTS, ids=lambda t: t.name)
def test_a_demo_address_does_not_repeat_the_country_the_dpa_prints_below_it(tenant) -> None:
    # The DPA prints the address, then country_name(country) on its own line.
    assert country_name(tenant.country).lower() not in tenant.address.lower()
