"""All configuration, read from environment variables (pydantic-settings), with defaults that run on one machine.

`Environment` is the raw environment, one field per variable (README, "Configuration"); `Settings` is what the
service uses, checked once at start: a bad combination (production without PUBLIC_BASE_URL, an unsafe switch
outside development) refuses to start with a message naming the variable. Secrets are `SecretStr`, so they never
appear in a repr, a log line or a traceback.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_APP_ROLE = "dpa_app"
ENVIRONMENTS = ("development", "test", "production")
MIN_METRICS_TOKEN = 16


class DatabaseSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

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


class DocuSignSettings(BaseModel):
    """A DocuSign account reached through its REST API with the JWT grant (README, "DocuSign")."""

    model_config = ConfigDict(frozen=True)

    base_uri: str
    """The account's base URI (from userinfo, e.g. https://demo.docusign.net): API calls go to `<base>/restapi`."""
    oauth_host: str
    integration_key: str
    user_id: str
    account_id: str
    private_key_path: Path
    connect_hmac_keys: tuple[SecretStr, ...] = ()
    ca_bundle: Path | None = None
    """A CA bundle to trust instead of the public roots (a local stand-in's test CA)."""
    countersign_in_envelope: bool = False
    """True: the processor's signatory signs in the envelope (routing order 2) and DocuSign's completion executes
    the DPA; False: the envelope carries the Subscriber's signature only, legal countersigns in the product."""
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    create_attempts: int = Field(default=5, ge=1, le=20)
    """Envelope creation is tried this many times (429/5xx/timeouts), with backoff, before the request fails."""
    first_retry_seconds: float = Field(default=10.0, ge=0)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    var_dir: Path
    database: DatabaseSettings
    environment: Literal["development", "test", "production"] = "development"
    public_base_url: str | None = None
    log_level: str = "INFO"
    log_format: Literal["json", "text"] | None = None
    """None: JSON lines outside development, readable text in development (see `log_format_in_use`)."""
    metrics_token: SecretStr | None = None
    """Bearer token a scraper sends to `/metrics`; without one, only loopback clients are served."""
    webhook_allow_private: bool = False
    signing_link_days: int = Field(default=14, ge=1, le=90)
    auto_countersign_email: str | None = None
    auto_countersign_authority: str | None = None
    """The standing authority an automatic countersignature is applied under, named in the evidence; None: the
    processor's standing authority for its designated signatory (registry/processor.yaml), see `execution`."""
    smtp_url: SecretStr | None = None
    mail_from: str = "DPA service <no-reply@localhost>"
    run_worker: bool = True
    redis_url: str | None = None
    queue_name: str = "dpa-webhook-deliveries"
    secret_key: SecretStr | None = None
    rate_limit_per_minute: int = Field(default=60, ge=1)
    trusted_proxies: tuple[str, ...] = ()
    """CIDRs of the reverse proxies whose X-Forwarded-For is believed (http.proxies); none by default."""
    render_processes: int | None = Field(default=None, ge=1, le=64)
    render_timeout_seconds: float = Field(default=120.0, gt=0)
    seal_key_path: Path | None = None
    seal_cert_path: Path | None = None
    seal_pkcs12_path: Path | None = None
    seal_pkcs12_password: SecretStr | None = None
    processor_hosting: tuple[str, ...] = ()
    """ISO codes of where the processor hosts Customer Personal Data, overriding registry/processor.yaml's
    `hosting_locations` (DPA_PROCESSOR_HOSTING, comma-separated, e.g. "DE,IE"); empty: the file's."""
    seal_tsa_url: str | None = None
    """An RFC 3161 time-stamping authority: the seal then carries its timestamp (PAdES B-T), else B-B."""
    docusign: DocuSignSettings | None = None
    """Set when every DOCUSIGN_* variable the JWT grant needs is: `provider: "docusign"` is refused otherwise."""
    checkpoint_dir: Path | None = None
    """Where signed audit checkpoints are appended (default `$DPA_VAR_DIR/checkpoints`): keep it off the database's
    host, or copy it somewhere append-only, so whoever can rewrite the database cannot rewrite these too."""

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"DPA_TRUSTED_PROXIES: {item!r} is not an IP address or CIDR range") from exc
        return value

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.environment == "production" and not self.public_base_url:
            raise ValueError("PUBLIC_BASE_URL is required in production: e-mailed links must not follow Host headers")
        if self.webhook_allow_private and not self.is_development:
            raise ValueError(
                "DPA_WEBHOOK_ALLOW_PRIVATE=1 is for development only: it would let webhooks reach internal hosts"
            )
        token = self.metrics_token.get_secret_value() if self.metrics_token else ""
        if token and len(token) < MIN_METRICS_TOKEN and not self.is_development:
            raise ValueError(f"DPA_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN} characters outside development")
        return self

    @property
    def checkpoints_path(self) -> Path:
        return self.checkpoint_dir or self.var_dir / "checkpoints"

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def log_format_in_use(self) -> Literal["json", "text"]:
        return self.log_format or ("text" if self.is_development else "json")

    @classmethod
    def from_env(cls) -> Settings:
        return Environment().to_settings()


