"""Public disclosure lists and their change feeds (`?since=<cursor>`), on a real database and
the session's real nats-server.

The feed mechanism (libs/common/feed.py) is shown first on its own, under concurrent writers
with random delays inside their transactions while a reader follows the feed: the reader
ends having seen every committed change once, in order, and nothing rolled back. The same
harness catches the classic fault (numbers taken before the write lock, as with timestamps),
so the property is not passing by luck. Then the public endpoints of matching and credit:
no login, rate-limited (429 with Retry-After), paginated lists, feeds that continue from a
cursor and show a modified record again at its new place. Run on SQLite and, with
DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, MetaData, String, Table, select

from libs.common.auth import Role
from libs.common.clock import FrozenClock
from libs.common.db import Database, make_registry
from libs.common.events import new_event
from libs.common.feed import FeedTables, decode_cursor, encode_cursor
from libs.common.policy import pack_for_region
from libs.common.ratelimit import TokenBucketLimiter
from services.credit import service as credit_service
from services.credit.models import Evaluation, OrganisationRecord
from services.matching.library.models import ExpertView, ProjectView
from services.matching.market.models import Bid, Tender
from services.matching.models import OrganisationView
from tests import factories
from tests.support.platform import Platform, auth, eventually, token

REGION = "220102"  # 长春市南关区
PURCHASER = auth(Role.purchaser, region=REGION)
OPERATOR = auth(Role.operator, region="22")
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in China

# ----------------------------------------------------------------------------- the mechanism

registry = make_registry()
metadata: MetaData = registry.metadata
feeds = FeedTables.define(metadata)
# The fault the feed avoids: a number taken before the write (a timestamp, a sequence).
naive = Table(
    "naive_item",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("key", String(40), nullable=False),
)


class Rollback(Exception):
    """A writer abandons its transaction."""


async def open_db(url: str, *, create: bool = False) -> Database:
    db = Database(url)
    if create:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    return db


@dataclass
class Ledger:
    """What the writers committed and what the reader saw."""

    committed: dict[str, int] = field(default_factory=dict)  # key → a committed version
    writes: dict[tuple[str, int], int] = field(default_factory=dict)  # committed (key, v) → seq
    rolled_back: set[tuple[str, int]] = field(default_factory=set)
    seen: list[tuple[int, str, int]] = field(default_factory=list)  # (seq, key, v)
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))


async def writer(url: str, rng: random.Random, ledger: Ledger, name: str, rounds: int) -> None:
    """Transactions with random delays before and while holding the feed; some update a
    committed record, some roll back."""
    db = await open_db(url)
    try:
        for i in range(rounds):
            # Two draws every round, whatever has committed so far: the rolls (and so the
            # rollbacks) depend on the seed alone, not on how the writers interleave.
            roll, pick = rng.random(), rng.random()
            if roll < 0.3 and ledger.committed:
                keys = sorted(ledger.committed)
                key = keys[int(pick * len(keys))]
            else:
                key = f"{name}-{i}"
            version = next(ledger.numbers)  # unique and growing: a record's versions ascend
            rollback = 0.3 <= roll < 0.4
            await asyncio.sleep(rng.uniform(0, 0.01))
            try:
                # Not the service's write_session: its in-process lock would serialise the
                # writers before the database does. Each writer has its own engine.
                async with db.sessionmaker() as session, session.begin():
                    await asyncio.sleep(rng.uniform(0, 0.005))
                    seq = await feeds.put(
                        session,
                        feed="items",
                        key=key,
                        document={"key": key, "v": version},
                        region_code=REGION,
                        at=datetime.now(UTC),
                    )
                    await asyncio.sleep(rng.uniform(0, 0.02))  # holding the counter
                    if rollback:
                        raise Rollback
            except Rollback:
                ledger.rolled_back.add((key, version))
                continue
            assert seq is not None
            ledger.committed[key] = version
            ledger.writes[(key, version)] = seq
    finally:
        await db.dispose()


async def follow(url: str, rng: random.Random, ledger: Ledger, done: asyncio.Event) -> None:
    """Follow the feed with the opaque cursor until the writers are done and it is drained."""
    db = await open_db(url)
    cursor = encode_cursor(0)
    try:
        while True:
            finished = done.is_set()  # read before the page: a later write is read next time
            async with db.session() as session:
                entries, more = await feeds.read(
                    session, feed="items", after=decode_cursor(cursor), limit=5
                )
            for e in entries:
                ledger.seen.append((e.seq, e.key, int(e.document["v"])))
                cursor = encode_cursor(e.seq)
            if finished and not entries and not more:
                return
            await asyncio.sleep(rng.uniform(0, 0.004))
    finally:
        await db.dispose()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_follower_misses_nothing_under_concurrent_writers(
    seed: int, database_url: str
) -> None:
    rng = random.Random(seed)
    setup = await open_db(database_url, create=True)
    await setup.dispose()
    ledger = Ledger()
    done = asyncio.Event()
    reader = asyncio.create_task(follow(database_url, random.Random(seed + 100), ledger, done))
    await asyncio.gather(
        *(
            writer(database_url, random.Random(rng.random()), ledger, f"w{n}", rounds=12)
            for n in range(5)
        )
    )
    done.set()
    await asyncio.wait_for(reader, timeout=60)

    seqs = [s for s, _, _ in ledger.seen]
    assert seqs == sorted(set(seqs)), "feed numbers must come strictly in order"
    pairs = [(k, v) for _, k, v in ledger.seen]
    assert len(pairs) == len(set(pairs)), "no change may be delivered twice"
    # Only committed changes, each under the number its own transaction took.
    assert {(k, v): s for s, k, v in ledger.seen}.items() <= ledger.writes.items()
    assert not set(pairs) & ledger.rolled_back
    # Every record reached the follower, and its last delivery is its last committed state
    # (the one whose transaction committed last, i.e. took the highest number).
    final: dict[str, tuple[int, int]] = {}
    for (key, version), seq in ledger.writes.items():
        if key not in final or seq > final[key][0]:
            final[key] = (seq, version)
    assert {k: v for _, k, v in ledger.seen} == {k: v for k, (_, v) in final.items()}
    # A record written once is delivered exactly once.
    once = {k for k in final if sum(1 for key, _ in ledger.writes if key == k) == 1}
    assert all(sum(1 for _, k, _ in ledger.seen if k == key) == 1 for key in once)
    # The random run did insert, update and abandon.
    assert len(final) >= 25 and len(ledger.writes) > len(final) and ledger.rolled_back


async def test_numbers_taken_before_the_write_skip_a_late_commit_the_feed_does_not(
    database_url: str,
) -> None:
    """A commits after B although it numbered first: a timestamp-style feed loses A for a
    follower who read B in between; the feed's counter makes B wait for A instead."""
    setup = await open_db(database_url, create=True)
    await setup.dispose()
    a_db, b_db, r_db = [await open_db(database_url) for _ in range(3)]
    try:
        # -- the fault: numbers handed out before the transaction writes
        numbers = itertools.count(1)
        b_committed = asyncio.Event()

        async def naive_write(db: Database, key: str, wait: asyncio.Event | None) -> None:
            stamp = next(numbers)
            if wait is not None:
                await wait.wait()
            async with db.sessionmaker() as session, session.begin():
                await session.execute(naive.insert().values(seq=stamp, key=key))

        async def naive_read(after: int) -> list[tuple[int, str]]:
            async with r_db.session() as session:
                rows = await session.execute(
                    select(naive.c.seq, naive.c.key).where(naive.c.seq > after).order_by("seq")
                )
                return [(int(s), str(k)) for s, k in rows.all()]

        late = asyncio.create_task(naive_write(a_db, "a", b_committed))
        await asyncio.sleep(0.05)
        await naive_write(b_db, "b", None)
        first = await naive_read(0)
        b_committed.set()
        await late
        second = await naive_read(first[-1][0])
        assert first == [(2, "b")] and second == []  # "a" (number 1) is never delivered
        assert await naive_read(0) == [(1, "a"), (2, "b")]  # though it is committed

        # -- the feed: B's number waits for A's commit
        a_holds, release_a = asyncio.Event(), asyncio.Event()
        got: dict[str, int | None] = {}

        async def feed_write(db: Database, key: str, hold: bool) -> None:
            async with db.sessionmaker() as session, session.begin():
                got[key] = await feeds.put(
                    session,
                    feed="order",
                    key=key,
                    document={"key": key},
                    region_code=REGION,
                    at=datetime.now(UTC),
                )
                if hold:
                    a_holds.set()
                    await release_a.wait()

        async def feed_read(after: int) -> list[tuple[int, str]]:
            async with r_db.session() as session:
                entries, _ = await feeds.read(session, feed="order", after=after, limit=10)
            return [(e.seq, e.key) for e in entries]

        task_a = asyncio.create_task(feed_write(a_db, "a", True))
        await a_holds.wait()
        task_b = asyncio.create_task(feed_write(b_db, "b", False))
        await asyncio.sleep(0.3)
        assert "b" not in got, "B must not get a number while A holds the counter"
        assert await feed_read(0) == []  # nothing committed yet
        release_a.set()
        await asyncio.gather(task_a, task_b)
        a_seq, b_seq = got["a"], got["b"]
        assert a_seq is not None and b_seq is not None and a_seq < b_seq
        assert await feed_read(0) == [(a_seq, "a"), (b_seq, "b")]
    finally:
        for db in (a_db, b_db, r_db):
            await db.dispose()


