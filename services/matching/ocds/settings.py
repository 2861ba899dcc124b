"""Settings of the OCDS export (environment prefix `SA_MATCHING_`, like the service's).

`ocds_prefix` is the publisher's OCID prefix, assigned by the Open Contracting Partnership
(`ocds-` + six characters); the placeholder `ocds-xxxxxx` marks data not yet registered.
Every `ocid` is `<prefix>-<tender id>`: one contracting process per tender. The prefix is
part of every stored release id, so it is set once before publishing; a changed prefix
starts new processes rather than renaming the old ones.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_PREFIX = "ocds-xxxxxx"


class OcdsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SA_MATCHING_", extra="ignore")

    ocds_prefix: str = Field(default=PLACEHOLDER_PREFIX, pattern=r"^ocds-[a-z0-9]{6}$")
    ocds_publisher: str = "社会救助服务购买平台 (social-assistance services marketplace)"


def ocds_settings(service_settings: Any = None) -> OcdsSettings:
    """The OCDS settings: fields of the service's settings when it carries them (a host may
    add `ocds_prefix` to MatchingSettings), else the `SA_MATCHING_OCDS_*` environment."""
    overrides = {
        name: getattr(service_settings, name)
        for name in OcdsSettings.model_fields
        if getattr(service_settings, name, None) is not None
    }
    return OcdsSettings(**overrides)
