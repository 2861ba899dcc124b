"""Is the registry still compatible with the published contract (the committed AsyncAPI file)?

Events stay in the streams for months and consumers are deployed on their own schedule, so a
published version (`….v1`) may only grow: an optional field may be added (consumers ignore
what they do not know). Everything else breaks someone and needs a new version (`….v2`)
published next to the old one:

- removing or renaming a field (a consumer still reads the old name);
- changing a field's type, format, pattern or bounds (old events in the stream, or a consumer's
  parser, no longer agree with the schema);
- making an optional field required (old events in the stream lack it), adding a required
  field, or making a required field optional (consumers rely on it);
- closing an object to unknown fields, removing an allowed value of an enumeration;
- removing a published type (keep it registered with `deprecated=True` instead).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_TYPE_NAME = re.compile(r"^sa\.[a-z_]+\.[a-z_]+\.[a-z_]+\.v[1-9][0-9]*$")
#: Keywords that document a schema without constraining it.
_ANNOTATIONS = frozenset(
    {"title", "description", "examples", "default", "$schema", "$id", "$comment", "deprecated"}
)
_STRUCTURE = frozenset({"properties", "required", "additionalProperties", "items", "anyOf"})


@dataclass(frozen=True)
class Incompatibility:
    type_name: str
    path: str
    change: str

    def __str__(self) -> str:
        where = f" field `{self.path}`" if self.path else ""
        if self.path == "" and self.change.startswith("type removed"):
            return f"{self.type_name}: {self.change}"
        return (
            f"{self.type_name}:{where} {self.change} — an incompatible change to a published "
            f"version: publish it as {next_version(self.type_name)} (keep {self.type_name} "
            "until its consumers have moved)"
        )


def next_version(type_name: str) -> str:
    base, _, version = type_name.rpartition(".v")
    return f"{base}.v{int(version) + 1}" if version.isdigit() else f"{type_name}.v2"


def payload_schemas(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Event type → payload JSON Schema, from an AsyncAPI document built by `asyncapi.py`."""
    out: dict[str, dict[str, Any]] = {}
    for name, message in document.get("components", {}).get("messages", {}).items():
        if not _TYPE_NAME.match(name):
            continue  # the dead-letter message
        payload = message.get("payload", {})
        out[name] = dict(payload.get("schema", payload))
    return out


def incompatibilities(
    published: Mapping[str, Mapping[str, Any]], current: Mapping[str, Mapping[str, Any]]
) -> list[Incompatibility]:
    """Every change from `published` to `current` (type → payload schema) that breaks."""
    found: list[Incompatibility] = []
    for type_name in sorted(published):
        if type_name not in current:
            found.append(
                Incompatibility(
                    type_name,
                    "",
                    "type removed from the registry — a published type stays registered "
                    "(with deprecated=True) so nobody reuses it",
                )
            )
            continue
        found.extend(
            Incompatibility(type_name, path, change)
            for path, change in _compare(published[type_name], current[type_name], "")
        )
    return found


def _constraints(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in schema.items()
        if k not in _ANNOTATIONS and k not in _STRUCTURE and not k.startswith("x-")
    }


def _describe(schema: Mapping[str, Any]) -> str:
    if "anyOf" in schema:
        return " | ".join(_describe(s) for s in schema["anyOf"])
    c = _constraints(schema)
    if not c:
        return "object" if "properties" in schema else "any"
    return ", ".join(f"{k}={v}" for k, v in sorted(c.items()))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _compare(old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    # Alternatives (nullable fields are anyOf [X, null]): same count, compared in order of
    # their description so a reordering alone is not a change.
    if "anyOf" in old or "anyOf" in new:
        olds, news = old.get("anyOf", [old]), new.get("anyOf", [new])
        if len(olds) != len(news):
            return [(path, f"type changed from {_describe(old)} to {_describe(new)}")]
        for o, n in zip(sorted(olds, key=_describe), sorted(news, key=_describe), strict=True):
            out.extend(_compare(o, n, path))
        return out

    old_c, new_c = _constraints(old), _constraints(new)
    old_enum, new_enum = old_c.pop("enum", None), new_c.pop("enum", None)
    if old_c != new_c:
        out.append((path, f"type changed from {_describe(old)} to {_describe(new)}"))
    if old_enum is not None:
        if new_enum is None:
            pass  # any value now allowed: old events still valid, readers keep working
        else:
            gone = [v for v in old_enum if v not in new_enum]
            if gone:
                out.append((path, f"allowed values removed: {gone}"))
    elif new_enum is not None:
        out.append((path, f"values now restricted to {new_enum}"))

    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
    for name in sorted(old_props):
        sub = _join(path, name)
        if name not in new_props:
            out.append((sub, "removed (a rename is a removal too)"))
            continue
        if name in old_req and name not in new_req:
            out.append((sub, "no longer required (consumers rely on it)"))
        elif name not in old_req and name in new_req:
            out.append((sub, "became required (older events lack it)"))
        out.extend(_compare(old_props[name], new_props[name], sub))
    for name in sorted(set(new_props) - set(old_props)):
        if name in new_req:
            out.append((_join(path, name), "added as a required field (add it as optional)"))

    old_add = old.get("additionalProperties", True)
    new_add = new.get("additionalProperties", True)
    if isinstance(old_add, Mapping) and isinstance(new_add, Mapping):
        out.extend(_compare(old_add, new_add, _join(path, "*")))
    elif old_add is not False and new_add is False:
        out.append((path, "closed to fields it does not list"))
    elif isinstance(old_add, Mapping) != isinstance(new_add, Mapping) and old_add != new_add:
        out.append((_join(path, "*"), f"map values changed from {old_add} to {new_add}"))

    if "items" in old or "items" in new:
        if "items" in old and "items" in new:
            out.extend(_compare(old["items"], new["items"], _join(path, "[]")))
        else:
            out.append((path, "array items changed"))
    return out
