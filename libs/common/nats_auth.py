"""Who may publish and read what on NATS: the server's authorization config, generated.

Three kinds of user (DESIGN.md §3, issue 8 item 2):

- **one user per service** publishes only its own subjects `sa.<service>.>` and the dead
  letters of its own consumers `sa.dlq.<its durable>`, and calls only the JetStream API it
  needs: info/create/update of the platform streams (every service provisions them,
  idempotently, so start order does not matter), create/info/next/ack of its own durable
  consumers, and reading a message by sequence from the streams it consumes (the
  max-deliveries watcher fetches the original of a message that ran out of deliveries).
  It may not delete or purge anything, and it can neither read nor steal messages from
  another service's consumer.
- **ministry users** (部委: read-only subscribers to every event) publish nothing on `sa.>`.
  They may only create, inspect, reset and delete their own named consumers (names start
  with `<user>-`, e.g. `ministry-export`), pull from them and ack. Their replies come on
  their own inbox prefix `_INBOX_<user>`, so they cannot listen in on the services' replies.
- **an operations user** with no restriction, for people running the cluster (not used by
  any service or ministry).

NATS wildcards match whole tokens only, so a consumer-name prefix cannot be expressed as a
wildcard: every durable is listed by name. The services' durables are discovered from the
services themselves (`discover_consumers`, which builds each app and reads its
subscriptions), so a new consumer is permitted as soon as it is written; a durable must
start with `<service>-` so it can never be mistaken for another service's or a ministry's.

`render_authorization` writes the config: an `authorization {}` block (global account, the
embedded stack: storage made before auth existed stays readable) or an `accounts {}` block
with JetStream enabled (production, deploy/nats/auth.conf). A password may be a literal, a
bcrypt hash (`$2a$…`, from `nats server passwd`) or a reference to an environment variable
(`$SA_NATS_NEEDS_PASSWORD`), which nats-server resolves when it loads the file.
"""

from __future__ import annotations

import importlib
import json
import re
import secrets
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from libs.common.events.bus import (
    ADVISORY_STREAM,
    DLQ_PREFIX,
    DLQ_STREAM,
    SERVICE_STREAMS,
    may_update_stream,
    platform_streams,
)

if TYPE_CHECKING:
    from libs.common.service import ServiceRuntime

SERVICES: tuple[str, ...] = ("needs", "providers", "matching", "credit")
"""The services that get a NATS user (the same list as `libs.common.stack.SERVICES`)."""

PLATFORM_STREAMS: tuple[str, ...] = tuple(spec.name for spec in platform_streams())
"""Every stream the services provision: NEEDS, PROVIDERS, MATCHING, CREDIT, DLQ, ADVISORIES."""

EVENT_STREAMS: tuple[str, ...] = tuple(SERVICE_STREAMS)
"""The streams of the services' events (what `sa events export --stream all` reads)."""

MINISTRY_STREAMS: tuple[str, ...] = (*EVENT_STREAMS, DLQ_STREAM)
"""What a ministry may read: every event stream, and the dead letters (the same events)."""

MINISTRY_USER = "ministry"
DEFAULT_MINISTRY_CONSUMERS: tuple[str, ...] = ("ministry-export", "ministry-tail")
"""Consumer names the default ministry user may use (`sa events export` / `sa events tail`)."""

ADMIN_USER = "admin"
SERVICE_INBOX = "_INBOX"
"""Reply prefix of the services (nats-py's default)."""

_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_JS = "$JS.API"


class NatsAuthError(ValueError):
    """A user, consumer or stream name the generated configuration cannot hold safely."""


@dataclass(frozen=True)
class ConsumerGrant:
    """A durable consumer `durable` on `stream` that a user may create and pull from."""

    stream: str
    durable: str


