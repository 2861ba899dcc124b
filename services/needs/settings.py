"""Settings of the needs service (environment prefix `SA_NEEDS_`)."""

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from libs.common.settings import DEV_BLIND_INDEX_KEY, DEV_DATA_KEY, DEV_DATA_KEYS, ServiceSettings


class NeedsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SA_NEEDS_", extra="ignore")
    service_name: str = "needs"
    port: int = 8001

    # Personal data: AES-256-GCM keys "id:base64,id:base64" (last = active) and the
    # blind-index HMAC key. Production must supply its own (from a secret store).
    data_keys: str = DEV_DATA_KEYS
    blind_index_key: str = DEV_BLIND_INDEX_KEY

    @model_validator(mode="after")
    def _no_dev_keys_in_production(self) -> "NeedsSettings":
        if self.environment == "production":
            weak = [
                name
                for name, value, dev in (
                    ("data_keys", self.data_keys, DEV_DATA_KEYS),
                    ("blind_index_key", self.blind_index_key, DEV_BLIND_INDEX_KEY),
                )
                if DEV_DATA_KEY in value or value == dev
            ]
            if weak:
                raise ValueError(
                    "refusing to start in production with development keys for: " + ", ".join(weak)
                )
        return self
