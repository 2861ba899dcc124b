"""What the providers service publishes and consumes about projects."""

from __future__ import annotations

from libs.common.events import Subscription

subscriptions: list[Subscription] = []
