"""NATS users and permissions (issue 8 item 2), against real nats-servers started with the
generated configuration: each service publishes only its own subjects, a ministry reads
every stream through its own durable consumers and may publish nothing.

The suite's session server runs without auth; every test here starts its own.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import stat
import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from libs.common import nats_auth
from libs.common.cli_events import resolve_connection
from libs.common.events.consumer import dead_letter_subject
from libs.common.events.envelope import new_event
from libs.common.nats_auth import (
    ADMIN_USER,
    EVENT_STREAMS,
    MINISTRY_STREAMS,
    MINISTRY_USER,
    ConsumerGrant,
    NatsAuthError,
    consumers_of,
    inbox_prefix,
    platform_users,
    render_authorization,
)
from libs.common.natsserver import NatsServer, free_port, nats_server_binary
from libs.common.stack import read_nats_credentials, start_stack

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "nats"
SERVICES = ("needs", "providers", "matching", "credit")


# --------------------------------------------------------------------------------------------
# A nats-server with the platform's users
# --------------------------------------------------------------------------------------------


@dataclass
class Client:
    """A connection that records the errors the server sends it (permission violations)."""

    nc: Any
    errors: list[str] = field(default_factory=list)

    @property
    def js(self) -> Any:
        return self.nc.jetstream(timeout=1.0)

    async def refused(self, what: str, *, kind: str = "publish", within: float = 3.0) -> str:
        """Wait for the server's permissions-violation error for `kind` ("publish" or
        "subscription") to `what`."""
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            for error in self.errors:
                # nats-py lowercases the server's message.
                text = error.lower()
                if f'permissions violation for {kind} to "{what.lower()}"' in text:
                    return error
            await asyncio.sleep(0.02)
        raise AssertionError(f"no permissions violation for {what!r}; errors: {self.errors}")


@dataclass
class AuthServer:
    """A nats-server with the generated users; `connect(user)` logs in as one of them."""

    server: NatsServer
    passwords: dict[str, str]
    clients: list[Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    async def connect(self, user: str, *, password: str | None = None, **options: Any) -> Client:
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        if user == MINISTRY_USER or user.startswith("ministry"):
            options.setdefault("inbox_prefix", inbox_prefix(user))
        nc = await nats.connect(
            self.url,
            user=user,
            password=password if password is not None else self.passwords[user],
            error_cb=on_error,
            allow_reconnect=False,
            **options,
        )
        client = Client(nc, errors)
        self.clients.append(client)
        return client

    async def close_clients(self) -> None:
        for client in self.clients:
            if not client.nc.is_closed:
                await client.nc.close()
        self.clients.clear()


def start_auth_server(
    tmp: Path,
    consumers: Mapping[str, list[ConsumerGrant]],
    *,
    passwords: Mapping[str, str] | None = None,
    port: int | None = None,
) -> AuthServer:
    """A fresh server whose users are generated exactly as `sa run` generates them."""
    names = [*consumers, MINISTRY_USER, ADMIN_USER]
    passwords = {name: nats_auth.generate_password() for name in names} | dict(passwords or {})
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "auth.conf"
    config.write_text(render_authorization(platform_users(passwords, consumers)))
    server = NatsServer(
        store_dir=tmp / "js", port=port, config_file=config, log_file=tmp / "nats.log"
    )
    server.start()
    return AuthServer(server, passwords)


async def stream_messages(admin: Client, stream: str) -> int:
    return int((await admin.js.stream_info(stream)).state.messages)


def event_for(service: str, n: int = 0) -> tuple[str, bytes, dict[str, str]]:
    event = new_event(service=service, entity="probe", verb="recorded", data={"n": n})
    return event.nats_subject, event.body(), event.headers()


# --------------------------------------------------------------------------------------------
# The services as they really are: their apps, their consumers, their own users
# --------------------------------------------------------------------------------------------


@dataclass
class PlatformAuth:
    auth: AuthServer
    apps: dict[str, Any]
    consumers: dict[str, list[ConsumerGrant]]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformAuth]:
    """The four services' apps, each configured with its own NATS user on one server."""
    # Imported here: test_events_export uses this module's helpers without the services.
    from tests.support.platform import FACTORIES

    tmp = tmp_path_factory.mktemp("nats-auth")
    port = free_port()
    passwords = {name: nats_auth.generate_password() for name in SERVICES}
    apps: dict[str, Any] = {}
    for name in SERVICES:
        factory, settings_cls = FACTORIES[name]
        settings = settings_cls(
            nats_url=f"nats://127.0.0.1:{port}",
            nats_user=name,
            nats_password=passwords[name],
            database_url=f"sqlite+aiosqlite:///{tmp / (name + '.db')}",  # never opened here
            environment="test",
        )
        apps[name] = factory(settings)
    consumers = {name: consumers_of(app.state.runtime) for name, app in apps.items()}
    auth = start_auth_server(tmp, consumers, passwords=passwords, port=port)
    try:
        yield PlatformAuth(auth, apps, consumers)
    finally:
        auth.server.stop()


