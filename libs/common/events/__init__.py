"""Events: CloudEvents envelope, JetStream bus, outbox/inbox, relay and consumers."""

from libs.common.events.bus import DLQ_STREAM, EventBus, platform_streams
from libs.common.events.consumer import ConsumerWorker, PermanentError, Subscription
from libs.common.events.envelope import Event, InvalidEnvelope, new_event, subject_of
from libs.common.events.outbox import EventTables, OutboxRelay
from libs.common.events.uow import UnitOfWork

__all__ = [
    "DLQ_STREAM",
    "ConsumerWorker",
    "Event",
    "EventBus",
    "EventTables",
    "InvalidEnvelope",
    "OutboxRelay",
    "PermanentError",
    "Subscription",
    "UnitOfWork",
    "new_event",
    "platform_streams",
    "subject_of",
]