class Environment(BaseSettings):
    """The environment variables the service reads (empty values count as unset)."""

    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True, extra="ignore")

    DPA_VAR_DIR: Path = Path("./var")
    DATABASE_URL: str | None = None
    DATABASE_APP_URL: str | None = None
    DATABASE_APP_ROLE: str = DEFAULT_APP_ROLE
    DATABASE_POOL_SIZE: int = 10
    DATABASE_ECHO: bool = False
    DPA_ENV: str = "development"
    PUBLIC_BASE_URL: str | None = None
    DPA_LOG_LEVEL: str = "INFO"
    DPA_LOG_FORMAT: Literal["json", "text"] | None = None
    DPA_METRICS_TOKEN: SecretStr | None = None
    DPA_WEBHOOK_ALLOW_PRIVATE: bool = False
    DPA_SIGNING_LINK_DAYS: int = 14
    DPA_AUTO_COUNTERSIGN_EMAIL: str | None = None
    DPA_AUTO_COUNTERSIGN_AUTHORITY: str | None = None
    SMTP_URL: SecretStr | None = None
    MAIL_FROM: str = "DPA service <no-reply@localhost>"
    DPA_IN_PROCESS_WORKER: bool = True
    REDIS_URL: str | None = None
    DPA_QUEUE_NAME: str = "dpa-webhook-deliveries"
    DPA_SECRET_KEY: SecretStr | None = None
    DPA_RATE_LIMIT: int = 60
    DPA_TRUSTED_PROXIES: str | None = None
    DPA_RENDER_PROCESSES: int | None = None
    DPA_RENDER_TIMEOUT: float = 120.0
    DPA_SEAL_KEY_PATH: Path | None = None
    DPA_SEAL_CERT_PATH: Path | None = None
    DPA_SEAL_PKCS12_PATH: Path | None = None
    DPA_SEAL_PKCS12_PASSWORD: SecretStr | None = None
    DPA_SEAL_TSA_URL: str | None = None
    DPA_CHECKPOINT_DIR: Path | None = None
    DPA_PROCESSOR_HOSTING: str | None = None
    DOCUSIGN_BASE_URI: str | None = None
    DOCUSIGN_OAUTH_HOST: str | None = None
    DOCUSIGN_INTEGRATION_KEY: str | None = None
    DOCUSIGN_USER_ID: str | None = None
    DOCUSIGN_ACCOUNT_ID: str | None = None
    DOCUSIGN_PRIVATE_KEY_PATH: Path | None = None
    DOCUSIGN_CONNECT_HMAC_KEYS: SecretStr | None = None
    DOCUSIGN_CA_BUNDLE: Path | None = None
    DOCUSIGN_COUNTERSIGN_IN_ENVELOPE: bool = False

    def docusign(self) -> DocuSignSettings | None:
        """DocuSign, when configured: all of base URI, OAuth host, integration key, user, account and key."""
        required = (
            self.DOCUSIGN_BASE_URI,
            self.DOCUSIGN_OAUTH_HOST,
            self.DOCUSIGN_INTEGRATION_KEY,
            self.DOCUSIGN_USER_ID,
            self.DOCUSIGN_ACCOUNT_ID,
            self.DOCUSIGN_PRIVATE_KEY_PATH,
        )
        if not all(required):
            return None
        keys = self.DOCUSIGN_CONNECT_HMAC_KEYS.get_secret_value() if self.DOCUSIGN_CONNECT_HMAC_KEYS else ""
        if not any(k.strip() for k in keys.split(",")):
            # Without a key every Connect message is refused (401) and envelopes move only by the slow poll.
            raise ValueError(
                "DOCUSIGN_CONNECT_HMAC_KEYS is required with DocuSign: the HMAC key(s) of the account's Connect "
                "configuration, comma-separated"
            )
        return DocuSignSettings(
            base_uri=str(self.DOCUSIGN_BASE_URI).rstrip("/"),
            oauth_host=str(self.DOCUSIGN_OAUTH_HOST).removeprefix("https://").rstrip("/"),
            integration_key=str(self.DOCUSIGN_INTEGRATION_KEY),
            user_id=str(self.DOCUSIGN_USER_ID),
            account_id=str(self.DOCUSIGN_ACCOUNT_ID),
            private_key_path=Path(str(self.DOCUSIGN_PRIVATE_KEY_PATH)),
            connect_hmac_keys=tuple(SecretStr(k.strip()) for k in keys.split(",") if k.strip()),
            ca_bundle=self.DOCUSIGN_CA_BUNDLE,
            countersign_in_envelope=self.DOCUSIGN_COUNTERSIGN_IN_ENVELOPE,
        )

    def to_settings(self) -> Settings:
        if self.DPA_ENV not in ENVIRONMENTS:
            raise ValueError(f"DPA_ENV must be one of {', '.join(ENVIRONMENTS)}, not {self.DPA_ENV!r}")
        var_dir = self.DPA_VAR_DIR.resolve()
        default_db = f"sqlite+aiosqlite:///{var_dir / 'dpa.db'}"
        return Settings(
            var_dir=var_dir,
            database=DatabaseSettings(
                url=self.DATABASE_URL or default_db,
                app_url=self.DATABASE_APP_URL,
                app_role=self.DATABASE_APP_ROLE,
                pool_size=self.DATABASE_POOL_SIZE,
                echo=self.DATABASE_ECHO,
            ),
            environment=self.DPA_ENV,  # type: ignore[arg-type]  # checked against ENVIRONMENTS above
            public_base_url=self.PUBLIC_BASE_URL.rstrip("/") if self.PUBLIC_BASE_URL else None,
            log_level=self.DPA_LOG_LEVEL,
            log_format=self.DPA_LOG_FORMAT,
            metrics_token=self.DPA_METRICS_TOKEN,
            webhook_allow_private=self.DPA_WEBHOOK_ALLOW_PRIVATE,
            signing_link_days=self.DPA_SIGNING_LINK_DAYS,
            auto_countersign_email=self.DPA_AUTO_COUNTERSIGN_EMAIL,
            auto_countersign_authority=self.DPA_AUTO_COUNTERSIGN_AUTHORITY,
            smtp_url=self.SMTP_URL,
            mail_from=self.MAIL_FROM,
            run_worker=self.DPA_IN_PROCESS_WORKER,
            redis_url=self.REDIS_URL,
            queue_name=self.DPA_QUEUE_NAME,
            secret_key=self.DPA_SECRET_KEY,
            rate_limit_per_minute=self.DPA_RATE_LIMIT,
            trusted_proxies=tuple(p.strip() for p in (self.DPA_TRUSTED_PROXIES or "").split(",") if p.strip()),
            render_processes=self.DPA_RENDER_PROCESSES,
            render_timeout_seconds=self.DPA_RENDER_TIMEOUT,
            seal_key_path=self.DPA_SEAL_KEY_PATH,
            seal_cert_path=self.DPA_SEAL_CERT_PATH,
            seal_pkcs12_path=self.DPA_SEAL_PKCS12_PATH,
            seal_pkcs12_password=self.DPA_SEAL_PKCS12_PASSWORD,
            seal_tsa_url=self.DPA_SEAL_TSA_URL,
            checkpoint_dir=self.DPA_CHECKPOINT_DIR.resolve() if self.DPA_CHECKPOINT_DIR else None,
            processor_hosting=tuple(
                c.strip().upper() for c in (self.DPA_PROCESSOR_HOSTING or "").split(",") if c.strip()
            ),
            docusign=self.docusign(),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()


def clear_settings_cache() -> None:
    """Forget the cached settings (after `dpa serve` sets a default in os.environ)."""
    get_settings.cache_clear()
