"""Settings of the matching service (environment prefix `SA_MATCHING_`)."""

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from libs.common.settings import DEV_DATA_KEY, DEV_DATA_KEYS, ServiceSettings


class MatchingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SA_MATCHING_", extra="ignore")
    service_name: str = "matching"
    port: int = 8003
    # Sealed bids (密封投标): AES-256-GCM keys "id:base64,id:base64" (last = active) for a
    # bid's price and content until opening. Production must supply its own (secret store).
    data_keys: str = DEV_DATA_KEYS

    @model_validator(mode="after")
    def _no_dev_keys_in_production(self) -> "MatchingSettings":
        if self.environment == "production" and (
            DEV_DATA_KEY in self.data_keys or self.data_keys == DEV_DATA_KEYS
        ):
            raise ValueError("refusing to start in production with development keys for: data_keys")
        return self
