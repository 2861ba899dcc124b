"""End to end: the embedded stack as `make run` starts it (a nats-server and the four
services as separate processes on SQLite), driven over HTTP by the demo."""

from __future__ import annotations

from pathlib import Path

import httpx

from libs.common.demo import run_demo
from libs.common.stack import start_stack


def test_make_run_then_demo_matches_need_to_admitted_org_not_blacklisted(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "var", nats_port=None, ports=None, base_port=None)
    try:
        for url in stack.urls.values():
            ready = httpx.get(f"{url}/ready", timeout=5)
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"database": "ok", "nats": "ok"}
        result = run_demo(urls=stack.urls, timeout=30)
        assert result.ok, result.error
        assert result.matched_org_id == result.admitted_org_id
        assert result.blacklisted_org_id != result.admitted_org_id
        # The blacklisted organisation holds no match at all.
        from tests.support.platform import auth

        matches = httpx.get(
            f"{stack.urls['matching']}/matches",
            params={"organisation_id": result.blacklisted_org_id},
            headers=auth("operator"),
            timeout=5,
        ).json()
        assert matches["total"] == 0
        # Each service keeps its own SQLite database under var/.
        assert sorted(p.name for p in (tmp_path / "var").glob("*.db")) == [
            "credit.db",
            "matching.db",
            "needs.db",
            "providers.db",
        ]
    finally:
        stack.stop()
    assert not (tmp_path / "var" / "stack.json").exists()
