"""The obligations domain as other domains may use it (import-linter: another domain only through `services`).

One import line per function, so features added side by side merge without conflict. `exit_lookup` and `ledger`
need no agreements module at import time: the agreements domain imports this module for its read models (the
dashboard's obligation counts, document verification's deletion certificates), so nothing here may import
agreements at module level. Whether a tenant in exit may sign is not asked here: the obligations domain registers
that check on `core.events.checks` (`obligations.reactions.refuse_in_exit`).
"""

from dpa_service.obligations.exit_lookup import deletion_certificate_by_sha256 as deletion_certificate_by_sha256
from dpa_service.obligations.ledger import list_obligations as list_obligations
from dpa_service.obligations.ledger import status_counts as status_counts
