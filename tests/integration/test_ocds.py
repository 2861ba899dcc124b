"""OCDS 1.1 export of the purchasing processes: releases and compiled records for a tender
that was awarded (with a refused offer, a signed contract and a published acceptance), one
that failed (废标) and one that was cancelled, over HTTP on a real database and the session's
real nats-server, and the CLI export to a file.

VALIDATION: the issue asks for validation against the official OCDS 1.1 release schema
(`release-schema.json`). That file is not installed here and no installable package carries
it (checked: ocdskit, ocdsmerge, ocdsmerge-rs, libcoveocds, ocdsextensionregistry,
ocds-babel, followthemoney-ocds, ocdscardinal, ocdsnightingale, tedective-etl — the last
ships models generated from the schema, AGPL and with heavy dependencies, not the schema),
and there is no network to fetch it. So the output is validated against the pydantic models
below, written from the OCDS 1.1 reference independently of the exporter: the required
fields, the closed code lists (release tag, initiation type, tender / award / contract /
milestone status, procurement method, main procurement category) and the documented values
of the open ones we use (party role, milestone type, related process), the Value structure,
RFC 3339 date-times, and no field outside the standard (`extra="forbid"`). Swapping in the
official schema needs only the file (network access, or the schema in a package): validate
each release and package with `jsonschema` (Draft 4) beside these models.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from typer.testing import CliRunner

from libs.common.auth import Role
from libs.common.clock import FrozenClock
from libs.common.ratelimit import TokenBucketLimiter
from services.matching.library.models import ExpertView, ProjectView
from services.matching.market.models import Bid, Tender
from services.matching.models import Match, OrganisationView
from services.matching.ocds import merge
from services.matching.ocds.cli import app as ocds_cli
from tests import factories
from tests.support.platform import Platform, auth, eventually, token

REGION = "220102"  # 长春市南关区
PURCHASER = auth(Role.purchaser, region=REGION)
NOW = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)  # 10:00 in China
PREFIX = "ocds-t3st01"
CRITERIA = [
    {"code": "service_plan", "name": "服务方案", "weight": "0.40"},
    {"code": "staffing", "name": "人员配备", "weight": "0.30"},
]

# ------------------------------------------------------------------- OCDS 1.1, as documented

ReleaseTag = Literal[
    "planning",
    "planningUpdate",
    "tender",
    "tenderAmendment",
    "tenderUpdate",
    "tenderCancellation",
    "award",
    "awardUpdate",
    "awardCancellation",
    "contract",
    "contractUpdate",
    "contractAmendment",
    "implementation",
    "implementationUpdate",
    "contractTermination",
    "compiled",
]
PartyRole = Literal[
    "buyer",
    "procuringEntity",
    "supplier",
    "tenderer",
    "funder",
    "enquirer",
    "payer",
    "payee",
    "reviewBody",
    "interestedParty",
]


class Ocds(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Value(Ocds):
    amount: float
    currency: Literal["CNY"]  # ISO 4217; the only one we publish


class Period(Ocds):
    startDate: AwareDatetime | None = None
    endDate: AwareDatetime | None = None


class Identifier(Ocds):
    scheme: str
    id: str
    legalName: str | None = None


class Address(Ocds):
    streetAddress: str | None = None
    locality: str | None = None
    region: str | None = None
    postalCode: str | None = None
    countryName: str | None = None


class Organization(Ocds):
    id: str = Field(min_length=1)
    name: str
    identifier: Identifier | None = None
    address: Address | None = None
    roles: list[PartyRole] = Field(min_length=1)


class OrganizationReference(Ocds):
    id: str = Field(min_length=1)
    name: str


class Budget(Ocds):
    id: str | None = None
    description: str | None = None
    amount: Value | None = None
    project: str | None = None
    projectID: str | None = None


class Planning(Ocds):
    budget: Budget | None = None
    rationale: str | None = None


class Classification(Ocds):
    scheme: str
    id: str


class Item(Ocds):
    id: str = Field(min_length=1)
    description: str | None = None
    classification: Classification | None = None


class OcdsTender(Ocds):
    id: str = Field(min_length=1)
    title: str | None = None
    description: str | None = None
    status: (
        Literal[
            "planning", "planned", "active", "cancelled", "unsuccessful", "complete", "withdrawn"
        ]
        | None
    ) = None
    value: Value | None = None
    procurementMethod: Literal["open", "selective", "limited", "direct"] | None = None
    procurementMethodDetails: str | None = None
    procurementMethodRationale: str | None = None
    mainProcurementCategory: Literal["goods", "works", "services"] | None = None
    awardCriteria: str | None = None
    awardCriteriaDetails: str | None = None
    eligibilityCriteria: str | None = None
    tenderPeriod: Period | None = None
    procuringEntity: OrganizationReference | None = None
    items: list[Item] | None = None
    tenderers: list[OrganizationReference] | None = None
    numberOfTenderers: int | None = Field(default=None, ge=0)


class OcdsAward(Ocds):
    id: str = Field(min_length=1)
    title: str | None = None
    description: str | None = None
    status: Literal["pending", "active", "cancelled", "unsuccessful"] | None = None
    date: AwareDatetime | None = None
    value: Value | None = None
    suppliers: list[OrganizationReference] | None = None
    contractPeriod: Period | None = None


class Milestone(Ocds):
    id: str = Field(min_length=1)
    title: str | None = None
    type: (
        Literal[
            "preProcurement",
            "approval",
            "engagement",
            "assessment",
            "delivery",
            "reporting",
            "financing",
        ]
        | None
    ) = None
    description: str | None = None
    status: Literal["scheduled", "met", "notMet", "partiallyMet"] | None = None
    dateMet: AwareDatetime | None = None
    dateModified: AwareDatetime | None = None


class Implementation(Ocds):
    milestones: list[Milestone] | None = None


class OcdsContract(Ocds):
    id: str = Field(min_length=1)
    awardID: str = Field(min_length=1)
    title: str | None = None
    description: str | None = None
    status: Literal["pending", "active", "cancelled", "terminated"] | None = None
    period: Period | None = None
    value: Value | None = None
    dateSigned: AwareDatetime | None = None
    implementation: Implementation | None = None


class RelatedProcess(Ocds):
    id: str
    relationship: list[
        Literal[
            "framework",
            "planning",
            "parent",
            "prior",
            "unsuccessfulProcess",
            "subContract",
            "replacementProcess",
            "renewalProcess",
        ]
    ]
    title: str | None = None
    scheme: Literal["ocid"] | None = None
    identifier: str | None = None


class Release(Ocds):
    ocid: str = Field(pattern=r"^ocds-[a-z0-9]{6}-.+")
    id: str = Field(min_length=1, pattern=r"^[^#]+$")
    date: AwareDatetime
    tag: list[ReleaseTag] = Field(min_length=1)
    initiationType: Literal["tender"]
    language: str | None = None
    parties: list[Organization] | None = None
    buyer: OrganizationReference | None = None
    planning: Planning | None = None
    tender: OcdsTender | None = None
    awards: list[OcdsAward] | None = None
    contracts: list[OcdsContract] | None = None
    relatedProcesses: list[RelatedProcess] | None = None


class Publisher(Ocds):
    name: str
    scheme: str | None = None
    uid: str | None = None
    uri: str | None = None


class Links(Ocds):
    next: str | None = None
    prev: str | None = None


class ReleasePackage(Ocds):
    uri: str
    version: Literal["1.1"]
    publishedDate: AwareDatetime
    publisher: Publisher
    releases: list[Release]
    links: Links | None = None


class Record(Ocds):
    ocid: str
    releases: list[Release] = Field(min_length=1)
    compiledRelease: Release


class RecordPackage(Ocds):
    uri: str
    version: Literal["1.1"]
    publishedDate: AwareDatetime
    publisher: Publisher
    records: list[Record]


# ------------------------------------------------------------------------- three purchases


def org_auth(org_id: str) -> dict[str, str]:
    return auth(Role.organisation, region="22", org_id=org_id)


@dataclass
class Purchases:
    platform: Platform
    clock: FrozenClock

    @property
    def http(self) -> Any:
        return self.platform["matching"]

    async def add(self, *rows: Any) -> None:
        async with self.platform.runtime("matching").db.write_session() as session:
            session.add_all(rows)
            await session.commit()

    async def project(self, title: str) -> ProjectView:
        project = ProjectView(
            project_id=str(uuid.uuid4()),
            region_code=REGION,
            department="长春市南关区民政局",
            title=title,
            service_codes=["care"],
            quantity=1200,
            unit="人次",
            budget_fen=50_000_000,
            purchasing_method="open_tender",
            period_start=date(2027, 1, 1),
            period_end=date(2027, 12, 31),
            qualification_requirements=[],
            pack="jilin@2026.1",
            payload={},
            version=1,
            updated_at=NOW - timedelta(days=60),
        )
        await self.add(project)
        return project

    async def view(self, organisation_id: str) -> OrganisationView:
        async with self.platform.runtime("matching").db.session() as session:
            found = await session.get(OrganisationView, organisation_id)
        assert found is not None and found.status == "admitted", found
        return found

    async def org(self, name: str) -> OrganisationView:
        view = OrganisationView(
            organisation_id=str(uuid.uuid4()),
            registered=True,
            service_regions=["2201"],
            capacities={"care": 50},
            status="admitted",
            status_version=1,
            uscc=factories.credit_code(),
            name=name,
            kind="social_organisation",
            credit_score=80.0,
            updated_at=NOW,
        )
        await self.add(view)
        return view

    async def awarded(
        self,
        *,
        organisations: Sequence[str] = (),
        served: Sequence[str] = (),
        note: str | None = None,
        summary: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Evaluated; the first-ranked refuses, the second accepts, signs, serves, passes.

        `organisations`: three bidders matching already knows (else seeded views); `served`:
        recipient refs the winner serves under the contract (a match seeded for each, else
        one for a made-up ref); `note` and `summary` go on deliveries and acceptance.
        """
        project = await self.project("南关区特困人员照料护理服务")
        tender = Tender(
            id=str(uuid.uuid4()),
            project_id=project.project_id,
            method="open_tender",
            state="evaluating",
            region_code=REGION,
            title=project.title,
            service_codes=["care"],
            budget_fen=project.budget_fen,
            pack="jilin@test",
            criteria=CRITERIA,
            price_weight=Decimal("0.30"),
            qualification_requirements=[],
            panel_size=5,
            published_at=NOW - timedelta(days=40),
            bid_deadline=NOW - timedelta(days=10),
            created_by="seed",
            created_at=NOW - timedelta(days=41),
            updated_at=NOW - timedelta(days=10),
        )
        await self.add(tender)
        if organisations:
            orgs = [await self.view(o) for o in organisations]
        else:
            orgs = [await self.org(n) for n in ("甲社工中心", "乙社工中心", "丙社工中心")]
        bids = []
        for org, price in zip(orgs, (40_000_000, 42_000_050, 45_000_000), strict=True):
            bid = Bid(
                id=str(uuid.uuid4()),
                tender_id=tender.id,
                organisation_id=org.organisation_id,
                state="valid",
                sealed="(opened)",
                price_fen=price,
                content={"plan": "服务方案"},
                submitted_at=NOW - timedelta(days=12),
                updated_at=NOW - timedelta(days=10),
                opened_at=NOW - timedelta(days=10),
            )
            await self.add(bid)
            bids.append(bid.id)
        for i in range(5):
            await self.add(
                ExpertView(
                    expert_id=str(uuid.uuid4()),
                    name=f"专家{i}",
                    region_code=REGION,
                    fields=["care"],
                    available=True,
                    status="active",
                    affiliations=[],
                    version=1,
                    updated_at=NOW,
                )
            )
        r = await self.http.post(f"/tenders/{tender.id}/panel", headers=PURCHASER)
        assert r.status_code == 201, r.text
        for member in r.json()["members"]:
            expert = {"Authorization": f"Bearer {token(Role.expert, subject=member['expert_id'])}"}
            for bid_id, mark in zip(bids, (90, 85, 70), strict=True):
                r = await self.http.post(
                    f"/tenders/{tender.id}/scores",
                    json={"bid_id": bid_id, "scores": {c["code"]: mark for c in CRITERIA}},
                    headers=expert,
                )
                assert r.status_code == 201, r.text
        r = await self.http.post(f"/tenders/{tender.id}/evaluate", headers=PURCHASER)
        assert r.status_code == 200, r.text
        first = r.json()["award"]
        r = await self.http.post(
            f"/awards/{first['id']}/refuse",
            json={"reason": "放弃中标"},
            headers=org_auth(first["organisation_id"]),
        )
        assert r.status_code == 200, r.text
        second = r.json()["next_award"]
        r = await self.http.post(
            f"/awards/{second['id']}/accept", headers=org_auth(second["organisation_id"])
        )
        assert r.status_code == 200 and r.json()["tender_state"] == "awarded", r.text
        winner = second["organisation_id"]
        r = await self.http.post(
            "/contracts",
            json={
                "award_id": second["id"],
                "regions": [REGION],
                "monthly_capacity": {"care": 40},
                "settlement": "按月结算，次月10日前支付",
                "period_start": "2027-01-01",
                "period_end": "2027-12-31",
            },
            headers=PURCHASER,
        )
        assert r.status_code == 201, r.text
        contract_id = r.json()["id"]
        r = await self.http.post(f"/contracts/{contract_id}/sign", headers=org_auth(winner))
        assert r.status_code == 200, r.text
        matches: list[str] = []
        for ref in served or [str(uuid.uuid4())]:
            match = Match(
                id=str(uuid.uuid4()),
                need_id=str(uuid.uuid4()),
                organisation_id=winner,
                contract_id=contract_id,
                recipient_ref=ref,
                region_code="220102001001",
                service_code="care",
                period="2027-01",
                score=1.0,
                explanation={"seeded": True},
                run_id=str(uuid.uuid4()),
                created_at=NOW,
            )
            await self.add(match)
            matches.append(match.id)
        delivery = {"units": 2, **({"note": note} if note else {})}
        for match_id in matches:
            for day in ("2027-01-05", "2027-01-06"):
                r = await self.http.post(
                    f"/matches/{match_id}/deliveries",
                    json={"delivered_on": day, **delivery},
                    headers=org_auth(winner),
                )
                assert r.status_code == 201, r.text
                r = await self.http.post(
                    f"/deliveries/{r.json()['id']}/confirm",
                    json={"by": "recipient"},
                    headers=PURCHASER,
                )
                assert r.status_code == 200, r.text
        r = await self.http.post(
            f"/contracts/{contract_id}/acceptances", json={"period": "2027-01"}, headers=PURCHASER
        )
        assert r.status_code == 201, r.text
        acceptance_id = r.json()["id"]
        r = await self.http.post(
            f"/acceptances/{acceptance_id}/result",
            json={
                "result": "qualified",
                "summary": summary or {"satisfaction": 0.95, "note": "服务规范"},
            },
            headers=PURCHASER,
        )
        assert r.status_code == 200, r.text
        return {
            "tender": tender,
            "project": project,
            "orgs": orgs,
            "bids": bids,
            "refused": first,
            "accepted": second,
            "contract_id": contract_id,
            "acceptance_id": acceptance_id,
        }

    async def published(self, title: str) -> tuple[ProjectView, dict[str, Any]]:
        project = await self.project(title)
        body = {
            "project_id": project.project_id,
            "method": "open_tender",
            "criteria": CRITERIA,
            "price_weight": "0.3",
            "bid_deadline": (self.clock() + timedelta(days=21)).isoformat(),
        }
        r = await self.http.post("/tenders", json=body, headers=PURCHASER)
        assert r.status_code == 201, r.text
        r = await self.http.post(f"/tenders/{r.json()['id']}/publish", headers=PURCHASER)
        assert r.status_code == 200, r.text
        return project, dict(r.json())

    async def cancelled(self) -> dict[str, Any]:
        _, notice = await self.published("南关区困境儿童心理疏导服务")
        r = await self.http.post(
            f"/tenders/{notice['id']}/cancel",
            json={"reason": "预算调整，终止采购"},
            headers=PURCHASER,
        )
        assert r.status_code == 200, r.text
        return notice

    async def failed(self) -> dict[str, Any]:
        """Two valid bids where three are needed (废标). Moves the clock past the deadline."""
        _, notice = await self.published("南关区低保对象社区照顾服务")
        for name, price in (("丁社工中心", 30_000_000), ("戊社工中心", 31_000_000)):
            org = await self.org(name)
            r = await self.http.post(
                f"/tenders/{notice['id']}/bids",
                json={"price_fen": price, "content": {"plan": "服务方案"}},
                headers=org_auth(org.organisation_id),
            )
            assert r.status_code == 201, r.text
        self.clock.advance(days=22)
        r = await self.http.post(f"/tenders/{notice['id']}/open", headers=PURCHASER)
        assert r.status_code == 200, r.text
        assert r.json()["tender"]["state"] == "failed"
        return notice


