"""Settings of the matching service (environment prefix `SA_MATCHING_`)."""

from pydantic_settings import SettingsConfigDict

from libs.common.settings import ServiceSettings


class MatchingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SA_MATCHING_", extra="ignore")
    service_name: str = "matching"
    port: int = 8003
