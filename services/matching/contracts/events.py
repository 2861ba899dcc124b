"""What the matching service publishes and consumes about contracts."""

from __future__ import annotations

from libs.common.events import Subscription

subscriptions: list[Subscription] = []
