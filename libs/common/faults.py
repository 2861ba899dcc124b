"""Fault injection for crash-safety tests.

`hit("name")` does nothing unless the environment variable `SA_FAULTS` lists that name
(comma-separated); then the process kills itself with SIGKILL on the spot, exactly as a
crashed machine would: no cleanup, no flush, no finally blocks.
"""

from __future__ import annotations

import os
import signal

_ACTIVE = frozenset(filter(None, os.environ.get("SA_FAULTS", "").split(",")))

# Every injection point, so tests can refer to them by constant.
OUTBOX_AFTER_COMMIT = "outbox.after_commit"
RELAY_AFTER_PUBLISH = "relay.after_publish"
CONSUMER_AFTER_COMMIT = "consumer.after_commit"


def hit(name: str) -> None:
    if name in _ACTIVE:
        os.kill(os.getpid(), signal.SIGKILL)