@dataclass(frozen=True)
class Permissions:
    """Subjects a user may publish to and subscribe to (everything else is refused)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


@dataclass(frozen=True)
class NatsUser:
    """One user of the server. `permissions` None: unrestricted (operations only)."""

    user: str
    password: str
    permissions: Permissions | None


def _check_name(kind: str, name: str) -> None:
    if not _NAME_RE.match(name):
        raise NatsAuthError(f"{kind} {name!r} must be lowercase letters, digits, '-' or '_'")


def inbox_prefix(user: str) -> str:
    """Reply-subject prefix of a ministry user: only they may subscribe below it."""
    return f"_INBOX_{user}"


def consumer_subjects(grant: ConsumerGrant, *, manage: bool = False) -> list[str]:
    """JetStream API subjects to create, inspect and pull from one named consumer, and ack.

    Both create forms are listed: `CONSUMER.DURABLE.CREATE` (nats-py with `durable_name`)
    and `CONSUMER.CREATE.<stream>.<name>[.<filter>]` (newer clients, the `nats` CLI).
    `manage` adds delete and reset (ministries restart their own consumers).
    """
    s, d = grant.stream, grant.durable
    subjects = [
        f"{_JS}.CONSUMER.DURABLE.CREATE.{s}.{d}",
        f"{_JS}.CONSUMER.CREATE.{s}.{d}",
        f"{_JS}.CONSUMER.CREATE.{s}.{d}.>",
        f"{_JS}.CONSUMER.INFO.{s}.{d}",
        f"{_JS}.CONSUMER.MSG.NEXT.{s}.{d}",
        # Acks, naks and terms go to the reply subject of each delivered message:
        # $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
        f"$JS.ACK.{s}.{d}.>",
    ]
    if manage:
        subjects += [f"{_JS}.CONSUMER.DELETE.{s}.{d}", f"{_JS}.CONSUMER.RESET.{s}.{d}"]
    return subjects


def service_permissions(
    service: str,
    consumers: Iterable[ConsumerGrant],
    *,
    provisioned_streams: Sequence[str] = PLATFORM_STREAMS,
) -> Permissions:
    """What the user of `service` may do (see the module docstring).

    `consumers` are the service's durables (`discover_consumers`); each must be named
    `<service>-…`. `provisioned_streams`: streams whose config it may create and update.
    """
    _check_name("service", service)
    grants = sorted(set(consumers), key=lambda g: (g.stream, g.durable))
    for grant in grants:
        _check_name("consumer", grant.durable)
        if not grant.durable.startswith(f"{service}-"):
            raise NatsAuthError(
                f"consumer {grant.durable!r} of {service} must be named {service}-…"
            )
    publish = [f"sa.{service}.>"]
    # Dead letters of its own consumers (the watcher's advisories are not dead-lettered).
    publish += [f"{DLQ_PREFIX}.{g.durable}" for g in grants if g.stream != ADVISORY_STREAM]
    # Any start order works: a service may create every platform stream (with the
    # platform's config), but update only its own and the shared ones (`may_update_stream`).
    for stream in provisioned_streams:
        publish += [f"{_JS}.STREAM.INFO.{stream}", f"{_JS}.STREAM.CREATE.{stream}"]
        if may_update_stream(service, stream):
            publish.append(f"{_JS}.STREAM.UPDATE.{stream}")
    # The max-deliveries watcher reads the original message from the stream it came from.
    consumed = sorted({g.stream for g in grants if g.stream != ADVISORY_STREAM})
    publish += [f"{_JS}.STREAM.MSG.GET.{stream}" for stream in consumed]
    for grant in grants:
        publish += consumer_subjects(grant)
    return Permissions(publish=tuple(publish), subscribe=(f"{SERVICE_INBOX}.>",))


def ministry_permissions(
    user: str = MINISTRY_USER,
    consumers: Iterable[str] = DEFAULT_MINISTRY_CONSUMERS,
    *,
    streams: Sequence[str] = MINISTRY_STREAMS,
) -> Permissions:
    """Read-only access: the user's own consumers (named `<user>-…`) on `streams`, no publish."""
    _check_name("user", user)
    names = sorted(set(consumers))
    for name in names:
        _check_name("consumer", name)
        if not name.startswith(f"{user}-"):
            raise NatsAuthError(f"consumer {name!r} of ministry user {user} must be {user}-…")
    publish = [f"{_JS}.STREAM.INFO.{stream}" for stream in streams]
    for stream in streams:
        for name in names:
            publish += consumer_subjects(ConsumerGrant(stream, name), manage=True)
    return Permissions(publish=tuple(publish), subscribe=(f"{inbox_prefix(user)}.>",))


def generate_password() -> str:
    """A random password (192 bits) that nats-server also reads unquoted from an environment
    variable: it starts with a letter. nats-server parses a variable's value as a config
    token, so one starting like a number ("-D…", which `token_urlsafe` alone can make) does
    not parse and the file refuses to load (a CI run of the three-node test met one)."""
    return "sa" + secrets.token_urlsafe(24)


def env_password(user: str) -> str:
    """The placeholder for a password read from the environment: `$SA_NATS_<USER>_PASSWORD`."""
    return f"$SA_NATS_{user.upper().replace('-', '_')}_PASSWORD"


def platform_users(
    passwords: Mapping[str, str],
    consumers: Mapping[str, Iterable[ConsumerGrant]],
    *,
    ministries: Mapping[str, Iterable[str]] | None = None,
    admin: bool = True,
) -> list[NatsUser]:
    """Every user: one per service in `consumers`, each ministry, and the operations user.

    `passwords[name]` is each user's password (or `$ENV` reference); `ministries` maps a
    ministry user to its consumer names (default: `ministry` with `ministry-export` and
    `ministry-tail`).
    """
    if ministries is None:
        ministries = {MINISTRY_USER: DEFAULT_MINISTRY_CONSUMERS}
    names = [*consumers, *ministries, *([ADMIN_USER] if admin else [])]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise NatsAuthError(f"user names used twice: {', '.join(twice)}")
    users = [
        NatsUser(service, passwords[service], service_permissions(service, grants))
        for service, grants in consumers.items()
    ]
    users += [
        NatsUser(user, passwords[user], ministry_permissions(user, names))
        for user, names in ministries.items()
    ]
    if admin:
        users.append(NatsUser(ADMIN_USER, passwords[ADMIN_USER], None))
    return users