@pytest.fixture
async def purchases(
    nats_url: str, database_url_factory: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Purchases]:
    monkeypatch.setenv("SA_MATCHING_OCDS_PREFIX", PREFIX)
    platform = Platform(nats_url=nats_url, database_url=database_url_factory, services=["matching"])
    clock = FrozenClock(NOW)
    platform.apps["matching"].state.clock = clock
    # Polling public routes in a loop is not what the public bucket is sized for.
    platform.apps["matching"].state.rate_limiter = TokenBucketLimiter(rate=1000, burst=1000)
    async with platform as p:
        yield Purchases(p, clock)


async def record_of(p: Purchases, tender_id: str, *, until: Callable[[Any], bool]) -> Record:
    async def probe() -> Any:
        r = await p.http.get(f"/ocds/records/{PREFIX}-{tender_id}")  # no login
        return r.json() if r.status_code == 200 else None

    body = await eventually(probe, until=lambda b: b is not None and until(b))
    package = RecordPackage.model_validate(body)
    assert len(package.records) == 1
    return package.records[0]


def compiled(record: Record) -> dict[str, Any]:
    return record.compiledRelease.model_dump(exclude_none=True, mode="json")


async def test_awarded_failed_and_cancelled_processes_are_valid_ocds(
    purchases: Purchases, tmp_path: Path
) -> None:
    won = await purchases.awarded()
    cancelled = await purchases.cancelled()
    failed = await purchases.failed()

    # -- awarded: complete, the refused offer unsuccessful, the contract met its milestone
    record = await record_of(
        purchases,
        won["tender"].id,
        until=lambda b: any("implementation" in r["tag"] for r in b["records"][0]["releases"]),
    )
    assert record.ocid == f"{PREFIX}-{won['tender'].id}"
    c = compiled(record)
    assert c["tag"] == ["compiled"]
    tender = c["tender"]
    assert tender["status"] == "complete" and tender["procurementMethod"] == "open"
    assert tender["procurementMethodDetails"] == "公开招标"
    assert tender["mainProcurementCategory"] == "services"
    assert tender["value"] == {"amount": 500000, "currency": "CNY"}  # 50,000,000 fen
    assert tender["numberOfTenderers"] == 3
    assert c["planning"]["budget"]["amount"] == {"amount": 500000, "currency": "CNY"}
    assert c["planning"]["budget"]["projectID"] == won["project"].project_id
    awards = {a["id"]: a for a in c["awards"]}
    assert awards[won["refused"]["id"]]["status"] == "unsuccessful"
    assert awards[won["refused"]["id"]]["description"] == "放弃中标"
    winner = awards[won["accepted"]["id"]]
    assert winner["status"] == "active"
    assert winner["value"] == {"amount": 420000.5, "currency": "CNY"}  # 42,000,050 fen
    (contract,) = c["contracts"]
    assert contract["id"] == won["contract_id"] and contract["awardID"] == won["accepted"]["id"]
    assert contract["status"] == "active" and contract["value"]["amount"] == 420000.5
    (milestone,) = contract["implementation"]["milestones"]
    assert milestone["id"] == won["acceptance_id"] and milestone["status"] == "met"
    assert (
        milestone["type"] == "delivery"
        and "2 confirmed service sessions" in milestone["description"]
    )
    parties = {p["name"]: p for p in c["parties"]}
    assert parties["长春市南关区民政局"]["roles"] == ["buyer", "procuringEntity"]
    assert c["buyer"]["name"] == "长春市南关区民政局"
    assert parties["乙社工中心"]["roles"] == ["tenderer", "supplier"]
    assert parties["乙社工中心"]["identifier"] == {
        "scheme": "CN-USCC",
        "id": won["orgs"][1].uscc,
        "legalName": "乙社工中心",
    }
    assert parties["甲社工中心"]["roles"] == ["tenderer"]
    tags = [tag for r in record.releases for tag in r.tag]
    assert {"planning", "award", "awardUpdate", "contract", "implementation"} <= set(tags)
    dates = [r.date for r in record.releases]
    assert dates == sorted(dates)

    # -- cancelled
    record = await record_of(
        purchases,
        cancelled["id"],
        until=lambda b: b["records"][0]["releases"][-1]["tag"] == ["tenderCancellation"],
    )
    c = compiled(record)
    assert c["tender"]["status"] == "cancelled"
    assert "预算调整，终止采购" in c["tender"]["description"]
    # A release is a snapshot of what the consumer saw: the notice of publication is there
    # unless the cancellation came before the consumer got to it.
    assert [r.tag[0] for r in record.releases] in (
        ["planning", "tender", "tenderCancellation"],
        ["planning", "tenderCancellation"],
    )
    assert "awards" not in c and "contracts" not in c

    # -- failed (废标): unsuccessful, the two bidders as tenderers, no award
    record = await record_of(
        purchases,
        failed["id"],
        until=lambda b: b["records"][0]["compiledRelease"]["tender"]["status"] == "unsuccessful",
    )
    c = compiled(record)
    assert c["tender"]["numberOfTenderers"] == 2
    assert {t["name"] for t in c["tender"]["tenderers"]} == {"丁社工中心", "戊社工中心"}
    assert "废标" in c["tender"]["description"] and "awards" not in c
    assert c["tender"]["tenderPeriod"]["endDate"] == failed["bid_deadline"].replace("+00:00", "Z")

    # -- the release feed: a valid package per page, every release once, in store order
    seen: list[Release] = []
    url = "/ocds/releases?limit=4"
    for _ in range(50):
        r = await purchases.http.get(url)
        assert r.status_code == 200, r.text
        package = ReleasePackage.model_validate(r.json())
        assert package.publisher.name and package.links and package.links.next
        if not package.releases:
            break
        seen += package.releases
        url = package.links.next.removeprefix("http://matching")
    ids = [r.id for r in seen]
    assert len(ids) == len(set(ids)) >= 12
    assert {r.ocid for r in seen} == {
        f"{PREFIX}-{won['tender'].id}",
        f"{PREFIX}-{cancelled['id']}",
        f"{PREFIX}-{failed['id']}",
    }
    # Region filter, and a record that does not exist.
    r = await purchases.http.get("/ocds/releases", params={"region": "3301"})
    assert r.status_code == 200 and r.json()["releases"] == []
    missing = await purchases.http.get(f"/ocds/records/{PREFIX}-{uuid.uuid4()}")
    assert missing.status_code == 404

    # -- the CLI writes the same releases (and the records) to a file
    db_url = purchases.platform.runtime("matching").settings.database_url
    target = tmp_path / "export" / "ocds.json"
    runner = CliRunner()
    env = {"SA_MATCHING_DATABASE_URL": db_url, "SA_MATCHING_OCDS_PREFIX": PREFIX}
    result = await asyncio.to_thread(
        runner.invoke, ocds_cli, ["export", "--out", str(target)], env=env
    )
    assert result.exit_code == 0, result.output
    exported = ReleasePackage.model_validate(json.loads(target.read_text(encoding="utf-8")))
    assert [r.id for r in exported.releases] == ids
    assert "continue with --since" in result.output
    result = await asyncio.to_thread(
        runner.invoke, ocds_cli, ["export", "--out", str(target), "--records"], env=env
    )
    assert result.exit_code == 0, result.output
    records = RecordPackage.model_validate(json.loads(target.read_text(encoding="utf-8")))
    statuses = sorted(
        str(r.compiledRelease.tender.status) for r in records.records if r.compiledRelease.tender
    )
    assert statuses == ["cancelled", "complete", "unsuccessful"]