async def test_unchanged_documents_take_no_number_and_immutable_records_stay(
    database_url: str,
) -> None:
    db = await open_db(database_url, create=True)
    try:
        now = datetime.now(UTC)

        async def put(key: str, doc: dict[str, Any], **kw: Any) -> int | None:
            async with db.sessionmaker() as session, session.begin():
                return await feeds.put(
                    session, feed="f", key=key, document=doc, region_code=REGION, at=now, **kw
                )

        first = await put("x", {"v": 1})
        assert first is not None
        assert await put("x", {"v": 1}) is None  # same document: no new number
        second = await put("x", {"v": 2})
        assert second is not None and second > first
        assert await put("r", {"v": 1}, immutable=True) is not None
        assert await put("r", {"v": 2}, immutable=True) is None  # a release never changes
        async with db.session() as session:
            entries, more = await feeds.read(session, feed="f", after=0, limit=10)
        assert [(e.key, e.document) for e in entries] == [("x", {"v": 2}), ("r", {"v": 1})]
        assert not more
    finally:
        await db.dispose()


def test_cursors_are_opaque_and_checked() -> None:
    assert decode_cursor(encode_cursor(12345)) == 12345
    assert decode_cursor("") == 0 and decode_cursor(None) == 0
    for bad in ("%%%", encode_cursor(12)[:-1] + "!", "LTE"):  # "LTE" is base64 of "-1"
        with pytest.raises(Exception) as info:
            decode_cursor(bad)
        assert getattr(info.value, "errors", [None])[0].field == "query.since"