def _quote(text: str) -> str:
    # Quoted strings are literal in the nats-server config ("$JS.API…" is no variable).
    return json.dumps(text)


def _password(value: str) -> str:
    # An unquoted $NAME is a variable: nats-server takes it from the environment.
    if re.fullmatch(r"\$[A-Z][A-Z0-9_]*", value):
        return value
    return _quote(value)


def _render_user(user: NatsUser, indent: str) -> list[str]:
    lines = [
        f"{indent}{{",
        f"{indent}  user: {_quote(user.user)}",
        f"{indent}  password: {_password(user.password)}",
    ]
    if user.permissions is not None:
        lines.append(f"{indent}  permissions: {{")
        for kind, subjects in (
            ("publish", user.permissions.publish),
            ("subscribe", user.permissions.subscribe),
        ):
            lines.append(f"{indent}    {kind}: {{ allow: [")
            lines += [f"{indent}      {_quote(subject)}" for subject in subjects]
            lines.append(f"{indent}    ] }}")
        lines.append(f"{indent}  }}")
    lines.append(f"{indent}}}")
    return lines


def render_authorization(
    users: Sequence[NatsUser], *, account: str | None = None, header: str = ""
) -> str:
    """The nats-server config text holding `users` and their permissions.

    `account` None: an `authorization {}` block (the global account). A name: an
    `accounts {}` block with JetStream enabled for it (production).
    """
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    if account is None:
        out += ["authorization {", "  users = ["]
        for user in users:
            out += _render_user(user, "    ")
        out += ["  ]", "}"]
    else:
        _check_name("account", account.lower())
        out += ["accounts {", f"  {account}: {{", "    jetstream: enabled", "    users = ["]
        for user in users:
            out += _render_user(user, "      ")
        out += ["    ]", "  }", "}"]
    return "\n".join(out) + "\n"


PRODUCTION_ACCOUNT = "SA"
PRODUCTION_HEADER = """\
Users and permissions of the platform's NATS cluster. GENERATED: do not edit; regenerate with
    sa events nats-config > deploy/nats/auth.conf
(a test fails while this file differs from what the code would generate).
Passwords come from the environment of each nats-server: SA_NATS_<USER>_PASSWORD, best as a
bcrypt hash (`nats server passwd`); each service is given its plain password as
SA_<SERVICE>_NATS_USER / SA_<SERVICE>_NATS_PASSWORD. See deploy/nats/README.md."""


def production_authorization(services: Sequence[str] = SERVICES) -> str:
    """deploy/nats/auth.conf: every user with its password read from the environment."""
    consumers = {service: discover_consumers(service) for service in services}
    names = [*services, MINISTRY_USER, ADMIN_USER]
    users = platform_users({name: env_password(name) for name in names}, consumers)
    return render_authorization(users, account=PRODUCTION_ACCOUNT, header=PRODUCTION_HEADER)


# --------------------------------------------------------------------------------------------
# Discovery of the services' consumers
# --------------------------------------------------------------------------------------------


def discover_consumers(service: str) -> list[ConsumerGrant]:
    """The durables `service` creates: its subscriptions and its max-deliveries watcher.

    Builds the service's app (no connection is made) and reads its runtime, so the answer is
    exactly what the running service will ask the server for.
    """
    module = importlib.import_module(f"services.{service}.app")
    return consumers_of(module.create_app().state.runtime)


def consumers_of(runtime: ServiceRuntime) -> list[ConsumerGrant]:
    """The durables a service runtime creates when its events start."""
    grants = [ConsumerGrant(w.sub.stream, w.durable) for w in runtime.workers]
    if runtime.watcher is not None:
        grants.append(ConsumerGrant(ADVISORY_STREAM, runtime.watcher.durable))
    return grants


def discover_all(services: Iterable[str]) -> dict[str, list[ConsumerGrant] | str]:
    """`discover_consumers` for each service; a service that cannot be loaded maps to why."""
    found: dict[str, list[ConsumerGrant] | str] = {}
    for service in services:
        try:
            found[service] = discover_consumers(service)
        except Exception as exc:
            found[service] = f"{type(exc).__name__}: {exc}"
    return found


def main(argv: Sequence[str]) -> None:
    """`python -m libs.common.nats_auth SERVICE…`: print the services' consumers as JSON.

    The embedded stack runs this in a child process, so the supervisor never imports the
    services (and their start-up noise) itself.
    """
    found = discover_all(argv)
    doc = {
        name: (
            value
            if isinstance(value, str)
            else [{"stream": g.stream, "durable": g.durable} for g in value]
        )
        for name, value in found.items()
    }
    sys.stdout.write(json.dumps(doc) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
