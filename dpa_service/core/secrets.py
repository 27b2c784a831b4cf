"""The service's secrets: its own secret key, files written once with mode 0600, and one AEAD helper.

DPA_SECRET_KEY in production (every host must share it); otherwise a random secret generated on first run
under `$DPA_VAR_DIR/keys/app-secret` (mode 0600). Placeholders and short values are refused outside development.
Everything the service encrypts at rest (stored idempotent responses, webhook endpoint secrets) goes through
`Sealer`: AES-256-GCM under a key derived (HKDF-SHA256) from the service secret and a purpose label, so one
purpose's ciphertext never opens under another's key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dpa_service.core.settings import Settings

PLACEHOLDERS = {"changeme", "change-me", "secret", "dev", "development", "test", "please-change-me"}
MIN_LENGTH = 32
NONCE_BYTES = 12


def write_once(path: Path, data: bytes) -> bool:
    """Create `path` (mode 0600) with `data` unless it exists; True if this call wrote it.

    The file appears complete or not at all, and when several workers start at once the first one wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return True


def load_app_secret(settings: Settings) -> bytes:
    configured = settings.secret_key.get_secret_value() if settings.secret_key else None
    if configured:
        if (configured.lower() in PLACEHOLDERS or len(configured) < MIN_LENGTH) and not settings.is_development:
            raise ValueError(f"DPA_SECRET_KEY is a placeholder or shorter than {MIN_LENGTH} characters")
        return configured.encode()
    if settings.environment == "production":
        raise ValueError("DPA_SECRET_KEY is required in production (all hosts must share it)")
    path = app_secret_path(settings)
    if not path.exists():
        write_once(path, secrets.token_hex(32).encode())
    return path.read_text().strip().encode()


def app_secret_path(settings: Settings) -> Path:
    """Where the generated secret lives (DPA_SECRET_KEY unset): part of every backup of the key directory."""
    return settings.var_dir / "keys" / "app-secret"


def existing_app_secret(settings: Settings) -> bytes | None:
    """The service secret if there is one, never making one (a check after a restore must not invent a key)."""
    if settings.secret_key is not None and settings.secret_key.get_secret_value():
        return settings.secret_key.get_secret_value().encode()
    path = app_secret_path(settings)
    return path.read_text().strip().encode() if path.is_file() else None


class Sealer:
    """AES-256-GCM with a key derived from `key_material` for one `purpose`; output is nonce || ciphertext."""

    def __init__(self, key_material: bytes, purpose: bytes, *, salt: bytes | None = None) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=purpose).derive(key_material)
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, None)

    def open(self, sealed: bytes) -> bytes:
        """Raises cryptography's InvalidTag when `sealed` was not made by this key (or was changed)."""
        return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], None)
