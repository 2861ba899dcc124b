"""Settings of the providers service (environment prefix `SA_PROVIDERS_`)."""

from pydantic_settings import SettingsConfigDict

from libs.common.settings import ServiceSettings


class ProvidersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SA_PROVIDERS_", extra="ignore")
    service_name: str = "providers"
    port: int = 8002