@pytest.fixture
async def auth(platform: PlatformAuth) -> AsyncIterator[AuthServer]:
    """The platform's server, emptied of streams left by an earlier test."""
    admin = await platform.auth.connect(ADMIN_USER)
    for info in await admin.js.streams_info():
        await admin.js.delete_stream(info.config.name)
    try:
        yield platform.auth
    finally:
        await platform.auth.close_clients()


async def start_service_events(app: Any) -> Any:
    """What a service does when its events start (ServiceRuntime._start_events): connect as
    its own user, provision the streams, create its durable consumers and its watcher."""
    runtime = app.state.runtime
    await runtime.bus.connect(connect_timeout=2)
    await runtime.bus.ensure_streams()
    for worker in runtime.workers:
        await worker.start()
    if runtime.watcher is not None:
        await runtime.watcher.start()
    return runtime


# --------------------------------------------------------------------------------------------
# Services
# --------------------------------------------------------------------------------------------


async def test_each_service_starts_its_events_and_publishes_under_its_own_user(
    auth: AuthServer, platform: PlatformAuth
) -> None:
    admin = await auth.connect(ADMIN_USER)
    for name, app in platform.apps.items():
        assert platform.consumers[name], f"{name} has no consumer: discovery found nothing"
        runtime = await start_service_events(app)
        try:
            subject, body, headers = event_for(name)
            ack = await runtime.bus.js.publish(subject, body, headers=headers)
            assert ack.stream == name.upper()
            # Its consumers exist and answer a pull (empty or not) under its permissions.
            worker = runtime.workers[0]
            info = await worker._psub.consumer_info()
            assert info.name == worker.durable
            # A dead letter of one of its own consumers goes to the DLQ stream.
            dlq = await runtime.bus.js.publish(
                dead_letter_subject(worker.durable), b"{}", headers={"sa-dlq-reason": "probe"}
            )
            assert dlq.stream == "DLQ"
            # The max-deliveries watcher reads an original message by sequence.
            original = await admin.js.stream_info(worker.sub.stream)
            if original.state.last_seq:
                got = await runtime.bus.js.get_msg(worker.sub.stream, original.state.last_seq)
                assert got.seq == original.state.last_seq
        finally:
            await runtime.bus.close()
    for stream in EVENT_STREAMS:
        assert await stream_messages(admin, stream) == 1
    assert await stream_messages(admin, "DLQ") == len(SERVICES)


