"""Allocation rule of the walking skeleton (pure; the optimising engine replaces it).

Needs are taken most urgent first, then oldest first. Each goes to the eligible
organisation that covers its region most closely and has the most capacity left for the
service this month. Only admitted organisations are eligible: suspended, exited or
blacklisted ones never receive a need.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

ELIGIBLE_STATUS = "admitted"


@dataclass(frozen=True)
class OpenNeed:
    need_id: str
    region_code: str
    service_code: str
    urgency: int
    opened_at: datetime


@dataclass
class Provider:
    organisation_id: str
    status: str
    service_regions: Sequence[str]
    capacity_left: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Assignment:
    need_id: str
    organisation_id: str
    score: float
    explanation: dict[str, object]


@dataclass(frozen=True)
class Unassigned:
    need_id: str
    reason: str


def closeness(service_regions: Sequence[str], region_code: str) -> int:
    """Length of the longest service-area prefix covering the region (0 = not covered)."""
    return max((len(s) for s in service_regions if region_code.startswith(s)), default=0)


def allocate(
    needs: Sequence[OpenNeed], providers: Mapping[str, Provider]
) -> tuple[list[Assignment], list[Unassigned]]:
    assigned: list[Assignment] = []
    unassigned: list[Unassigned] = []
    ordered = sorted(needs, key=lambda n: (-n.urgency, n.opened_at, n.need_id))
    for need in ordered:
        offering = [
            p
            for p in providers.values()
            if need.service_code in p.capacity_left
            and closeness(p.service_regions, need.region_code)
        ]
        if not offering:
            unassigned.append(
                Unassigned(
                    need.need_id,
                    f"no organisation offers {need.service_code} in {need.region_code}",
                )
            )
            continue
        eligible = [p for p in offering if p.status == ELIGIBLE_STATUS]
        if not eligible:
            states = ", ".join(sorted({p.status for p in offering}))
            unassigned.append(
                Unassigned(
                    need.need_id, f"all {len(offering)} candidates are ineligible ({states})"
                )
            )
            continue
        with_room = [p for p in eligible if p.capacity_left[need.service_code] > 0]
        if not with_room:
            unassigned.append(
                Unassigned(need.need_id, f"capacity for {need.service_code} used up this month")
            )
            continue
        best = max(
            with_room,
            key=lambda p: (
                closeness(p.service_regions, need.region_code),
                p.capacity_left[need.service_code],
                # Deterministic tie-break that favours no one systematically by name.
                -hash_order(p.organisation_id, need.need_id),
            ),
        )
        close = closeness(best.service_regions, need.region_code)
        left = best.capacity_left[need.service_code]
        best.capacity_left[need.service_code] = left - 1
        assigned.append(
            Assignment(
                need.need_id,
                best.organisation_id,
                score=float(close * 1000 + left),
                explanation={
                    "rule": "skeleton: closest coverage, then most capacity left",
                    "region_closeness": close,
                    "capacity_left_before": left,
                    "candidates": len(offering),
                    "eligible": len(eligible),
                    "with_capacity": len(with_room),
                },
            )
        )
    return assigned, unassigned


def hash_order(organisation_id: str, need_id: str) -> int:
    import zlib

    return zlib.crc32(f"{organisation_id}:{need_id}".encode())
