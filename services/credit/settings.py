"""Settings of the credit service (environment prefix `SA_CREDIT_`)."""

from pydantic_settings import SettingsConfigDict

from libs.common.settings import ServiceSettings


class CreditSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SA_CREDIT_", extra="ignore")
    service_name: str = "credit"
    port: int = 8004
