"""`sa demo` / `make demo`: drive the walking skeleton over HTTP against a running stack.

Only HTTP (httpx) and the public API: no service is imported, so the demo exercises exactly
what a client sees, events between services included. Every run creates new organisations
and a new recipient (random credit codes and ID numbers), so it can run many times against
one stack.

The path: two organisations register → credit admits both (citing the admission clauses) →
the operator blacklists the second → providers and matching learn it through events → a
purchaser registers a recipient and opens a need → the allocation engine matches the need to
the admitted organisation → needs shows the need matched; the blacklisted one got nothing.
"""

from __future__ import annotations

import datetime
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.markup import escape
from stdnum.cn import ric, uscc

from libs.common.auth import DEV_JWT_SECRET, Role, mint_token
from libs.common.stack import SERVICES, read_stack_file, urls_from_stack_file
from libs.common.validators import is_valid_resident_id, is_valid_uscc

T = TypeVar("T")

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""Characters allowed in a unified social credit code (GB 32100: no I, O, S, V, Z)."""

DEMO_USCC_PREFIX = "52220102MJ"
"""5 民政 (civil affairs registers it), 2 民办非企业单位 (social-work organisation),
220102 南关区 (长春), then the start of the organisation code."""

DEMO_COUNTY = "220102"
"""长春市南关区: the purchaser's county and the recipient's home."""

DEFAULT_TIMEOUT_SECONDS = 20.0
POLL_INTERVAL_SECONDS = 0.3

ALL_QUALIFICATIONS = {
    "procurement_law_compliance": True,
    "independent_civil_liability": True,
    "facilities_staff_expertise": True,
    "governance_finance_assets": True,
}


# --------------------------------------------------------------------------------------------
# Identifiers
# --------------------------------------------------------------------------------------------


def make_demo_uscc(rng: random.Random | None = None, *, prefix: str = DEMO_USCC_PREFIX) -> str:
    """A valid, random unified social credit code: `prefix`, random characters, check character.

    `prefix` holds the first 10 characters (authority, category, region, start of the
    organisation code); 7 random characters complete the body of 17.
    """
    rng = rng or random.SystemRandom()
    if len(prefix) >= 17:
        raise ValueError("prefix must leave room for random characters")
    body = prefix + "".join(rng.choice(USCC_ALPHABET) for _ in range(17 - len(prefix)))
    code = body + uscc.calc_check_digit(body)
    if not is_valid_uscc(code):  # a bad prefix, not bad luck: tell the caller
        raise ValueError(f"prefix {prefix!r} does not give valid credit codes")
    return code


def make_demo_resident_id(
    rng: random.Random | None = None,
    *,
    county: str = DEMO_COUNTY,
    born_from: datetime.date = datetime.date(1940, 1, 1),
    born_to: datetime.date = datetime.date(1960, 12, 31),
) -> str:
    """A valid, random 18-digit resident ID from `county`, born between the two dates."""
    rng = rng or random.SystemRandom()
    born = born_from + datetime.timedelta(days=rng.randint(0, (born_to - born_from).days))
    body = f"{county}{born:%Y%m%d}{rng.randint(0, 999):03d}"
    number = body + ric.calc_check_digit(body + "0")  # stdnum ignores the last character
    if not is_valid_resident_id(number):
        raise ValueError(f"county {county!r} does not give valid resident IDs")
    return number


# --------------------------------------------------------------------------------------------
# Result and errors
# --------------------------------------------------------------------------------------------


@dataclass
class DemoResult:
    """What the demo created and whether the skeleton path held."""

    ok: bool = False
    admitted_org_id: str | None = None
    blacklisted_org_id: str | None = None
    recipient_ref: str | None = None
    need_id: str | None = None
    matched_org_id: str | None = None
    error: str | None = None


class DemoError(Exception):
    """A step failed; the message says which and why."""


def load_stack_urls(var_dir: Path = Path("var")) -> dict[str, str]:
    """Service URLs of the stack running on `var_dir` (from `var/stack.json`).

    DemoError when there is no running stack or a service is missing from it.
    """
    from libs.common.stack import StackError

    try:
        urls = urls_from_stack_file(read_stack_file(var_dir))
    except StackError as exc:
        raise DemoError(str(exc)) from None
    missing = [name for name in SERVICES if name not in urls]
    if missing:
        raise DemoError(f"the running stack has no {', '.join(missing)} service")
    return urls


def describe_problem(response: httpx.Response) -> str:
    """A readable one-or-more-line account of an error response (RFC 9457 problem+json)."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return f"HTTP {response.status_code}" + (f": {text[:500]}" if text else "")
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}: {json.dumps(body, ensure_ascii=False)[:500]}"
    title = body.get("title") or response.reason_phrase
    lines = [f"HTTP {response.status_code} {title}"]
    if body.get("detail"):
        lines[0] += f": {body['detail']}"
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            where = error.get("field") or error.get("loc") or "?"
            why = error.get("reason") or error.get("msg") or error.get("message") or error
            lines.append(f"  - {where}: {why}")
        else:
            lines.append(f"  - {error}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The demo
# --------------------------------------------------------------------------------------------


class _Demo:
    """State shared by the steps: the HTTP client, the tokens, the console."""

    def __init__(
        self,
        *,
        urls: Mapping[str, str],
        client: httpx.Client,
        console: Console,
        secret: str,
        timeout: float,
        poll_interval: float,
        rng: random.Random,
    ) -> None:
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}
        self.client = client
        self.console = console
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.rng = rng
        self.secret = secret
        self.result = DemoResult()
        self.operator = ""
        self.purchaser = ""
        self.step_no = 0

    # -- output ---------------------------------------------------------------------------

    def step(self, title: str) -> None:
        self.step_no += 1
        self.console.print(f"\n[bold cyan]{self.step_no}. {escape(title)}[/]")

    def show(self, response: httpx.Response, summary: str) -> None:
        method = response.request.method
        path = response.request.url.raw_path.decode()
        self.console.print(
            f"   [green]{response.status_code}[/] {method} {escape(path)}  {escape(summary)}"
        )

    def note(self, text: str) -> None:
        self.console.print(f"   {escape(text)}")

    # -- HTTP -----------------------------------------------------------------------------

    def call(
        self,
        method: str,
        service: str,
        path: str,
        *,
        token: str,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            base = self.urls[service]
        except KeyError:
            raise DemoError(f"no URL for the {service} service") from None
        try:
            return self.client.request(
                method,
                base + path,
                json=json_body,
                params=params,
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError as exc:
            raise DemoError(
                f"{method} {base}{path} failed: {exc!s} (is the stack running? `make run`)"
            ) from None

    def expect(self, response: httpx.Response, *statuses: int) -> dict[str, Any]:
        """The JSON body if the status is one of `statuses`; DemoError with the problem else."""
        if response.status_code not in statuses:
            request = response.request
            raise DemoError(
                f"{request.method} {request.url} answered unexpectedly:\n"
                + describe_problem(response)
            )
        try:
            body = response.json()
        except ValueError:
            raise DemoError(f"{response.request.url} did not answer JSON") from None
        if not isinstance(body, dict):
            raise DemoError(f"{response.request.url} answered {type(body).__name__}, not object")
        return body

    def poll(self, what: str, attempt: Callable[[], T | None]) -> T:
        """Call `attempt` until it returns something other than None (DemoError on timeout).

        Events travel asynchronously between services, so the demo waits for them rather
        than expecting an effect immediately.
        """
        deadline = time.monotonic() + self.timeout
        with self.console.status(f"   waiting until {what}…"):
            while True:
                value = attempt()
                if value is not None:
                    return value
                if time.monotonic() >= deadline:
                    raise DemoError(f"timed out after {self.timeout:.0f} s waiting until {what}")
                time.sleep(self.poll_interval)

    # -- steps ----------------------------------------------------------------------------

    def mint_tokens(self) -> None:
        self.step("Mint development tokens")
        self.operator = mint_token(
            secret=self.secret, subject="demo-operator", role=Role.operator, region=""
        )
        self.purchaser = mint_token(
            secret=self.secret,
            subject=f"demo-purchaser-{DEMO_COUNTY}",
            role=Role.purchaser,
            region=DEMO_COUNTY,
        )
        self.note("operator (whole country), purchaser (county 220102 长春市南关区)")

    def register_organisations(self) -> tuple[str, str]:
        self.step("providers: register two social-work organisations serving 长春")
        ids = []
        for label in ("A", "B"):
            code = make_demo_uscc(self.rng)
            body = {
                "uscc": code,
                "name": f"长春市南关区{label}社会工作服务中心 (demo {code[-6:]})",
                "kind": "social_organisation",
                "region_code": DEMO_COUNTY,
                "service_regions": ["2201"],
                "services": [{"code": "care", "monthly_capacity": 10}],
                "qualifications": dict(ALL_QUALIFICATIONS),
            }
            response = self.call(
                "POST", "providers", "/organisations", token=self.operator, json_body=body
            )
            org = self.expect(response, 201)
            org_id = _field(org, "id", response)
            self.show(response, f"id={org_id} uscc={code} status={org.get('status')}")
            ids.append(str(org_id))
        return ids[0], ids[1]

    def await_admission(self, org_id: str) -> None:
        def attempt() -> dict[str, Any] | None:
            response = self.call("GET", "credit", f"/admissions/{org_id}", token=self.operator)
            if response.status_code == 404:
                return None  # the registration event has not reached credit yet
            admission = self.expect(response, 200)
            outcome = admission.get("outcome")
            if outcome in (None, "pending"):
                return None
            if outcome != "admitted":
                raise DemoError(
                    f"credit decided {outcome!r} for {org_id}, expected 'admitted':\n"
                    + _format_reasons(admission)
                )
            self.show(response, f"organisation {org_id}: outcome=admitted")
            return admission

        admission = self.poll(f"credit has admitted {org_id}", attempt)
        for line in _format_reasons(admission).splitlines():
            self.note(line)

    def blacklist(self, org_id: str) -> None:
        self.step("credit: blacklist the second organisation (serious breach)")
        response = self.call(
            "POST",
            "credit",
            "/blacklist",
            token=self.operator,
            json_body={
                "organisation_id": org_id,
                "severity": "serious",
                "reason": "falsified service records (demo)",
            },
        )
        entry = self.expect(response, 201)
        self.show(
            response,
            f"organisation {org_id} banned until {entry.get('ban_until')}",
        )
        if entry.get("legal_basis"):
            self.note(f"legal basis: {_as_text(entry['legal_basis'])}")

    def await_statuses(self, admitted: str, blacklisted: str) -> None:
        self.step("providers and matching learn the decisions through events")
        for org_id, expected in ((admitted, "admitted"), (blacklisted, "blacklisted")):

            def provider_status(org_id: str = org_id, expected: str = expected) -> bool | None:
                response = self.call(
                    "GET", "providers", f"/organisations/{org_id}", token=self.operator
                )
                org = self.expect(response, 200)
                if org.get("status") != expected:
                    return None
                self.show(response, f"status={expected}")
                return True

            self.poll(f"providers shows {org_id} {expected}", provider_status)

        for org_id, eligible in ((admitted, True), (blacklisted, False)):

            def eligibility(org_id: str = org_id, eligible: bool = eligible) -> bool | None:
                response = self.call(
                    "GET", "matching", f"/organisations/{org_id}/eligibility", token=self.operator
                )
                if response.status_code == 404:
                    return None  # matching has not heard of it yet
                body = self.expect(response, 200)
                if body.get("eligible") is not eligible:
                    return None
                self.show(response, f"status={body.get('status')} eligible={eligible}")
                return True

            self.poll(f"matching shows {org_id} eligible={eligible}", eligibility)

    def open_need(self) -> str:
        self.step("needs: a purchaser registers a recipient (特困) and opens a care need")
        id_number = make_demo_resident_id(self.rng)
        response = self.call(
            "POST",
            "needs",
            "/recipients",
            token=self.purchaser,
            json_body={
                "id_number": id_number,
                "name": "张三",
                "region_code": f"{DEMO_COUNTY}001001",
                "categories": ["tekun"],
            },
        )
        recipient = self.expect(response, 201)
        ref = str(_field(recipient, "ref", response))
        self.result.recipient_ref = ref
        self.show(response, f"ref={ref} id_number={recipient.get('id_number_masked')}")
        response = self.call(
            "POST",
            "needs",
            "/needs",
            token=self.purchaser,
            json_body={"recipient_ref": ref, "service_code": "care", "urgency": 3},
        )
        need = self.expect(response, 201)
        need_id = str(_field(need, "id", response))
        self.show(response, f"need id={need_id} status={need.get('status')}")
        return need_id

    def allocate(self, need_id: str) -> str:
        self.step("matching: run the allocation engine")
        last_reason: list[str] = []

        def attempt() -> str | None:
            response = self.call("POST", "matching", "/allocations/run", token=self.operator)
            run = self.expect(response, 200)
            for match in run.get("matches") or []:
                if str(match.get("need_id")) == need_id:
                    self.show(response, f"matched={run.get('matched')}")
                    return str(match.get("organisation_id"))
            for miss in run.get("unmatched") or []:
                if str(miss.get("need_id")) == need_id:
                    last_reason[:] = [str(miss.get("reason"))]
            # An earlier run (another demo, a scheduler) may have matched it already.
            response = self.call(
                "GET", "matching", "/matches", token=self.operator, params={"need_id": need_id}
            )
            items = self.expect(response, 200).get("items") or []
            for match in items:
                if str(match.get("need_id")) == need_id:
                    self.show(response, "the need was already matched")
                    return str(match.get("organisation_id"))
            return None

        try:
            org_id = self.poll(f"matching has matched need {need_id}", attempt)
        except DemoError as exc:
            if last_reason:
                raise DemoError(f"{exc}; last reason: {last_reason[0]}") from None
            raise
        self.note(f"need {need_id} → organisation {org_id}")
        return org_id

    def await_need_matched(self, need_id: str) -> str:
        self.step("needs: the need shows as matched")

        def attempt() -> str | None:
            response = self.call("GET", "needs", f"/needs/{need_id}", token=self.purchaser)
            need = self.expect(response, 200)
            if need.get("status") != "matched":
                return None
            org_id = str(need.get("matched_organisation_id"))
            self.show(response, f"status=matched matched_organisation_id={org_id}")
            return org_id

        return self.poll(f"needs shows need {need_id} matched", attempt)

    def blacklisted_matches(self, org_id: str) -> list[Any]:
        response = self.call(
            "GET", "matching", "/matches", token=self.operator, params={"organisation_id": org_id}
        )
        items = self.expect(response, 200).get("items") or []
        self.show(response, f"matches of the blacklisted organisation: {len(items)}")
        return list(items)

    # -- the whole path ---------------------------------------------------------------------

    def run(self) -> DemoResult:
        self.mint_tokens()
        first, second = self.register_organisations()
        self.result.admitted_org_id, self.result.blacklisted_org_id = first, second
        self.step("credit: admission review of both organisations")
        for org_id in (first, second):
            self.await_admission(org_id)
        self.blacklist(second)
        self.await_statuses(first, second)
        need_id = self.open_need()
        self.result.need_id = need_id
        matched_by_engine = self.allocate(need_id)
        if matched_by_engine != first:
            raise DemoError(
                f"need {need_id} was matched to {matched_by_engine}, expected the admitted "
                f"organisation {first}"
            )
        matched = self.await_need_matched(need_id)
        self.result.matched_org_id = matched
        if matched != first:
            raise DemoError(f"needs says {need_id} is matched to {matched}, expected {first}")
        self.step("verdict")
        leaked = self.blacklisted_matches(second)
        if leaked:
            raise DemoError(f"the blacklisted organisation {second} has {len(leaked)} match(es)")
        self.console.print(
            f"   [bold green]✓ need {need_id} matched to the admitted organisation {first}; "
            f"the blacklisted organisation {second} got nothing[/]"
        )
        self.result.ok = True
        return self.result


def _field(body: Mapping[str, Any], name: str, response: httpx.Response) -> Any:
    if body.get(name) in (None, ""):
        raise DemoError(f"{response.request.url} answered without {name!r}: {body}")
    return body[name]


def _as_text(value: Any) -> str:
    """A cited rule or legal basis as text: several clauses are joined with "; "."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "; ".join(value)
    return json.dumps(value, ensure_ascii=False)


def _format_reasons(admission: Mapping[str, Any]) -> str:
    lines = []
    for reason in admission.get("reasons") or []:
        if not isinstance(reason, dict):
            lines.append(f"- {reason}")
            continue
        mark = "✓" if reason.get("met") else "✗"
        lines.append(f"{mark} {reason.get('condition')} — {_as_text(reason.get('rule'))}")
    return "\n".join(lines) or "(no reasons given)"


def run_demo(
    *,
    urls: Mapping[str, str] | None = None,
    var_dir: Path = Path("var"),
    secret: str = DEV_JWT_SECRET,
    console: Console | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    poll_interval: float = POLL_INTERVAL_SECONDS,
    transport: httpx.BaseTransport | None = None,
    seed: int | None = None,
) -> DemoResult:
    """Drive the skeleton path over HTTP; never raises for a failed step (see `.ok`/`.error`).

    `urls` maps service names to base URLs; by default they come from `var_dir/stack.json`
    written by `sa run`. `timeout` bounds each wait for an asynchronous effect. `transport`
    and `seed` exist for tests (a fake API, reproducible identifiers).
    """
    console = console or Console()
    result = DemoResult()
    try:
        resolved = dict(urls) if urls is not None else load_stack_urls(var_dir)
    except DemoError as exc:
        console.print(f"[bold red]demo failed:[/] {escape(str(exc))}")
        result.error = str(exc)
        return result
    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    console.print(
        "[bold]Walking skeleton[/]: " + ", ".join(f"{name} {url}" for name, url in resolved.items())
    )
    # trust_env=False: the stack is local, a developer's HTTP(S)_PROXY must not capture it.
    with httpx.Client(
        timeout=10.0,
        trust_env=False,
        transport=transport,
        headers={"Accept": "application/json"},
    ) as client:
        demo = _Demo(
            urls=resolved,
            client=client,
            console=console,
            secret=secret,
            timeout=timeout,
            poll_interval=poll_interval,
            rng=rng,
        )
        try:
            return demo.run()
        except DemoError as exc:
            demo.result.error = str(exc)
            console.print(f"\n[bold red]demo failed:[/] {escape(str(exc))}")
            return demo.result
