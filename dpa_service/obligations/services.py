"""The obligations domain as other domains may use it (import-linter: another domain only through `services`).

One import line per function, so features added side by side merge without conflict. `exit_lookup` needs only
`core` and this package's tables: the agreements domain imports this module, so nothing here may import agreements
at module level.
"""

from dpa_service.obligations.exit_lookup import deletion_certificate_by_sha256 as deletion_certificate_by_sha256
from dpa_service.obligations.exit_lookup import exit_of as exit_of
from dpa_service.obligations.ledger import list_obligations as list_obligations
from dpa_service.obligations.ledger import status_counts as status_counts
