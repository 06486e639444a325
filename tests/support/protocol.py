"""The machine-readable protocol (`docs/asyncapi.yaml`) as JSON Schema validators for tests.

Rule: schemas are looked up by name under `components.schemas` and resolved with `jsonschema`
against the whole document (AsyncAPI 3.0's default schema format is a JSON Schema Draft 7
superset), so a `$ref` in the file is a `$ref` here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

from tests.support.servers import REPO

ASYNCAPI = REPO / "docs" / "asyncapi.yaml"
URN = "urn:ticker:asyncapi"


@cache
def document() -> dict[str, Any]:
    """The parsed AsyncAPI document."""
    doc: dict[str, Any] = yaml.safe_load(ASYNCAPI.read_text())
    return doc


@cache
def validator(schema: str) -> Draft7Validator:
    """A validator for `components.schemas.<schema>`."""
    registry: Registry[Any] = Registry().with_resource(URN, DRAFT7.create_resource(document()))
    assert schema in document()["components"]["schemas"], schema
    return Draft7Validator({"$ref": f"{URN}#/components/schemas/{schema}"}, registry=registry)


def problems(schema: str, instance: object) -> list[str]:
    """Why `instance` does not match `schema` (empty: it does)."""
    return [f"{e.json_path}: {e.message}" for e in validator(schema).iter_errors(instance)]


FRAME_SCHEMAS = {
    "subscribed": "SubscribedFrame",
    "ticks": "TicksFrame",
    "unsubscribed": "UnsubscribedFrame",
    "error": "ErrorFrame",
    "reconnect": "ReconnectFrame",
    "resync": "ResyncFrame",
    "heartbeat": "HeartbeatFrame",
    "pong": "PongFrame",
}


def assert_server_frame(frame: dict[str, Any]) -> None:
    """`frame` matches its own `*Frame` schema and the `ServerFrame` union."""
    kind = frame.get("type")
    assert kind in FRAME_SCHEMAS, f"frame type {kind!r} is not in the AsyncAPI document"
    assert not problems(FRAME_SCHEMAS[str(kind)], frame), (
        frame,
        problems(FRAME_SCHEMAS[kind], frame),
    )
    assert not problems("ServerFrame", frame), (frame, problems("ServerFrame", frame))
