"""Settings refuse development secrets in production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from libs.common.crypto import generate_key
from services.matching.settings import MatchingSettings
from services.needs.settings import NeedsSettings
from services.providers.settings import ProvidersSettings

PG = "postgresql+asyncpg://sa@db/providers"


def test_embedded_defaults_use_sqlite_under_var() -> None:
    assert ProvidersSettings().database_url == "sqlite+aiosqlite:///var/providers.db"


def test_production_refuses_default_jwt_secret_and_sqlite() -> None:
    with pytest.raises(ValidationError) as err:
        ProvidersSettings(environment="production")
    assert "jwt_secret" in str(err.value) and "database_url" in str(err.value)
    ok = ProvidersSettings(
        environment="production",
        jwt_secret="x" * 40,
        database_url=PG,
        data_keys=f"k1:{generate_key()}",
        nats_user="providers",
        nats_password="p" * 32,
    )
    assert ok.environment == "production"
    with pytest.raises(ValidationError, match="data_keys"):  # experts' contacts need real keys
        ProvidersSettings(
            environment="production",
            jwt_secret="x" * 40,
            database_url=PG,
            nats_user="providers",
            nats_password="p" * 32,
        )


def test_production_refuses_development_data_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SA_NEEDS_ENVIRONMENT", "production")
    monkeypatch.setenv("SA_NEEDS_JWT_SECRET", "x" * 40)
    monkeypatch.setenv("SA_NEEDS_DATABASE_URL", PG)
    monkeypatch.setenv("SA_NEEDS_NATS_USER", "needs")
    monkeypatch.setenv("SA_NEEDS_NATS_PASSWORD", "p" * 32)
    with pytest.raises(ValidationError, match="data_keys"):
        NeedsSettings()
    monkeypatch.setenv("SA_NEEDS_DATA_KEYS", f"k1:{generate_key()}")
    monkeypatch.setenv("SA_NEEDS_BLIND_INDEX_KEY", generate_key())
    assert NeedsSettings().environment == "production"


def test_production_refuses_to_run_without_its_own_nats_user() -> None:
    common = {"environment": "production", "jwt_secret": "x" * 40, "database_url": PG}
    with pytest.raises(ValidationError, match="nats_user and nats_password"):
        MatchingSettings(**common, data_keys=f"k1:{generate_key()}")
    ok = MatchingSettings(
        **common, data_keys=f"k1:{generate_key()}", nats_user="matching", nats_password="p" * 32
    )
    assert ok.nats_user == "matching"