async def test_releases_never_change_and_a_contract_change_is_a_new_release(
    purchases: Purchases,
) -> None:
    won = await purchases.awarded()
    ocid = f"{PREFIX}-{won['tender'].id}"
    before = await record_of(
        purchases,
        won["tender"].id,
        until=lambda b: any("implementation" in r["tag"] for r in b["records"][0]["releases"]),
    )
    r = await purchases.http.post(f"/contracts/{won['contract_id']}/complete", headers=PURCHASER)
    assert r.status_code == 200, r.text
    after = await record_of(
        purchases,
        won["tender"].id,
        until=lambda b: any("contractTermination" in r["tag"] for r in b["records"][0]["releases"]),
    )
    old = {r.id: r.model_dump(mode="json") for r in before.releases}
    new = {r.id: r.model_dump(mode="json") for r in after.releases}
    assert set(old) < set(new)
    assert all(new[k] == v for k, v in old.items())  # a published release is never rewritten
    (contract,) = compiled(after)["contracts"]
    assert contract["status"] == "terminated"
    assert contract["implementation"]["milestones"][0]["status"] == "met"  # kept by the merge
    assert after.ocid == ocid


# ------------------------------------------------------------------------------ the merge


def test_compiling_merges_identified_objects_and_replaces_other_lists() -> None:
    base = {"ocid": "ocds-abc123-1", "initiationType": "tender"}
    releases: list[dict[str, Any]] = [
        {
            **base,
            "id": "2",
            "date": "2027-01-02T00:00:00Z",
            "tag": ["award"],
            "awards": [{"id": "a", "status": "pending", "suppliers": [{"id": "s", "name": "S"}]}],
            "parties": [{"id": "s", "name": "S", "roles": ["tenderer", "supplier"]}],
        },
        {
            **base,
            "id": "1",
            "date": "2027-01-01T00:00:00Z",
            "tag": ["tender"],
            "tender": {"id": "t", "status": "active", "items": [{"id": "x"}, {"id": "y"}]},
            "parties": [
                {"id": "s", "name": "S", "roles": ["tenderer"]},
                {"id": "b", "name": "B", "roles": ["buyer"]},
            ],
        },
        {
            **base,
            "id": "3",
            "date": "2027-01-03T00:00:00Z",
            "tag": ["awardUpdate"],
            "tender": {"id": "t", "status": "complete", "items": [{"id": "y", "description": "Y"}]},
            "awards": [{"id": "a", "status": "active"}, {"id": "b2", "status": "pending"}],
        },
    ]
    record = merge.record(releases)
    c = record["compiledRelease"]
    assert [r["id"] for r in record["releases"]] == ["1", "2", "3"]
    assert c["id"] == "ocds-abc123-1-2027-01-03T00:00:00Z" and c["tag"] == ["compiled"]
    assert c["date"] == "2027-01-03T00:00:00Z"
    assert c["tender"]["status"] == "complete"
    assert c["tender"]["items"] == [{"id": "x"}, {"id": "y", "description": "Y"}]
    assert c["awards"] == [
        {"id": "a", "status": "active", "suppliers": [{"id": "s", "name": "S"}]},
        {"id": "b2", "status": "pending"},
    ]
    # Roles are a list of strings: the later release's list replaces the earlier one.
    assert c["parties"] == [
        {"id": "s", "name": "S", "roles": ["tenderer", "supplier"]},
        {"id": "b", "name": "B", "roles": ["buyer"]},
    ]
    Release.model_validate(c)
    with pytest.raises(ValueError):
        merge.compile_release([])