async def test_a_service_cannot_publish_another_services_subjects(
    auth: AuthServer, platform: PlatformAuth
) -> None:
    runtime = await start_service_events(platform.apps["credit"])
    await runtime.bus.close()
    needs = await auth.connect("needs")
    admin = await auth.connect(ADMIN_USER)

    await needs.nc.publish("sa.credit.organisation.blacklisted", b"{}")
    await needs.nc.flush()
    await needs.refused("sa.credit.organisation.blacklisted")
    with pytest.raises(nats.errors.TimeoutError):  # the server never stores it
        await needs.js.publish("sa.credit.organisation.reinstated", b"{}")
    await needs.refused("sa.credit.organisation.reinstated")
    assert await stream_messages(admin, "CREDIT") == 0

    # Nor write another service's dead letters, delete or purge a stream, or pull from (and
    # so steal the messages of) another service's consumer.
    other = next(g for g in platform.consumers["matching"] if g.stream == "NEEDS")
    forbidden = [
        dead_letter_subject(other.durable),
        "$JS.API.STREAM.DELETE.CREDIT",
        "$JS.API.STREAM.PURGE.CREDIT",
        "$JS.API.STREAM.UPDATE.CREDIT",  # nor rewrite its subjects or limits
        f"$JS.API.CONSUMER.MSG.NEXT.NEEDS.{other.durable}",
        f"$JS.API.CONSUMER.DURABLE.CREATE.NEEDS.{other.durable}",
        "$JS.API.CONSUMER.DELETE.MATCHING.needs-matches",
    ]
    for subject in forbidden:
        await needs.nc.publish(subject, b"{}")
        await needs.nc.flush()
        await needs.refused(subject)
    assert await stream_messages(admin, "CREDIT") == 0
    # And it cannot listen to events directly, outside its own consumers.
    await needs.nc.subscribe("sa.credit.>")
    await needs.nc.flush()
    await needs.refused("sa.credit.>", kind="subscription")


# --------------------------------------------------------------------------------------------
# Ministries
# --------------------------------------------------------------------------------------------


async def test_the_ministry_publish_is_refused_by_the_server(
    auth: AuthServer, platform: PlatformAuth
) -> None:
    runtime = await start_service_events(platform.apps["needs"])
    await runtime.bus.close()
    ministry = await auth.connect(MINISTRY_USER)
    admin = await auth.connect(ADMIN_USER)

    subject, body, headers = event_for("needs")
    assert subject != "sa.needs.need.opened"  # the probe; now the real event type:
    await ministry.nc.publish("sa.needs.need.opened", body, headers=headers)
    await ministry.nc.flush()
    await ministry.refused("sa.needs.need.opened")
    with pytest.raises(nats.errors.TimeoutError):
        await ministry.js.publish("sa.needs.need.opened", body, headers=headers)
    assert await stream_messages(admin, "NEEDS") == 0

    # Nothing else either: no stream changes, no consumer under another name, no listening
    # on the services' replies or on the events outside a consumer.
    for forbidden in (
        "sa.dlq.needs-matches",
        "$JS.API.STREAM.CREATE.NEEDS",
        "$JS.API.STREAM.DELETE.NEEDS",
        "$JS.API.STREAM.PURGE.NEEDS",
        "$JS.API.STREAM.MSG.DELETE.NEEDS",
        "$JS.API.CONSUMER.DURABLE.CREATE.MATCHING.needs-matches",
        "$JS.API.CONSUMER.MSG.NEXT.MATCHING.needs-matches",
        "$JS.API.CONSUMER.DURABLE.CREATE.NEEDS.spy",
    ):
        await ministry.nc.publish(forbidden, b"{}")
        await ministry.nc.flush()
        await ministry.refused(forbidden)
    for pattern in ("sa.>", "_INBOX.>"):
        await ministry.nc.subscribe(pattern)
        await ministry.nc.flush()
        await ministry.refused(pattern, kind="subscription")
    assert await stream_messages(admin, "NEEDS") == 0


async def test_the_ministry_reads_every_stream_through_its_own_durable_consumers(
    auth: AuthServer, platform: PlatformAuth
) -> None:
    for name in SERVICES:
        runtime = await start_service_events(platform.apps[name])
        try:
            for n in range(3):
                subject, body, headers = event_for(name, n)
                await runtime.bus.js.publish(subject, body, headers=headers)
            dlq_durable = runtime.workers[0].durable
            await runtime.bus.js.publish(dead_letter_subject(dlq_durable), b'{"n": 0}')
        finally:
            await runtime.bus.close()
    ministry = await auth.connect(MINISTRY_USER)
    js = ministry.js
    for stream in MINISTRY_STREAMS:
        await js.add_consumer(
            stream, ConsumerConfig(durable_name="ministry-export", ack_policy=AckPolicy.EXPLICIT)
        )
        psub = await js.pull_subscribe_bind(durable="ministry-export", stream=stream)
        msgs = await psub.fetch(10, timeout=2)
        expected = len(SERVICES) if stream == "DLQ" else 3
        assert len(msgs) == expected, stream
        assert [m.metadata.sequence.stream for m in msgs] == list(range(1, expected + 1))
        for msg in msgs:
            await msg.ack()
        await ministry.nc.flush()
        # Acks are applied asynchronously by the server.
        for _ in range(100):
            info = await js.consumer_info(stream, "ministry-export")
            if info.ack_floor.stream_seq == expected:
                break
            await asyncio.sleep(0.05)
        assert info.ack_floor.stream_seq == expected, info
        assert info.num_pending == 0
        # Its own consumer it may reset and delete (to start over).
        await js.reset_consumer(stream, "ministry-export")
        assert await js.delete_consumer(stream, "ministry-export")
    assert not [e for e in ministry.errors if "permission" in e.lower()], ministry.errors


