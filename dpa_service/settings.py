"""All configuration, read from environment variables, with defaults that run on one machine."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_APP_ROLE = "dpa_app"
ENVIRONMENTS = ("development", "test", "production")


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _flag(name: str) -> bool:
    return (_env(name, "") or "").lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class DatabaseSettings:
    url: str
    """Owner (or superuser) login: migrations run as it."""
    app_url: str | None = None
    """Optional separate non-owner login for serving; otherwise the app does SET ROLE `app_role`."""
    app_role: str = DEFAULT_APP_ROLE
    pool_size: int = 10
    echo: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")


@dataclass(frozen=True)
class Settings:
    var_dir: Path
    database: DatabaseSettings
    environment: str = "development"
    public_base_url: str | None = None
    log_level: str = "INFO"
    webhook_allow_private: bool = False
    signing_link_days: int = 14
    auto_countersign_email: str | None = None
    smtp_url: str | None = None
    mail_from: str = "DPA service <no-reply@localhost>"
    run_worker: bool = True
    redis_url: str | None = None
    queue_name: str = "dpa-webhook-deliveries"

    def __post_init__(self) -> None:
        if self.environment not in ENVIRONMENTS:
            raise ValueError(f"DPA_ENV must be one of {', '.join(ENVIRONMENTS)}, not {self.environment!r}")
        if self.environment == "production" and not self.public_base_url:
            raise ValueError("PUBLIC_BASE_URL is required in production: e-mailed links must not follow Host headers")
        if not 1 <= self.signing_link_days <= 90:
            raise ValueError("DPA_SIGNING_LINK_DAYS must be between 1 and 90")
        if self.webhook_allow_private and not self.is_development:
            raise ValueError(
                "DPA_WEBHOOK_ALLOW_PRIVATE=1 is for development only: it would let webhooks reach internal hosts"
            )

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @classmethod
    def from_env(cls) -> Settings:
        var_dir = Path(_env("DPA_VAR_DIR", "./var") or "./var").resolve()
        default_db = f"sqlite+aiosqlite:///{var_dir / 'dpa.db'}"
        database = DatabaseSettings(
            url=_env("DATABASE_URL", default_db) or default_db,
            app_url=_env("DATABASE_APP_URL"),
            app_role=_env("DATABASE_APP_ROLE", DEFAULT_APP_ROLE) or DEFAULT_APP_ROLE,
            pool_size=int(_env("DATABASE_POOL_SIZE", "10") or "10"),
            echo=_flag("DATABASE_ECHO"),
        )
        public_base_url = _env("PUBLIC_BASE_URL")
        return cls(
            var_dir=var_dir,
            database=database,
            environment=_env("DPA_ENV", "development") or "development",
            public_base_url=public_base_url.rstrip("/") if public_base_url else None,
            log_level=_env("DPA_LOG_LEVEL", "INFO") or "INFO",
            webhook_allow_private=_flag("DPA_WEBHOOK_ALLOW_PRIVATE"),
            signing_link_days=int(_env("DPA_SIGNING_LINK_DAYS", "14") or "14"),
            auto_countersign_email=_env("DPA_AUTO_COUNTERSIGN_EMAIL"),
            smtp_url=_env("SMTP_URL"),
            run_worker=(_env("DPA_IN_PROCESS_WORKER", "1") or "1") not in {"0", "false", "no", "off"},
            redis_url=_env("REDIS_URL"),
            queue_name=_env("DPA_QUEUE_NAME", "dpa-webhook-deliveries") or "dpa-webhook-deliveries",
            mail_from=_env("MAIL_FROM", "DPA service <no-reply@localhost>") or "DPA service <no-reply@localhost>",
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
