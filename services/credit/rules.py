"""Credit rules (pure): admission review and ban periods, each citing its clause."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

from dateutil.relativedelta import relativedelta

from libs.common.policy import PolicyPack

Severity = Literal["minor", "general", "serious"]


@dataclass(frozen=True)
class ConditionResult:
    """One admission condition, whether it is met, and the clause it comes from."""

    condition: str
    met: bool
    rule: str
    description: str

    def as_dict(self) -> dict[str, object]:
        return {
            "condition": self.condition,
            "met": self.met,
            "rule": self.rule,
            "description": self.description,
        }


@dataclass(frozen=True)
class AdmissionDecision:
    outcome: Literal["admitted", "rejected"]
    reasons: list[ConditionResult]

    @property
    def unmet(self) -> list[ConditionResult]:
        return [r for r in self.reasons if not r.met]

    def summary(self) -> str:
        if self.outcome == "admitted":
            return "all admission conditions met"
        return "; ".join(f"{r.condition} not met ({r.rule})" for r in self.unmet)


def review_admission(
    pack: PolicyPack,
    *,
    kind: str,
    qualifications: Mapping[str, bool],
    banned_until: date | None,
    today: date,
) -> AdmissionDecision:
    """Admission review (准入审查) against the pack's contractor kinds and conditions.

    Only conditions of the admission stage apply here; project-specific ones are checked
    per tender. A condition counts as met only with evidence (`qualifications[code]` true).
    """
    reasons: list[ConditionResult] = []
    contractor = pack.contractor_kind(kind)
    if contractor is None:
        reasons.append(
            ConditionResult("contractor_kind", False, "", f"kind {kind!r} is not known to the pack")
        )
    else:
        reasons.append(
            ConditionResult(
                "contractor_kind", contractor.allowed, contractor.source.cite(), contractor.name_zh
            )
        )
    for cond in pack.admission_conditions:
        if cond.stage != "admission" or (cond.applies_to and kind not in cond.applies_to):
            continue
        reasons.append(
            ConditionResult(
                cond.code,
                qualifications.get(cond.code) is True,
                cond.source.cite(),
                cond.description_zh,
            )
        )
    banned = banned_until is not None and banned_until > today
    reasons.append(
        ConditionResult(
            "not_banned",
            not banned,
            pack.sanctions.source.cite(),
            f"banned until {banned_until.isoformat()}"
            if banned and banned_until
            else "no ban in force",
        )
    )
    outcome: Literal["admitted", "rejected"] = (
        "admitted" if all(r.met for r in reasons) else "rejected"
    )
    return AdmissionDecision(outcome, reasons)


def ban_end(pack: PolicyPack, *, severity: Severity, starts_on: date) -> date:
    """Last day + 1 of a ban: the pack's months for the severity after `starts_on`."""
    return starts_on + relativedelta(months=pack.sanctions.ban_months_by_severity[severity])


def ban_legal_basis(pack: PolicyPack) -> list[str]:
    return [pack.sanctions.source.cite(), *(c.cite() for c in pack.sanctions.legal_basis)]
