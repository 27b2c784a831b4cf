"""What other domains use from the obligations domain (they import nothing else from it)."""

from __future__ import annotations

from dpa_service.obligations.ledger import list_obligations, status_counts

__all__ = ["list_obligations", "status_counts"]
