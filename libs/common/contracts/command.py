"""`sa asyncapi`: write (or check) the platform's AsyncAPI document, `docs/asyncapi.json`.

The committed file is the published contract: writing over it refuses a change that breaks a
published version (`compat.py`), unless `accept_breaking` says the break is deliberate (for
example a type never released). `check` writes nothing and fails when the file is stale.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from libs.common.contracts.asyncapi import platform_document
from libs.common.contracts.compat import incompatibilities, payload_schemas
from libs.common.contracts.registry import dumps, load_registry

DEFAULT_OUT = Path("docs/asyncapi.json")


def generate(
    out: Path,
    *,
    check: bool = False,
    accept_breaking: bool = False,
    echo: Callable[[str], None] = print,
) -> int:
    """Exit status: 0 written / up to date, 1 stale (check) or incompatible (refused)."""
    document = platform_document(load_registry())
    text = dumps(document)
    old_text = out.read_text(encoding="utf-8") if out.exists() else None
    if old_text is not None:
        breaks = incompatibilities(payload_schemas(json.loads(old_text)), payload_schemas(document))
        if breaks and not accept_breaking:
            echo(f"{out}: the registry breaks the published contract:")
            for item in breaks:
                echo(f"  - {item}")
            if not check:
                echo("Nothing written (--accept-breaking overrides, for types never released).")
            return 1
    if check:
        if old_text == text:
            echo(f"{out} is up to date ({len(payload_schemas(document))} event types)")
            return 0
        echo(f"{out} is stale: run `sa asyncapi --out {out}` (or `make asyncapi`)")
        return 1
    if old_text == text:
        echo(f"{out} unchanged ({len(payload_schemas(document))} event types)")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    echo(f"{out} written ({len(payload_schemas(document))} event types)")
    return 0
