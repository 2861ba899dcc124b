"""The JetStream connection: streams per producing service, a dead-letter stream, publishing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError

from libs.common.events.publish import JetStreamPublisher

log = logging.getLogger(__name__)

# One stream per producing service (DESIGN.md §3), plus dead letters.
SERVICE_STREAMS: dict[str, str] = {
    "NEEDS": "sa.needs.>",
    "PROVIDERS": "sa.providers.>",
    "MATCHING": "sa.matching.>",
    "CREDIT": "sa.credit.>",
}
DLQ_STREAM = "DLQ"
DLQ_PREFIX = "sa.dlq"
# Server advisories when a message ran out of deliveries: kept in a stream so that a
# consumer that died mid-handling (and so never recorded the failure) is still noticed.
ADVISORY_STREAM = "ADVISORIES"
MAX_DELIVERIES_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>"


def stream_for_subject(subject: str) -> str:
    service = subject.split(".")[1]
    return service.upper()


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: list[str]


#: Streams every service writes to (dead letters) or reads (advisories): any may update them.
SHARED_STREAMS = (DLQ_STREAM, ADVISORY_STREAM)


def may_update_stream(client: str, stream: str) -> bool:
    """Whether `client` brings `stream`'s config up to date when it differs. A service
    updates only its own stream and the shared ones: another service's stream is that
    service's to change (its NATS user may not), so one service cannot rewrite the
    subjects or limits of another's events. A client that is not a service (tools, tests,
    the admin) may update any."""
    owner = client.upper()
    if owner not in SERVICE_STREAMS:
        return True
    return stream == owner or stream in SHARED_STREAMS


def platform_streams() -> list[StreamSpec]:
    specs = [StreamSpec(name, [subj]) for name, subj in SERVICE_STREAMS.items()]
    specs.append(StreamSpec(DLQ_STREAM, [f"{DLQ_PREFIX}.>"]))
    specs.append(StreamSpec(ADVISORY_STREAM, [MAX_DELIVERIES_ADVISORY]))
    return specs


class EventBus:
    """A NATS connection with its JetStream context."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        user: str | None = None,
        password: str | None = None,
        replicas: int = 1,
        duplicate_window_seconds: float = 3600.0,
    ) -> None:
        self.url = url
        self.name = name
        self.user = user
        self.password = password
        self.replicas = replicas
        self.duplicate_window_seconds = duplicate_window_seconds
        self.nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._publisher: JetStreamPublisher | None = None

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("EventBus is not connected")
        return self._js

    @property
    def publisher(self) -> JetStreamPublisher:
        """Pipelined publishing with per-batch acknowledgements (the outbox relay's path)."""
        if self._publisher is None:
            raise RuntimeError("EventBus is not connected")
        return self._publisher

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def connect(self, *, connect_timeout: float = 5.0) -> None:
        self.nc = await nats.connect(
            self.url,
            name=self.name,
            user=self.user,
            password=self.password,
            connect_timeout=connect_timeout,
            max_reconnect_attempts=-1,  # keep trying: the outbox holds events meanwhile
            reconnect_time_wait=1,
        )
        self._js = self.nc.jetstream(publish_async_max_pending=4000)
        self._publisher = JetStreamPublisher(self.nc)

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            # Not drain(): it waits out its timeout on pull subscriptions. Acks are flushed
            # after every batch, so closing loses nothing.
            try:
                await self.nc.flush(timeout=2)
            except Exception:
                log.debug("nats flush on close failed", exc_info=True)
            await self.nc.close()
        self.nc = None
        self._js = None
        self._publisher = None

    async def ensure_streams(self, specs: Sequence[StreamSpec] | None = None) -> None:
        """Create or update the platform's streams (idempotent, safe from many replicas)."""
        for spec in specs or platform_streams():
            config = StreamConfig(
                name=spec.name,
                subjects=spec.subjects,
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
                duplicate_window=self.duplicate_window_seconds,
                discard=DiscardPolicy.OLD,
            )
            for attempt in range(3):
                try:
                    await self.js.add_stream(config)
                    break
                except BadRequestError as exc:
                    # Exists with a different config: bring it to ours, if it is ours.
                    if exc.err_code == 10058:
                        if may_update_stream(self.name, spec.name):
                            await self.js.update_stream(config)
                        else:
                            log.warning(
                                "%s: stream %s differs from this release's config; its "
                                "owner updates it",
                                self.name,
                                spec.name,
                            )
                        break
                    raise
                except Exception:
                    if attempt == 2:
                        raise
                    await asyncio.sleep(0.5)

    async def ensure_pull_consumer(
        self,
        *,
        stream: str,
        durable: str,
        subjects: Sequence[str],
        max_deliver: int,
        ack_wait_seconds: float,
        max_ack_pending: int,
    ) -> None:
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_deliver=max_deliver,
            ack_wait=ack_wait_seconds,
            max_ack_pending=max_ack_pending,
        )
        if len(subjects) == 1:
            config.filter_subject = subjects[0]
        else:
            config.filter_subjects = list(subjects)
        await self.js.add_consumer(stream, config)

    async def stream_exists(self, name: str) -> bool:
        try:
            await self.js.stream_info(name)
            return True
        except NotFoundError:
            return False
