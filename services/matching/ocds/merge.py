"""Compiling a record from releases (OCDS 1.1 merging), for the releases this service makes.

The rules of the standard's merge routine, as far as our releases use them: releases are
applied oldest first (by `date`, then by their order in the feed); objects merge field by
field, the later value winning; arrays of objects that have an `id` merge by that id (an
object keeps its place from its first appearance); any other array is replaced whole. The
compiled release gets the tag `compiled`, the `date` of the latest release and the id
`<ocid>-<date>`. The `ocdsmerge` package does the same against the full schema; our releases
have no field the schema merges differently (`wholeListMerge` or versioned fields), so it is
not needed.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

#: Release-level fields that describe a release rather than the process.
_RELEASE_ONLY = frozenset({"id", "date", "tag"})


def _identified(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(x, dict) and "id" in x for x in items)


def merge_value(old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, dict):
        merged = dict(old)
        for key, value in new.items():
            merged[key] = merge_value(old.get(key), value) if key in old else copy.deepcopy(value)
        return merged
    if isinstance(old, list) and isinstance(new, list) and _identified(old) and _identified(new):
        by_id: dict[Any, Any] = {str(x["id"]): x for x in old}
        order = [str(x["id"]) for x in old]
        for item in new:
            key = str(item["id"])
            if key in by_id:
                by_id[key] = merge_value(by_id[key], item)
            else:
                by_id[key] = copy.deepcopy(item)
                order.append(key)
        return [by_id[k] for k in order]
    return copy.deepcopy(new)


def compile_release(releases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The compiled release of one process from its releases (any order)."""
    if not releases:
        raise ValueError("a record needs at least one release")
    ordered = sorted(enumerate(releases), key=lambda pair: (str(pair[1].get("date")), pair[0]))
    compiled: dict[str, Any] = {}
    for _, release in ordered:
        body = {k: v for k, v in release.items() if k not in _RELEASE_ONLY}
        compiled = merge_value(compiled, body)
    latest = ordered[-1][1]
    compiled["ocid"] = latest["ocid"]
    compiled["id"] = f"{latest['ocid']}-{latest['date']}"
    compiled["date"] = latest["date"]
    compiled["tag"] = ["compiled"]
    return compiled


def record(releases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """An OCDS record: every release (embedded) and the compiled release."""
    compiled = compile_release(releases)
    ordered = sorted(releases, key=lambda r: str(r.get("date")))
    return {"ocid": compiled["ocid"], "releases": list(ordered), "compiledRelease": compiled}