async def test_a_wrong_password_or_no_user_is_refused(auth: AuthServer) -> None:
    with pytest.raises(Exception):  # noqa: B017 - nats-py raises the server's -ERR as is
        await auth.connect(MINISTRY_USER, password="guess")
    with pytest.raises(Exception):  # noqa: B017
        await nats.connect(auth.url, allow_reconnect=False, connect_timeout=2)


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------


def test_consumer_names_must_belong_to_their_user() -> None:
    with pytest.raises(NatsAuthError, match="must be named needs-"):
        nats_auth.service_permissions("needs", [ConsumerGrant("MATCHING", "matching-needs")])
    with pytest.raises(NatsAuthError, match="must be ministry-"):
        nats_auth.ministry_permissions("ministry", ["needs-matches"])
    with pytest.raises(NatsAuthError, match="used twice"):
        platform_users({"needs": "x"}, {"needs": []}, ministries={"needs": []}, admin=False)
    # A service reads only its own consumers' streams by sequence, never the others'.
    perms = nats_auth.service_permissions("needs", [ConsumerGrant("MATCHING", "needs-matches")])
    assert "$JS.API.STREAM.MSG.GET.MATCHING" in perms.publish
    assert not any(s.startswith("$JS.API.STREAM.MSG.GET.CREDIT") for s in perms.publish)
    assert not any(".DELETE." in s or ".PURGE." in s for s in perms.publish)


def test_discovery_finds_what_the_service_runtime_creates(platform: PlatformAuth) -> None:
    assert nats_auth.discover_consumers("needs") == platform.consumers["needs"]
    ghost = nats_auth.discover_all(["ghost"])["ghost"]
    assert isinstance(ghost, str) and ghost.startswith("ModuleNotFoundError")


def test_the_production_permissions_in_the_repo_are_the_generated_ones() -> None:
    on_disk = (DEPLOY / "auth.conf").read_text()
    assert on_disk == nats_auth.production_authorization(), (
        "deploy/nats/auth.conf is out of date: run `sa events nats-config > deploy/nats/auth.conf`"
    )
    assert "password: $SA_NATS_NEEDS_PASSWORD" in on_disk  # secrets only by reference


# --------------------------------------------------------------------------------------------
# The embedded stack (`make run`)
# --------------------------------------------------------------------------------------------


async def test_the_embedded_stack_runs_a_service_with_its_own_nats_user(tmp_path: Path) -> None:
    var = tmp_path / "var"
    stack = await asyncio.to_thread(start_stack, var, services=("needs",), ready_timeout=60)
    try:
        async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
            ready = await http.get(f"{stack.urls['needs']}/ready")
        assert ready.status_code == 200 and ready.json()["checks"]["nats"] == "ok", ready.text
        assert stack.auth is not None
        for path in (stack.auth.config_file, stack.auth.credentials_file):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        described = json.loads((var / "stack.json").read_text())
        assert described["nats_credentials"] == str(stack.auth.credentials_file)
        creds = read_nats_credentials(var)["users"]
        # `sa events` finds the server and the ministry's password by itself.
        found = resolve_connection(None, None, None, var)
        assert (found.url, found.user) == (stack.nats_url, MINISTRY_USER)
        assert found.password == creds[MINISTRY_USER]["password"]
        server = AuthServer(stack.nats, {name: c["password"] for name, c in creds.items()})
        try:
            ministry = await server.connect(MINISTRY_USER)
            await ministry.nc.publish("sa.needs.need.opened", b"{}")
            await ministry.nc.flush()
            await ministry.refused("sa.needs.need.opened")
            # The service provisioned the streams and its consumer under its own user.
            admin = await server.connect(ADMIN_USER)
            info = await admin.js.consumer_info("MATCHING", "needs-matches")
            assert info.name == "needs-matches"
            with pytest.raises(Exception):  # noqa: B017 - anonymous: refused
                await nats.connect(stack.nats_url, allow_reconnect=False, connect_timeout=2)
        finally:
            await server.close_clients()
    finally:
        await asyncio.to_thread(stack.stop)
    assert not stack.auth.config_file.exists() and not stack.auth.credentials_file.exists()


