"""Rules of the social-forces library (社会力量库): pure functions, no I/O.

Registration and maintenance (contractor kinds, catalogue, province, admission condition
codes), the staff rule for dispatched workers (派遣人员), and the region coverage predicate
that organisation search implements in SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from libs.common.errors import FieldError
from libs.common.policy import PolicyPack
from libs.common.regions import region_prefixes, starts_with

# --------------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------------

#: Social-work qualification (社会工作者职业水平), lowest first.
QUALIFICATION_LEVELS: dict[str, str] = {
    "none": "无",
    "assistant_social_worker": "助理社会工作师",
    "social_worker": "社会工作师",
    "senior_social_worker": "高级社会工作师",
}

#: Education (文化程度), lowest first; the order is what "大专以上" compares against.
EDUCATION_LEVELS: dict[str, str] = {
    "below_college": "大专以下",
    "college": "大专",
    "bachelor": "本科",
    "master": "硕士研究生",
    "doctorate": "博士研究生",
}

#: Library status, set only from credit's decisions.
ORGANISATION_STATUSES = ("pending", "admitted", "rejected", "suspended", "exited", "blacklisted")

DISPATCHED_STAFF_CONDITION = "dispatched_staff_qualification"
MIN_DISPATCHED_EDUCATION = "college"


# --------------------------------------------------------------------------------------------
# Registration and maintenance
# --------------------------------------------------------------------------------------------


def kind_errors(pack: PolicyPack, kind: str) -> tuple[list[FieldError], list[str]]:
    """A contractor kind the pack does not know, or refuses (公益一类事业单位) with its clause."""
    contractor = pack.contractor_kind(kind)
    if contractor is None:
        allowed = ", ".join(k.code for k in pack.contractor_kinds if k.allowed)
        return [FieldError("body.kind", f"unknown contractor kind; allowed: {allowed}")], []
    if not contractor.allowed:
        clause = contractor.source.cite()
        reason = f"{contractor.name_zh} may not take government purchases ({clause})"
        return [FieldError("body.kind", reason)], [clause]
    return [], []


def offer_errors(
    pack: PolicyPack, *, service_codes: Sequence[str], service_regions: Sequence[str]
) -> list[FieldError]:
    """Capabilities must be items of the province catalogue, each once; service regions must
    lie in the province, each once (they are the rows of the search index)."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, code in enumerate(service_codes):
        if pack.catalogue_item(code) is None:
            errors.append(
                FieldError(
                    f"body.services.{i}.code", f"{code!r} is not in the {pack.province} catalogue"
                )
            )
        elif code in seen:
            errors.append(FieldError(f"body.services.{i}.code", f"{code!r} is listed twice"))
        seen.add(code)
    seen.clear()
    for i, scope in enumerate(service_regions):
        if not scope.startswith(pack.province_code):
            errors.append(
                FieldError(
                    f"body.service_regions.{i}",
                    f"outside province {pack.province_code} of this library",
                )
            )
        elif scope in seen:
            errors.append(FieldError(f"body.service_regions.{i}", f"{scope} is listed twice"))
        seen.add(scope)
    return errors


def condition_errors(pack: PolicyPack, field_name: str, codes: Iterable[str]) -> list[FieldError]:
    """Qualification and evidence keys must be admission condition codes of the pack."""
    known = {c.code for c in pack.admission_conditions}
    return [
        FieldError(
            f"body.{field_name}.{code}",
            f"not an admission condition of the {pack.province} pack; known: "
            + ", ".join(sorted(known)),
        )
        for code in codes
        if code not in known
    ]


def registration_errors(
    pack: PolicyPack,
    *,
    kind: str,
    service_codes: Sequence[str],
    service_regions: Sequence[str],
    qualifications: Iterable[str] = (),
    evidence: Iterable[str] = (),
) -> tuple[list[FieldError], list[str]]:
    """Field errors and the clauses behind them, for a registration under `pack`.

    A kind the pack refuses (e.g. class-I public institutions) cites the clause; services
    must be items of the province catalogue; service regions must lie in the province;
    qualification and evidence keys must be the pack's admission condition codes.
    """
    errors, clauses = kind_errors(pack, kind)
    errors += offer_errors(pack, service_codes=service_codes, service_regions=service_regions)
    errors += condition_errors(pack, "qualifications", qualifications)
    errors += condition_errors(pack, "evidence", evidence)
    return errors, clauses


# --------------------------------------------------------------------------------------------
# Staff (专业人员) and dispatched workers (派遣人员)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffCheck:
    """What the pack says about one worker: refusals (with clauses) and the preference."""

    errors: list[FieldError] = field(default_factory=list)
    clauses: list[str] = field(default_factory=list)
    preferred: bool = False
    preferred_reason: str = ""


def meets_education(education: str, minimum: str = MIN_DISPATCHED_EDUCATION) -> bool:
    """True when `education` is at least `minimum` in the order of `EDUCATION_LEVELS`."""
    order = list(EDUCATION_LEVELS)
    return order.index(education) >= order.index(minimum)


def check_staff(
    pack: PolicyPack,
    *,
    education: str,
    qualification_level: str,
    social_work_education: bool,
    dispatched: bool,
    field_prefix: str = "body",
) -> StaffCheck:
    """The dispatched-staff condition (`dispatched_staff_qualification`, stage project).

    Jilin 吉民发〔2018〕21号 三(三), Zhejiang 浙民助〔2018〕117号 二(二)2 and Hainan 三(二):
    a dispatched worker needs at least a college diploma (大专以上文化程度) — below that is
    refused, citing the clause; a social-work qualification or social-work education is
    preferred (优先考虑) — reported as `preferred` with the reason, never refused.
    """
    condition = pack.admission_condition(DISPATCHED_STAFF_CONDITION)
    clause = condition.source.cite() if condition else None
    cited = f" ({clause})" if clause else ""
    errors: list[FieldError] = []
    clauses: list[str] = []
    if dispatched and clause and not meets_education(education):
        errors.append(
            FieldError(
                f"{field_prefix}.education",
                "a dispatched worker needs at least a college diploma (大专以上文化程度), "
                f"got {EDUCATION_LEVELS[education]}{cited}",
            )
        )
        clauses.append(clause)
    if qualification_level != "none":
        preferred = True
        reason = f"holds the {QUALIFICATION_LEVELS[qualification_level]} qualification"
    elif social_work_education:
        preferred = True
        reason = "has a social-work education background (社会工作教育背景)"
    else:
        preferred = False
        reason = "neither a social-work qualification nor a social-work education"
    reason += f"; the pack prefers either for dispatched workers{cited}"
    return StaffCheck(errors, clauses, preferred, reason)


# --------------------------------------------------------------------------------------------
# Region coverage (the predicate organisation search runs in SQL)
# --------------------------------------------------------------------------------------------


def reaches(region_code: str, service_regions: Iterable[str], scope: str) -> bool:
    """Whether an organisation reaches area `scope`: it is registered inside it, or one of its
    service regions covers it (is one of `scope`'s prefixes) or lies inside it.

    "" (the whole country) is reached by everyone.
    """
    if not scope:
        return True
    containing = set(region_prefixes(scope))
    return starts_with(region_code, scope) or any(
        s in containing or starts_with(s, scope) for s in service_regions
    )
