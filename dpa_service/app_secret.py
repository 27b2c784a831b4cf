"""The service's own secret (HMAC and key derivation for stored idempotent responses).

DPA_SECRET_KEY in production (every host must share it); otherwise a random secret generated on first run
under `$DPA_VAR_DIR/keys/app-secret` (mode 0600). Placeholders and short values are refused outside development.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from dpa_service.private_files import write_once
from dpa_service.settings import Settings

PLACEHOLDERS = {"changeme", "change-me", "secret", "dev", "development", "test", "please-change-me"}
MIN_LENGTH = 32


def load_app_secret(settings: Settings) -> bytes:
    configured = os.environ.get("DPA_SECRET_KEY")
    if configured:
        if (configured.lower() in PLACEHOLDERS or len(configured) < MIN_LENGTH) and not settings.is_development:
            raise ValueError(f"DPA_SECRET_KEY is a placeholder or shorter than {MIN_LENGTH} characters")
        return configured.encode()
    if settings.environment == "production":
        raise ValueError("DPA_SECRET_KEY is required in production (all hosts must share it)")
    path: Path = settings.var_dir / "keys" / "app-secret"
    if not path.exists():
        write_once(path, secrets.token_hex(32).encode())
    return path.read_text().strip().encode()
