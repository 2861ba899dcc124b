"""Purchasing processes as OCDS 1.1 releases (开放合同数据标准): pure functions, no I/O.

One contracting process per tender: `ocid` = `<prefix>-<tender id>`. A process yields
releases per stage, each a snapshot of that stage when it was seen:

- planning (项目): the project's budget, from `ProjectView`;
- tender (采购公告 … 废标/终止): the tender at its current version; `tenderCancellation` when
  cancelled; the bidders (`tenderers`) once bids are opened;
- award (中标/成交) per award offered, with its state (offered → pending, accepted → active,
  refused → unsuccessful, excluded → cancelled);
- contract (合同) per signed contract version (completed or terminated → `terminated`, with
  the `contractTermination` tag);
- implementation (履约验收) per published acceptance: a milestone met or not met, with the
  delivered sessions of the period as a summary.

Release ids carry the stage, the record and its version or state, so a release never
changes once published (OCDS: releases are immutable; a change is a new release).
Amounts are yuan (fen / 100) in CNY. Parties: the purchasing department is `buyer` and
`procuringEntity` (county bureaus buy for themselves here), bidders are `tenderer`, the
organisation with an accepted award is also `supplier`. The evaluation panel is not a party:
OCDS 1.1 has no role for it (`reviewBody` is the body hearing challenges), so the panel's
names are published in the results notice (`/public/results`) instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from services.matching.contracts.models import Acceptance, Contract
from services.matching.library.models import ProjectView
from services.matching.market.models import Award, Bid, Tender
from services.matching.models import OrganisationView

CURRENCY = "CNY"
LANGUAGE = "zh"
#: Scheme of an organisation identifier: the unified social credit code (统一社会信用代码,
#: GB 32100). org-id.guide lists registers by code; confirm this one there before a release.
USCC_SCHEME = "CN-USCC"
#: Item classification: the service catalogue of the policy packs (open codelist).
CATALOGUE_SCHEME = "SA-SERVICE-CATALOGUE"

#: Tender state → OCDS tenderStatus (closed codelist).
TENDER_STATUS: Mapping[str, str] = {
    "draft": "planned",
    "published": "active",
    "bidding": "active",
    "evaluating": "active",
    "awarded": "complete",
    "failed": "unsuccessful",
    "cancelled": "cancelled",
}
#: Purchasing method (采购方式) → OCDS procurementMethod (closed codelist).
PROCUREMENT_METHOD: Mapping[str, str] = {
    "open_tender": "open",  # 公开招标
    "invited_tender": "selective",  # 邀请招标: qualified suppliers drawn and invited
    "competitive_negotiation": "limited",  # 竞争性谈判
    "competitive_consultation": "limited",  # 竞争性磋商
    "single_source": "direct",  # 单一来源采购
}
METHOD_NAME_ZH: Mapping[str, str] = {
    "open_tender": "公开招标",
    "invited_tender": "邀请招标",
    "competitive_negotiation": "竞争性谈判",
    "competitive_consultation": "竞争性磋商",
    "single_source": "单一来源采购",
}
#: Award state → OCDS awardStatus (closed codelist).
AWARD_STATUS: Mapping[str, str] = {
    "offered": "pending",
    "accepted": "active",
    "refused": "unsuccessful",
    "excluded": "cancelled",
}
#: Contract state → OCDS contractStatus (closed codelist); only signed contracts are public.
CONTRACT_STATUS: Mapping[str, str] = {
    "pending": "pending",
    "active": "active",
    "paused": "active",
    "completed": "terminated",
    "terminated": "terminated",
    "refused": "cancelled",
}
#: Acceptance result (验收结果) → OCDS milestoneStatus.
MILESTONE_STATUS: Mapping[str, str] = {"qualified": "met", "unqualified": "notMet"}
#: Tender states after bid opening: the bidders are known.
OPENED_STATES = frozenset({"evaluating", "awarded", "failed"})


@dataclass
class Process:
    """Everything of one tender that the releases are made of."""

    tender: Tender
    project: ProjectView | None = None
    bids: list[Bid] = field(default_factory=list)  # opened bids (valid | invalid)
    organisations: dict[str, OrganisationView] = field(default_factory=dict)
    prices: dict[str, int | None] = field(default_factory=dict)  # bid id → price in fen
    awards: list[Award] = field(default_factory=list)
    contracts: list[Contract] = field(default_factory=list)  # signed contracts only
    acceptances: list[Acceptance] = field(default_factory=list)  # published results only
    # acceptance id → (confirmed sessions, units) delivered in its period
    deliveries: dict[str, tuple[int, int]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------- values


def ocid_of(prefix: str, tender_id: str) -> str:
    return f"{prefix}-{tender_id}"


def iso(value: datetime | None) -> str | None:
    """An RFC 3339 date-time; SQLite gives naive datetimes, which are stored as UTC."""
    if value is None:
        return None
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def day_start(value: date) -> str:
    return f"{value.isoformat()}T00:00:00+08:00"


def day_end(value: date) -> str:
    return f"{value.isoformat()}T23:59:59+08:00"


def amount(fen: int | None) -> dict[str, Any] | None:
    """OCDS Value in yuan: 123456 fen → {"amount": 1234.56, "currency": "CNY"}."""
    if fen is None:
        return None
    yuan = Decimal(int(fen)) / 100
    number: int | float = int(yuan) if yuan == yuan.to_integral_value() else float(yuan)
    return {"amount": number, "currency": CURRENCY}


def _clean(value: dict[str, Any]) -> dict[str, Any]:
    """Drop empty fields: OCDS omits what is unknown rather than sending null."""
    return {k: v for k, v in value.items() if v is not None and v != [] and v != {}}


# --------------------------------------------------------------------------------- parties


def buyer_party(process: Process) -> dict[str, Any]:
    t, project = process.tender, process.project
    name = project.department if project is not None else f"{t.region_code} 民政部门"
    return {
        "id": f"SA-BUYER-{t.region_code}",
        "name": name,
        "address": {"region": t.region_code, "countryName": "中国"},
        "roles": ["buyer", "procuringEntity"],
    }


def org_party(process: Process, organisation_id: str, roles: Sequence[str]) -> dict[str, Any]:
    view = process.organisations.get(organisation_id)
    name = (view.name if view is not None else None) or organisation_id
    uscc = view.uscc if view is not None else None
    party: dict[str, Any] = {
        "id": f"{USCC_SCHEME}-{uscc}" if uscc else f"SA-ORG-{organisation_id}",
        "name": name,
        "roles": list(roles),
    }
    if uscc:
        party["identifier"] = {"scheme": USCC_SCHEME, "id": uscc, "legalName": name}
    return party


def ref(party: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": party["id"], "name": party["name"]}


def _suppliers(process: Process) -> set[str]:
    return {a.organisation_id for a in process.awards if a.state == "accepted"}


def _roles(process: Process, organisation_id: str) -> list[str]:
    roles = ["tenderer"]
    if organisation_id in _suppliers(process):
        roles.append("supplier")
    return roles


# -------------------------------------------------------------------------------- sections


def _period(project: ProjectView | None) -> dict[str, Any] | None:
    if project is None:
        return None
    return {"startDate": day_start(project.period_start), "endDate": day_end(project.period_end)}


def tender_section(process: Process, buyer: Mapping[str, Any]) -> dict[str, Any]:
    t = process.tender
    criteria = "; ".join(f"{c.get('name', c.get('code'))} {c.get('weight')}" for c in t.criteria)
    price_weight = Decimal(str(t.price_weight)).normalize()
    section: dict[str, Any] = {
        "id": t.id,
        "title": t.title,
        "description": _state_note(t),
        "status": TENDER_STATUS.get(t.state, "active"),
        "value": amount(t.budget_fen),
        "procurementMethod": PROCUREMENT_METHOD.get(t.method, "open"),
        "procurementMethodDetails": METHOD_NAME_ZH.get(t.method, t.method),
        "procurementMethodRationale": t.method_reason,
        "mainProcurementCategory": "services",
        "awardCriteria": "ratedCriteria",  # 综合评分法: quality criteria and price, weighted
        "awardCriteriaDetails": f"{criteria}; 价格 {price_weight}" if criteria else None,
        "eligibilityCriteria": "; ".join(t.qualification_requirements) or None,
        "procuringEntity": ref(buyer),
        "items": [
            {
                "id": code,
                "description": code,
                "classification": {"scheme": CATALOGUE_SCHEME, "id": code},
            }
            for code in t.service_codes
        ],
    }
    if t.published_at is not None:
        section["tenderPeriod"] = _clean(
            {"startDate": iso(t.published_at), "endDate": iso(t.bid_deadline)}
        )
    if t.state in OPENED_STATES and process.bids:
        bidders = list(dict.fromkeys(b.organisation_id for b in process.bids))
        section["tenderers"] = [ref(org_party(process, o, ["tenderer"])) for o in bidders]
        section["numberOfTenderers"] = len(bidders)
    return _clean(section)


def _state_note(t: Tender) -> str | None:
    if t.state == "failed":
        return f"废标 (unsuccessful): {t.state_reason}" if t.state_reason else "废标"
    if t.state == "cancelled":
        return f"终止 (cancelled): {t.state_reason}" if t.state_reason else "终止"
    return None


def award_section(process: Process, award: Award) -> dict[str, Any]:
    supplier = org_party(process, award.organisation_id, _roles(process, award.organisation_id))
    return _clean(
        {
            "id": award.id,
            "title": f"{process.tender.title} (第{award.rank}名)",
            "description": award.reason if award.state in ("refused", "excluded") else None,
            "status": AWARD_STATUS.get(award.state, "pending"),
            "date": iso(award.created_at),
            "value": amount(process.prices.get(award.bid_id)),
            "suppliers": [ref(supplier)],
            "contractPeriod": _period(process.project),
        }
    )


def contract_section(process: Process, contract: Contract) -> dict[str, Any]:
    return _clean(
        {
            "id": contract.id,
            "awardID": contract.award_id,
            "title": process.tender.title,
            "description": contract.state_reason
            if contract.state in ("completed", "terminated")
            else None,
            "status": CONTRACT_STATUS.get(contract.state, "active"),
            "period": {
                "startDate": day_start(contract.period_start),
                "endDate": day_end(contract.period_end),
            },
            "value": amount(contract.value_fen),
            "dateSigned": iso(contract.signed_at),
        }
    )


def milestone(process: Process, acceptance: Acceptance) -> dict[str, Any]:
    sessions, units = process.deliveries.get(acceptance.id, (0, 0))
    status = MILESTONE_STATUS.get(acceptance.result or "", "scheduled")
    return _clean(
        {
            "id": acceptance.id,
            "title": f"履约验收 {acceptance.period}",
            "type": "delivery",
            "description": (
                f"{acceptance.period}: {sessions} confirmed service sessions, {units} units "
                f"delivered; result {acceptance.result}"
            ),
            "status": status,
            "dateMet": iso(acceptance.published_at) if status == "met" else None,
            "dateModified": iso(acceptance.published_at),
        }
    )


# -------------------------------------------------------------------------------- releases


def _release(
    ocid: str,
    stage: str,
    *,
    date_: datetime | None,
    tag: str,
    parties: Sequence[Mapping[str, Any]],
    buyer: Mapping[str, Any],
    **sections: Any,
) -> dict[str, Any]:
    return {
        "ocid": ocid,
        "id": f"{ocid}-{stage}",
        "date": iso(date_),
        "tag": [tag],
        "initiationType": "tender",
        "language": LANGUAGE,
        "parties": [dict(p) for p in parties],
        "buyer": ref(buyer),
        **sections,
    }


def _tender_tag(t: Tender) -> str:
    if t.state == "cancelled":
        return "tenderCancellation"
    if t.state in ("published", "bidding") and t.published_at == t.updated_at:
        return "tender"
    return "tenderUpdate"


def _contract_tag(c: Contract) -> str:
    if c.state in ("completed", "terminated"):
        return "contractTermination"
    return "contract" if c.signed_at == c.updated_at else "contractUpdate"


def releases(process: Process, prefix: str) -> list[dict[str, Any]]:
    """The releases of the process as it stands, oldest stage first."""
    t = process.tender
    ocid = ocid_of(prefix, t.id)
    buyer = buyer_party(process)
    out: list[dict[str, Any]] = []
    project = process.project
    if project is not None:
        out.append(
            _release(
                ocid,
                f"planning-v{project.version}",
                date_=project.updated_at,
                tag="planning",
                parties=[buyer],
                buyer=buyer,
                planning={
                    "budget": _clean(
                        {
                            "id": project.project_id,
                            "description": f"{project.title} ({project.quantity} {project.unit})",
                            "amount": amount(project.budget_fen),
                            "project": project.title,
                            "projectID": project.project_id,
                        }
                    )
                },
            )
        )
    if t.published_at is None:
        return out  # a draft is not public
    related = []
    if t.previous_tender_id:
        related.append(
            {
                "id": "1",
                "relationship": ["unsuccessfulProcess"],
                "title": "之前失败的采购 (the failed tender this one follows)",
                "scheme": "ocid",
                "identifier": ocid_of(prefix, t.previous_tender_id),
            }
        )
    bidders = list(dict.fromkeys(b.organisation_id for b in process.bids))
    tender_parties = [buyer]
    if t.state in OPENED_STATES:
        tender_parties += [org_party(process, o, _roles(process, o)) for o in bidders]
    tender_release = _release(
        ocid,
        f"tender-v{t.version}",
        date_=t.updated_at,
        tag=_tender_tag(t),
        parties=tender_parties,
        buyer=buyer,
        tender=tender_section(process, buyer),
    )
    if related:
        tender_release["relatedProcesses"] = related
    out.append(tender_release)
    for award in process.awards:
        supplier = org_party(process, award.organisation_id, _roles(process, award.organisation_id))
        out.append(
            _release(
                ocid,
                f"award-{award.id}-{award.state}",
                date_=award.updated_at,
                tag="award" if award.state == "offered" else "awardUpdate",
                parties=[buyer, supplier],
                buyer=buyer,
                tender={"id": t.id},
                awards=[award_section(process, award)],
            )
        )
    for contract in process.contracts:
        supplier = org_party(process, contract.organisation_id, ["tenderer", "supplier"])
        out.append(
            _release(
                ocid,
                f"contract-{contract.id}-v{contract.version}",
                date_=contract.updated_at,
                tag=_contract_tag(contract),
                parties=[buyer, supplier],
                buyer=buyer,
                tender={"id": t.id},
                contracts=[contract_section(process, contract)],
            )
        )
    by_contract = {c.id: c for c in process.contracts}
    for acceptance in process.acceptances:
        accepted = by_contract.get(acceptance.contract_id)
        if accepted is None:
            continue
        supplier = org_party(process, accepted.organisation_id, ["tenderer", "supplier"])
        out.append(
            _release(
                ocid,
                f"implementation-{acceptance.id}",
                date_=acceptance.published_at,
                tag="implementation",
                parties=[buyer, supplier],
                buyer=buyer,
                tender={"id": t.id},
                contracts=[
                    {
                        "id": accepted.id,
                        "awardID": accepted.award_id,
                        "implementation": {"milestones": [milestone(process, acceptance)]},
                    }
                ],
            )
        )
    return out