def test_the_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(rate=2.0, burst=3, clock=lambda: now[0], max_clients=2)
    assert [limiter.allow("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.allow("a") == pytest.approx(0.5)
    assert limiter.allow("b") == 0.0  # buckets are per client
    now[0] += 0.5
    assert limiter.allow("a") == 0.0
    limiter.allow("c")  # a third client: the least recently seen one is forgotten
    assert "b" not in limiter._buckets and len(limiter._buckets) == 2


# ----------------------------------------------------------------------- matching's lists


@pytest.fixture
async def market(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    platform = Platform(nats_url=nats_url, database_url=database_url_factory, services=["matching"])
    platform.apps["matching"].state.clock = FrozenClock(NOW)
    # Polling public routes in a loop is not what the public bucket is sized for.
    platform.apps["matching"].state.rate_limiter = TokenBucketLimiter(rate=1000, burst=1000)
    async with platform as p:
        yield p


async def add(p: Platform, service: str, *rows: Any) -> None:
    async with p.runtime(service).db.write_session() as session:
        session.add_all(rows)
        await session.commit()


async def publish(p: Platform, service: str, entity: str, verb: str, **data: Any) -> None:
    event = new_event(service=service, entity=entity, verb=verb, data=data)
    js = next(iter(p.apps.values())).state.runtime.bus.js
    await js.publish(event.nats_subject, event.body(), headers=event.headers())


async def seed_project(p: Platform) -> str:
    project_id = str(uuid.uuid4())
    await add(
        p,
        "matching",
        ProjectView(
            project_id=project_id,
            region_code=REGION,
            department="长春市南关区民政局",
            title="南关区特困人员照料护理服务",
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
            updated_at=NOW,
        ),
    )
    return project_id


async def publish_tender(p: Platform, project_id: str) -> dict[str, Any]:
    body = {
        "project_id": project_id,
        "method": "open_tender",
        "criteria": [{"code": "service_plan", "name": "服务方案", "weight": "0.7"}],
        "price_weight": "0.3",
        "bid_deadline": (NOW + timedelta(days=25)).isoformat(),
    }
    r = await p["matching"].post("/tenders", json=body, headers=PURCHASER)
    assert r.status_code == 201, r.text
    r = await p["matching"].post(f"/tenders/{r.json()['id']}/publish", headers=PURCHASER)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def get_public(p: Platform, path: str, **params: Any) -> dict[str, Any]:
    r = await p["matching"].get(path, params=params)  # no Authorization header
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_tender_notices_list_without_login_and_the_feed_follows_changes(
    market: Platform,
) -> None:
    first = await publish_tender(market, await seed_project(market))
    second = await publish_tender(market, await seed_project(market))
    listed = await eventually(
        lambda: get_public(market, "/public/tenders"), until=lambda b: b["total"] == 2
    )
    assert {t["tender_id"] for t in listed["items"]} == {first["id"], second["id"]}
    notice = next(t for t in listed["items"] if t["tender_id"] == first["id"])
    assert notice["state"] == "bidding" and notice["ocds_status"] == "active"
    assert notice["purchaser"] == "长春市南关区民政局" and notice["method_name"] == "公开招标"
    assert notice["budget_fen"] == 50_000_000
    assert notice["criteria"] == [{"code": "service_plan", "name": "服务方案", "weight": "0.7"}]
    # Paginated, filtered by region.
    page = await get_public(market, "/public/tenders", limit=1, offset=1)
    assert page["total"] == 2 and len(page["items"]) == 1 and page["offset"] == 1
    assert (await get_public(market, "/public/tenders", region="3301"))["total"] == 0

    # The feed from the beginning: both, oldest change first.
    feed = await get_public(market, "/public/tenders", since="")
    assert [i["id"] for i in feed["items"]] == [first["id"], second["id"]]
    assert feed["has_more"] is False and not feed["items"][0]["removed"]
    cursor = feed["next_cursor"]
    assert (await get_public(market, "/public/tenders", since=cursor))["items"] == []

    # A change moves the record to the end of the feed, where the follower finds it.
    r = await market["matching"].post(
        f"/tenders/{first['id']}/cancel", json={"reason": "需求变更"}, headers=PURCHASER
    )
    assert r.status_code == 200, r.text
    changed = await eventually(
        lambda: get_public(market, "/public/tenders", since=cursor),
        until=lambda b: len(b["items"]) == 1,
    )
    item = changed["items"][0]
    assert item["id"] == first["id"] and item["data"]["state"] == "cancelled"
    assert item["data"]["state_reason"] == "需求变更" and item["data"]["ocds_status"] == "cancelled"
    assert decode_cursor(changed["next_cursor"]) > decode_cursor(cursor)
    # Small pages continue through `has_more`.
    one = await get_public(market, "/public/tenders", since="", limit=1)
    assert one["has_more"] is True and [i["id"] for i in one["items"]] == [second["id"]]
    rest = await get_public(market, "/public/tenders", since=one["next_cursor"], limit=1)
    assert [i["id"] for i in rest["items"]] == [first["id"]] and rest["has_more"] is False


async def test_a_bad_cursor_is_a_field_error_and_the_limit_answers_429(market: Platform) -> None:
    r = await market["matching"].get("/public/tenders", params={"since": "not-a-cursor!"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"] == "query.since"

    now = [100.0]
    market.apps["matching"].state.rate_limiter = TokenBucketLimiter(
        rate=1.0, burst=2, clock=lambda: now[0]
    )
    paths = ["/public/tenders", "/public/results", "/public/contracts", "/public/acceptances"]
    assert [(await market["matching"].get(p)).status_code for p in paths[:2]] == [200, 200]
    refused = await market["matching"].get(paths[2])
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["status"] == 429
    assert (await market["matching"].get("/ocds/releases")).status_code == 429
    # Login-protected routes are not limited by the public bucket.
    assert (await market["matching"].get("/tenders", headers=PURCHASER)).status_code == 200
    now[0] += 1.0
    assert (await market["matching"].get(paths[3])).status_code == 200


async def test_results_notice_shows_every_bidders_scores_and_the_panel(market: Platform) -> None:
    project_id = await seed_project(market)
    tender = Tender(
        id=str(uuid.uuid4()),
        project_id=project_id,
        method="open_tender",
        state="evaluating",
        region_code=REGION,
        title="南关区特困人员照料护理服务",
        service_codes=["care"],
        budget_fen=50_000_000,
        pack="jilin@test",
        criteria=[
            {"code": "service_plan", "name": "服务方案", "weight": "0.40"},
            {"code": "staffing", "name": "人员配备", "weight": "0.30"},
        ],
        price_weight=Decimal("0.30"),
        qualification_requirements=[],
        panel_size=5,
        published_at=NOW - timedelta(days=30),
        bid_deadline=NOW - timedelta(days=1),
        created_by="seed",
        created_at=NOW - timedelta(days=31),
        updated_at=NOW - timedelta(days=1),
    )
    await add(market, "matching", tender)
    orgs, bids = [], []
    for name, price in (
        ("甲社工中心", 40_000_000),
        ("乙社工中心", 45_000_000),
        ("丙社工中心", 48_000_000),
    ):
        org = OrganisationView(
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
        bid = Bid(
            id=str(uuid.uuid4()),
            tender_id=tender.id,
            organisation_id=org.organisation_id,
            state="valid",
            sealed="(opened)",
            price_fen=price,
            content={"plan": "服务方案"},
            submitted_at=NOW - timedelta(days=5),
            updated_at=NOW - timedelta(days=1),
            opened_at=NOW - timedelta(days=1),
        )
        await add(market, "matching", org)
        await add(market, "matching", bid)
        orgs.append(org)
        bids.append(bid.id)
    experts = []
    names = ("王专家", "李专家", "赵专家", "钱专家", "孙专家")
    for name in names:
        expert_id = str(uuid.uuid4())
        await add(
            market,
            "matching",
            ExpertView(
                expert_id=expert_id,
                name=name,
                region_code=REGION,
                fields=["care"],
                available=True,
                status="active",
                affiliations=[],
                version=1,
                updated_at=NOW,
            ),
        )
        experts.append(expert_id)
    r = await market["matching"].post(f"/tenders/{tender.id}/panel", headers=PURCHASER)
    assert r.status_code == 201, r.text
    members = [m["expert_id"] for m in r.json()["members"]]
    for expert_id in members:
        for bid_id, mark in zip(bids, (90, 80, 70), strict=True):
            r = await market["matching"].post(
                f"/tenders/{tender.id}/scores",
                json={"bid_id": bid_id, "scores": {"service_plan": mark, "staffing": mark}},
                headers={"Authorization": f"Bearer {token(Role.expert, subject=expert_id)}"},
            )
            assert r.status_code == 201, r.text
    r = await market["matching"].post(f"/tenders/{tender.id}/evaluate", headers=PURCHASER)
    assert r.status_code == 200, r.text
    internal = r.json()

    listed = await eventually(
        lambda: get_public(market, "/public/results", tender_id=tender.id),
        until=lambda b: b["total"] == 1,
    )
    notice = listed["items"][0]
    assert sorted(notice["panel"]) == sorted(names)
    assert [x["bid_id"] for x in notice["results"]] == bids
    for public, mine in zip(notice["results"], internal["results"], strict=True):
        assert public["criteria"] == mine["criteria"]
        assert public["price_score"] == mine["price_score"] and public["total"] == mine["total"]
        assert public["price_fen"] == mine["price_fen"] and public["rank"] == mine["rank"]
    assert notice["results"][0]["organisation_name"] == "甲社工中心"
    assert notice["results"][0]["uscc"] == orgs[0].uscc
    assert set(notice["results"][0]["criteria"]) == {"service_plan", "staffing"}
    assert [a["state"] for a in notice["awards"]] == ["offered"]
    assert "decided_by" not in notice["awards"][0]  # officials' accounts stay internal
    # No bid content is public.
    assert '服务方案"' not in str(notice) and "content" not in str(notice)


# ------------------------------------------------------------------------- credit's lists


def china(y: int, m: int, d: int, hour: int = 10) -> datetime:
    return datetime(y, m, d, hour, tzinfo=UTC) - timedelta(hours=8)


@pytest.fixture
async def credit(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    platform = Platform(nats_url=nats_url, database_url=database_url_factory, services=["credit"])
    clock = FrozenClock(china(2026, 11, 23))
    platform.apps["credit"].state.clock = clock
    platform.apps["credit"].state.rate_limiter = TokenBucketLimiter(rate=1000, burst=1000)
    async with platform as p:
        p.runtime("credit").clock = clock
        yield p


async def seed_org(p: Platform, name: str) -> OrganisationRecord:
    pack = pack_for_region(REGION)
    record = OrganisationRecord(
        organisation_id=str(uuid.uuid4()),
        uscc=factories.credit_code(),
        name=name,
        kind="social_organisation",
        region_code=REGION,
        pack=pack.province,
        qualifications={c.code: True for c in pack.admission_conditions},
        updated_at=datetime.now(UTC),
    )
    async with p.runtime("credit").unit_of_work() as uow:
        review = await credit_service.admit_new_organisation(
            uow=uow, record=record, today=date(2026, 11, 23)
        )
        await uow.commit()
    assert review.outcome == "admitted"
    return record


async def blacklist(p: Platform, record: OrganisationRecord) -> dict[str, Any]:
    http = p["credit"]
    body = {
        "organisation_id": record.organisation_id,
        "kind": "falsification",
        "severity": "serious",
        "description": "服务记录造假：虚报上门照料次数",
        "evidence": [{"kind": "audit", "reference": "审计报告 2026-118"}],
    }
    r = await http.post("/violations", json=body, headers=PURCHASER)
    assert r.status_code == 201, r.text
    violation = r.json()["id"]
    org = auth(Role.organisation, org_id=record.organisation_id)
    r = await http.post(
        f"/violations/{violation}/response",
        json={"response": "我们已核查并纠正了记录。"},
        headers=org,
    )
    assert r.status_code == 200, r.text
    r = await http.post(
        f"/violations/{violation}/decision",
        json={"sanction": "blacklist", "reason": "弄虚作假，情节严重"},
        headers=OPERATOR,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def credit_public(p: Platform, path: str, **params: Any) -> dict[str, Any]:
    r = await p["credit"].get(path, params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_dishonesty_feed_shows_listings_and_their_end(credit: Platform) -> None:
    from services.credit.sanctions.jobs import expire_listings

    first = await seed_org(credit, "甲社会工作服务中心")
    second = await seed_org(credit, "乙社会工作服务中心")
    entry = (await blacklist(credit, first))["blacklist_entry"]
    feed = await eventually(
        lambda: credit_public(credit, "/public/dishonesty-list", since=""),
        until=lambda b: len(b["items"]) == 1,
    )
    item = feed["items"][0]
    assert item["id"] == entry["id"] and item["removed"] is False
    assert item["data"]["uscc"] == first.uscc and item["data"]["ends_on"] == "2029-11-23"
    assert set(item["data"]) == set(
        (await credit_public(credit, "/public/dishonesty-list"))["items"][0]
    )
    cursor = feed["next_cursor"]

    await blacklist(credit, second)
    more = await eventually(
        lambda: credit_public(credit, "/public/dishonesty-list", since=cursor),
        until=lambda b: len(b["items"]) == 1,
    )
    assert more["items"][0]["data"]["uscc"] == second.uscc
    cursor = more["next_cursor"]

    # The ban ends: the listing comes back once more, marked removed.
    clock = credit.apps["credit"].state.clock
    clock.set(china(2029, 11, 23, 0))
    assert await expire_listings(credit.runtime("credit")) == 2
    ended = await eventually(
        lambda: credit_public(credit, "/public/dishonesty-list", since=cursor),
        until=lambda b: len(b["items"]) == 2,
    )
    assert {i["id"] for i in ended["items"]} >= {entry["id"]}
    assert all(i["removed"] for i in ended["items"])
    assert (await credit_public(credit, "/public/dishonesty-list"))["total"] == 0


async def test_evaluations_feed_follows_published_evaluations(credit: Platform) -> None:
    org = await seed_org(credit, "丙社会工作服务中心")
    ids = []
    for period in ("2026-Q3", "2026-Q4"):
        ev = Evaluation(
            id=str(uuid.uuid4()),
            contract_id=str(uuid.uuid4()),
            organisation_id=org.organisation_id,
            region_code=REGION,
            period=period,
            purchaser_score=90.0,
            purchaser_by="purchaser-nanguan",
            third_party_score=85.0,
            third_party_by="evaluator-1",
            satisfaction_score=92.0,
            responses=12,
            weights={"purchaser": 0.3, "recipients": 0.5, "third_party": 0.2, "rule": "x"},
            total=89.6,
            result="qualified",
            state="published",
            pack="jilin",
            created_at=NOW,
            published_at=NOW,
        )
        await add(credit, "credit", ev)
        await publish(
            credit, "credit", "evaluation", "recorded", evaluation_id=ev.id, region_code=REGION
        )
        ids.append(ev.id)
    feed = await eventually(
        lambda: credit_public(credit, "/public/evaluations", since=""),
        until=lambda b: len(b["items"]) == 2,
    )
    assert [i["id"] for i in feed["items"]] == ids
    data = feed["items"][0]["data"]
    assert data["organisation_name"] == "丙社会工作服务中心" and data["satisfaction_score"] == 92.0
    assert "purchaser_by" not in data and "third_party_by" not in data
    listed = await credit_public(credit, "/public/evaluations")
    assert {i["id"] for i in listed["items"]} == set(ids)
    assert (await credit_public(credit, "/public/evaluations", since="", region="3301"))[
        "items"
    ] == []