# --------------------------------------------------------------------------------------------
# Production: deploy/nats/nats-server.conf as a real 3-node cluster
# --------------------------------------------------------------------------------------------


def _write_pki(tmp: Path) -> dict[str, Path]:
    """A CA and one node certificate for 127.0.0.1/localhost (server and client auth)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sa test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nats")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": tmp / "ca.pem", "cert": tmp / "node.pem", "key": tmp / "node-key.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def test_the_production_config_is_refused_while_a_secret_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SA_NATS_", "NATS_"))}
    result = subprocess.run(
        [nats_server_binary(), "-c", str(DEPLOY / "nats-server.conf"), "-t"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "can not be found" in result.stderr + result.stdout


async def test_the_production_template_runs_a_three_node_cluster_with_r3_and_permissions(
    tmp_path: Path,
) -> None:
    import ssl

    pki = _write_pki(tmp_path)
    users = [*SERVICES, MINISTRY_USER, ADMIN_USER]
    passwords = {name: nats_auth.generate_password() for name in users}
    # Nine distinct ports chosen up front: a port picked later could be one already picked
    # for a node that has not bound it yet (seen once in CI: a node exited on start).
    ports: list[int] = []
    while len(ports) < 9:
        if (p := free_port()) not in ports:
            ports.append(p)
    client_ports, cluster_ports, monitor_ports = ports[0:3], ports[3:6], ports[6:9]
    routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in cluster_ports)
    base_env = {
        "NATS_ROUTES": f"[{routes}]",
        "NATS_TLS_CERT": str(pki["cert"]),
        "NATS_TLS_KEY": str(pki["key"]),
        "NATS_TLS_CA": str(pki["ca"]),
        **{nats_auth.env_password(name)[1:]: passwords[name] for name in users},
    }
    nodes = []
    try:
        for i in range(3):
            env = {
                **base_env,
                "NATS_SERVER_NAME": f"nats-{i}",
                "NATS_CLIENT_PORT": str(client_ports[i]),
                "NATS_CLUSTER_PORT": str(cluster_ports[i]),
                "NATS_MONITOR_PORT": str(monitor_ports[i]),
                "NATS_STORE_DIR": str(tmp_path / f"node{i}"),
            }
            node = NatsServer(
                store_dir=tmp_path / f"node{i}",
                port=client_ports[i],
                config_file=DEPLOY / "nats-server.conf",
                log_file=tmp_path / f"node{i}.log",
                env=env,
                jetstream_in_config=True,
            )
            nodes.append(node.start())
        ctx = ssl.create_default_context(cafile=str(pki["ca"]))
        servers = [n.url for n in nodes]

        async def connect(user: str) -> Client:
            errors: list[str] = []

            async def on_error(exc: Exception) -> None:
                errors.append(str(exc))

            extra = {"inbox_prefix": inbox_prefix(user)} if user == MINISTRY_USER else {}
            nc = await nats.connect(
                servers,
                user=user,
                password=passwords[user],
                tls=ctx,
                error_cb=on_error,
                connect_timeout=5,
                **extra,
            )
            return Client(nc, errors)

        needs = await connect("needs")
        config = StreamConfig(name="NEEDS", subjects=["sa.needs.>"], num_replicas=3)
        # The JetStream cluster needs a few seconds to elect its meta leader.
        for attempt in range(60):
            try:
                await needs.nc.jetstream(timeout=2).add_stream(config)
                break
            except Exception:
                if attempt == 59:
                    raise
                await asyncio.sleep(0.5)
        js = needs.nc.jetstream(timeout=5)
        subject, body, headers = event_for("needs")
        ack = await js.publish(subject, body, headers=headers)
        assert ack.stream == "NEEDS" and ack.seq == 1
        info = await js.stream_info("NEEDS")
        assert info.config.num_replicas == 3
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2

        ministry = await connect(MINISTRY_USER)
        await ministry.nc.publish("sa.needs.need.opened", b"{}")
        await ministry.nc.flush()
        await ministry.refused("sa.needs.need.opened")
        mjs = ministry.nc.jetstream(timeout=5)
        await mjs.add_consumer(
            "NEEDS", ConsumerConfig(durable_name="ministry-export", ack_policy=AckPolicy.EXPLICIT)
        )
        psub = await mjs.pull_subscribe_bind(durable="ministry-export", stream="NEEDS")
        msgs = await psub.fetch(1, timeout=5)
        assert msgs[0].subject == subject
        await msgs[0].ack()
        for client in (needs, ministry):
            await client.nc.close()

        # Every node runs with sync_interval: always (reported by the monitoring endpoint).
        monitor = f"http://127.0.0.1:{nodes[0].env['NATS_MONITOR_PORT']}/varz"
        async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
            varz = (await http.get(monitor)).json()
        assert varz["jetstream"]["config"]["sync_always"] is True, varz["jetstream"]["config"]
    finally:
        for node in nodes:
            node.stop()


@pytest.mark.parametrize("number_like", [False, True])
def test_a_password_from_the_environment_must_start_with_a_letter(
    tmp_path: Path, number_like: bool
) -> None:
    """nats-server reads `$SA_NATS_<USER>_PASSWORD` as a config token: one that starts
    like a number ("-D…", as `token_urlsafe` can make) does not parse and the file does not
    load (a CI run met one). Generated passwords start with a letter."""
    password = nats_auth.generate_password()
    assert password[0].isalpha()
    if number_like:
        password = "-D" + password
    conf = tmp_path / "nats.conf"
    conf.write_text("authorization { users = [ { user: needs, password: $SA_TEST_PASSWORD } ] }\n")
    server = NatsServer(
        store_dir=tmp_path / "store",
        port=free_port(),
        config_file=conf,
        log_file=tmp_path / "nats.log",
        env={"SA_TEST_PASSWORD": password},
    )
    if number_like:
        with pytest.raises(RuntimeError, match="exited"):
            server.start()
        assert "could not be parsed" in (tmp_path / "nats.log").read_text()
        return
    server.start()
    try:

        async def connect() -> None:
            nc = await nats.connect(server.url, user="needs", password=password)
            await nc.close()

        asyncio.run(connect())
    finally:
        server.stop()


async def test_a_service_updates_only_its_own_stream_when_a_config_differs(
    auth: AuthServer,
) -> None:
    """After a release changes the stream config, each service brings its own stream (and
    the shared ones) up to date; another service's it leaves to that service."""
    from nats.js.api import StreamConfig as Config

    from libs.common.events.bus import EventBus, platform_streams

    admin = await auth.connect(ADMIN_USER)
    for name in ("NEEDS", "CREDIT"):  # as an older release left them
        await admin.js.add_stream(Config(name=name, subjects=[f"sa.{name.lower()}.>"]))
    buses = {
        service: EventBus(
            auth.server.url,
            name=service,
            user=service,
            password=auth.passwords[service],
            duplicate_window_seconds=600.0,
        )
        for service in ("needs", "credit")
    }
    try:
        await buses["needs"].connect()
        await buses["needs"].ensure_streams(platform_streams())  # no error, no update of CREDIT
        windows = {
            name: (await admin.js.stream_info(name)).config.duplicate_window
            for name in ("NEEDS", "CREDIT")
        }
        assert windows["NEEDS"] == 600.0 and windows["CREDIT"] != 600.0
        await buses["credit"].connect()
        await buses["credit"].ensure_streams(platform_streams())
        assert (await admin.js.stream_info("CREDIT")).config.duplicate_window == 600.0
    finally:
        for bus in buses.values():
            await bus.close()
