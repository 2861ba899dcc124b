"""What the providers service publishes and consumes about experts."""

from __future__ import annotations

from libs.common.events import Subscription

subscriptions: list[Subscription] = []
