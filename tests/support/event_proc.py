"""Run one step of the event kit in its own process, so a test can SIGKILL it mid-way
(through SA_FAULTS) and check what survives.

    python -m tests.support.event_proc write   DB_URL NATS_URL VALUE
    python -m tests.support.event_proc relay   DB_URL NATS_URL
    python -m tests.support.event_proc consume DB_URL NATS_URL
"""

from __future__ import annotations

import asyncio
import sys

from tests.support.eventkit import Kit


async def main(mode: str, db_url: str, nats_url: str, *rest: str) -> None:
    kit = await Kit(db_url, nats_url, ack_wait_seconds=1.0).open(create=(mode == "write"))
    try:
        if mode == "write":
            await kit.write_event(int(rest[0]))
        elif mode == "relay":
            await kit.relay.publish_pending()
        elif mode == "consume":
            await kit.worker.start()
            msgs = await kit.worker._psub.fetch(10, timeout=5)
            await kit.worker.process_batch(msgs)
        else:
            raise SystemExit(f"unknown mode {mode}")
    finally:
        await kit.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
