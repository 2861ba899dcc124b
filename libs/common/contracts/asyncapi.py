"""AsyncAPI 3.0 documents generated from the event registry.

One document per service (served at `GET /asyncapi.json`: what it publishes) and one for the
platform (`docs/asyncapi.json`, `sa asyncapi`: every service's events, who consumes each,
and the dead-letter channel). Nothing is written by hand, so the document cannot drift from
the code: the contract tests compare the committed file with a fresh one.

Layout: a channel per NATS subject (`sa.<service>.<entity>.<verb>`), holding one message
per version (`…v1`, `…v2` while both are published); a `send` operation per channel for the
producer, a `receive` operation per durable consumer. Payload schemas are JSON Schema draft
2020-12 (a Multi Format Schema Object); headers (AsyncAPI schemas) are the CloudEvents
binary-mode `ce-*` attributes with W3C trace context, shared in `components.schemas`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from libs.common.contracts.registry import EventContract, Registry, ServiceContracts
from libs.common.events.bus import DLQ_PREFIX
from libs.common.events.envelope import CONTENT_TYPE, MSG_ID_HEADER, SPECVERSION

ASYNCAPI_VERSION = "3.0.0"
SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
DOCUMENT_VERSION = "1.0.0"
DEAD_LETTER_CHANNEL = "dead-letters"
DEAD_LETTER_MESSAGE = "dead-letter"
PLATFORM_TITLE = "Social-assistance services marketplace: events"
PLATFORM_DESCRIPTION = (
    "Every event the platform publishes on NATS JetStream (one stream per producing "
    "service), generated from the event registry (libs/common/contracts). Events are "
    "CloudEvents 1.0 in binary mode: `ce-*` headers, a JSON body. The subject is the type "
    "without its `.vN` suffix. Consumers must ignore fields they do not know: a `.v1` "
    "payload may gain optional fields; any other change is published as `.v2`. No event "
    "carries a direct identifier of a recipient (name, ID number, phone, address): only the "
    "pseudonymous `recipient_ref`. Ministries may subscribe to everything (read-only)."
)

_TRACEPARENT = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


def _multi_format(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"schemaFormat": SCHEMA_FORMAT, "schema": dict(schema)}


HEADERS_SCHEMA = "CloudEventsHeaders"


def cloudevents_headers() -> dict[str, Any]:
    """The NATS headers every event carries (CloudEvents binary content mode)."""
    return {
        "type": "object",
        "required": [
            "ce-specversion",
            "ce-id",
            "ce-source",
            "ce-type",
            "ce-time",
            "content-type",
            MSG_ID_HEADER,
        ],
        "properties": {
            "ce-specversion": {"const": SPECVERSION},
            "ce-id": {"type": "string", "minLength": 1, "description": "Event id (UUID)"},
            "ce-source": {"type": "string", "description": "/sa/<producing service>"},
            "ce-type": {"type": "string", "description": "sa.<service>.<entity>.<verb>.v<N>"},
            "ce-time": {"type": "string", "format": "date-time"},
            "ce-subject": {
                "type": "string",
                "description": "Id of the entity the event is about",
            },
            "content-type": {"const": CONTENT_TYPE},
            MSG_ID_HEADER: {
                "type": "string",
                "description": "Equals ce-id: JetStream drops a republished duplicate",
            },
            "traceparent": {"type": "string", "pattern": _TRACEPARENT},
            "tracestate": {"type": "string"},
        },
        "additionalProperties": True,
    }


def headers_schema(contract: EventContract) -> dict[str, Any]:
    """The headers of an event of this type: the shared ones, with its type and source."""
    return {
        "allOf": [{"$ref": f"#/components/schemas/{HEADERS_SCHEMA}"}],
        "properties": {
            "ce-type": {"const": contract.type_name},
            "ce-source": {"const": contract.source},
        },
    }


def _message(contract: EventContract) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": contract.type_name,
        "title": contract.type_name,
        "summary": contract.description,
        "contentType": CONTENT_TYPE,
        "headers": headers_schema(contract),
        "payload": _multi_format(contract.json_schema()),
        "correlationId": {
            "description": "The entity the event is about",
            "location": "$message.header#/ce-subject",
        },
        "tags": [{"name": contract.service}, {"name": contract.entity}],
        "x-producer": contract.service,
        "x-stream": contract.stream,
        "x-consumers": list(contract.consumers),
    }
    if contract.deprecated:
        message["x-deprecated"] = True
    return message


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": DEAD_LETTER_MESSAGE,
        "title": "Dead letter",
        "summary": (
            "An event a consumer could never handle (bad data, or max_deliver reached), "
            "with the original headers and body and the reason"
        ),
        "contentType": CONTENT_TYPE,
        "headers": {
            "type": "object",
            "required": [
                "sa-dlq-reason",
                "sa-dlq-consumer",
                "sa-dlq-subject",
                "sa-dlq-stream",
                "sa-dlq-stream-seq",
                MSG_ID_HEADER,
            ],
            "properties": {
                "sa-dlq-reason": {"type": "string", "description": "Why it was given up"},
                "sa-dlq-consumer": {"type": "string", "description": "Durable consumer"},
                "sa-dlq-subject": {"type": "string", "description": "Original subject"},
                "sa-dlq-stream": {"type": "string", "description": "Original stream"},
                "sa-dlq-stream-seq": {
                    "type": "string",
                    "pattern": "^[0-9]+$",
                    "description": "Sequence in the original stream",
                },
                "sa-dlq-deliveries": {"type": "string", "description": "Deliveries made"},
                MSG_ID_HEADER: {
                    "type": "string",
                    "description": "dlq:<consumer>:<event id>, so it is listed once",
                },
            },
            "additionalProperties": True,
            "description": "The original ce-* headers are kept as they were",
        },
        "payload": _multi_format(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "description": "The original body, unchanged (normally a JSON object)",
            }
        ),
        "x-producer": "every consuming service",
    }


def build_document(
    contracts: Iterable[EventContract],
    *,
    title: str,
    description: str,
    version: str = DOCUMENT_VERSION,
    receive: bool = True,
    dead_letters: bool = True,
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document for these event types.

    `receive` adds each declared consumer's receive operations (the platform document);
    a service's own document lists what it sends.
    """
    ordered = sorted(contracts, key=lambda c: (c.subject, c.version))
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    by_channel: dict[str, list[EventContract]] = {}
    for contract in ordered:
        by_channel.setdefault(contract.subject, []).append(contract)
        messages[contract.type_name] = _message(contract)

    for channel_id, group in by_channel.items():
        first = group[0]
        channels[channel_id] = {
            "address": first.subject,
            "title": first.subject,
            "description": group[-1].description,
            "messages": {
                c.type_name: {"$ref": f"#/components/messages/{c.type_name}"} for c in group
            },
            "x-stream": first.stream,
        }
        message_refs = [{"$ref": f"#/channels/{channel_id}/messages/{c.type_name}"} for c in group]
        operations[f"{first.service}.send.{first.subject}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "title": f"{first.service} publishes {first.subject}",
            "messages": message_refs,
        }
        if receive:
            durables = sorted({d for c in group for d in c.consumers})
            for durable in durables:
                refs = [
                    {"$ref": f"#/channels/{channel_id}/messages/{c.type_name}"}
                    for c in group
                    if durable in c.consumers
                ]
                operations[f"{durable}.receive.{first.subject}"] = {
                    "action": "receive",
                    "channel": {"$ref": f"#/channels/{channel_id}"},
                    "title": f"{durable} consumes {first.subject}",
                    "messages": refs,
                }

    if dead_letters:
        messages[DEAD_LETTER_MESSAGE] = _dead_letter_message()
        channels[DEAD_LETTER_CHANNEL] = {
            "address": f"{DLQ_PREFIX}.{{durable}}",
            "title": "Dead letters",
            "description": (
                "Events a durable consumer gave up on, one subject per consumer, kept in "
                "the DLQ stream for an operator to inspect and replay"
            ),
            "parameters": {"durable": {"description": "The durable consumer that gave up"}},
            "messages": {
                DEAD_LETTER_MESSAGE: {"$ref": f"#/components/messages/{DEAD_LETTER_MESSAGE}"}
            },
            "x-stream": "DLQ",
        }
        operations["consumers.send.dead-letters"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{DEAD_LETTER_CHANNEL}"},
            "title": "A consumer dead-letters an event it can never handle",
            "messages": [
                {"$ref": f"#/channels/{DEAD_LETTER_CHANNEL}/messages/{DEAD_LETTER_MESSAGE}"}
            ],
        }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:sa:platform:events",
        "info": {"title": title, "version": version, "description": description},
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "embedded": {
                "host": "127.0.0.1:4250",
                "protocol": "nats",
                "description": "The embedded stack (`make run`): a local nats-server",
            },
            "production": {
                "host": "{host}:4222",
                "protocol": "nats",
                "description": "The production JetStream cluster (3 nodes, R3 streams)",
                "variables": {"host": {"default": "nats", "description": "Cluster address"}},
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": {HEADERS_SCHEMA: cloudevents_headers()}},
    }


def service_document(contracts: ServiceContracts) -> dict[str, Any]:
    """What one service publishes (its `GET /asyncapi.json`)."""
    document = build_document(
        contracts,
        title=f"{contracts.title}: events",
        description=f"{contracts.description}\n\n{PLATFORM_DESCRIPTION}",
        receive=False,
    )
    document["id"] = f"urn:sa:service:{contracts.service}:events"
    return document


def platform_document(registry: Registry) -> dict[str, Any]:
    """Every service's events merged, with consumers (`docs/asyncapi.json`)."""
    return build_document(registry, title=PLATFORM_TITLE, description=PLATFORM_DESCRIPTION)
