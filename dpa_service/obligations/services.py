"""The obligations domain as other domains may use it (import-linter: another domain only through `services`).

One import line per function, so features added side by side merge without conflict.
"""

from dpa_service.obligations.exit_lookup import deletion_certificate_by_sha256 as deletion_certificate_by_sha256
from dpa_service.obligations.exit_lookup import exit_of as exit_of
