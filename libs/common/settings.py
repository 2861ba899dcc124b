"""Settings: one class per service, each with its own environment prefix.

Defaults serve the embedded stack (SQLite files under `var/`, a local nats-server). In
production (`SA_<SERVICE>_ENVIRONMENT=production`) the service refuses to start while any
secret still has its development default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Kept here (not in auth.py) so settings import nothing heavy; auth re-checks the same value.
DEV_JWT_SECRET = "dev-only-insecure-secret-change-me"
DEV_DATA_KEY = "ZGV2LW9ubHktaW5zZWN1cmUtZGF0YS1rZXktMzJieXQ="  # base64 of 32 bytes, dev only
DEV_DATA_KEYS = f"dev1:{DEV_DATA_KEY}"  # the keyring form of the dev key: "id:base64"
DEV_BLIND_INDEX_KEY = "ZGV2LW9ubHktaW5zZWN1cmUtYmxpbmQtaW5kZXgta2V5"

VAR_DIR = Path("var")


class ServiceSettings(BaseSettings):
    """What every service needs; subclasses set `env_prefix` and their own defaults."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    service_name: str = "service"
    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000

    # Storage: SQLite under var/ by default; postgresql+asyncpg://... in production.
    database_url: str = ""
    db_pool_size: int = 20
    db_max_overflow: int = 20

    # Events. The service's own NATS user (libs/common/nats_auth.py: it may publish only
    # sa.<service>.>); none for the open test server, `sa run` passes generated ones.
    nats_url: str = "nats://127.0.0.1:4250"
    nats_user: str | None = None
    nats_password: str | None = None
    stream_replicas: int = 1
    duplicate_window_seconds: float = 3600.0
    relay_batch_size: int = 500
    relay_poll_interval_seconds: float = 0.5
    consumer_batch_size: int = 128
    consumer_max_deliver: int = 5
    consumer_ack_wait_seconds: float = 30.0
    consumer_backoff_base_seconds: float = 0.5
    consumer_backoff_max_seconds: float = 30.0
    start_event_workers: bool = True

    # Auth
    jwt_secret: str = DEV_JWT_SECRET
    jwt_issuer: str = "sa-dev"
    jwt_audience: str = "sa-platform"
    jwks_url: str | None = None

    # Telemetry
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    otel_endpoint: str | None = None

    log_level: str = "INFO"

    @model_validator(mode="after")
    def _defaults_and_production_guard(self) -> ServiceSettings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{VAR_DIR / (self.service_name + '.db')}"
        if self.environment == "production":
            weak = self.insecure_defaults()
            if weak:
                raise ValueError(
                    "refusing to start in production with development defaults for: "
                    + ", ".join(weak)
                )
        return self

    def insecure_defaults(self) -> list[str]:
        """Names of settings that still hold a development default (production guard)."""
        weak = []
        if self.jwks_url is None and self.jwt_secret == DEV_JWT_SECRET:
            weak.append("jwt_secret (or set jwks_url)")
        if self.database_url.startswith("sqlite"):
            weak.append("database_url (SQLite is for the embedded stack)")
        if not (self.nats_user and self.nats_password):
            # Without its own user a service could publish any subject (deploy/nats).
            weak.append("nats_user and nats_password (the service's own NATS user)")
        return weak
