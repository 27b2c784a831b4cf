"""The service's own secret (HMAC and key derivation for stored idempotent responses).

DPA_SECRET_KEY in production (every host must share it); otherwise a random secret generated on first run
under `$DPA_VAR_DIR/keys/app-secret` (mode 0600). Placeholders and short values are refused outside development.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

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
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # first writer wins when several workers start at once
        tmp.unlink(missing_ok=True)
    return path.read_text().strip().encode()
