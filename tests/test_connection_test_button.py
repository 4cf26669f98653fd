"""The fix that lets Airflow 3.3.2's Test button test icechat's port-less connection types."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from icechat.glue.ui.connection_test import PortlessConnectionTest, portless

PATH = "/api/v2/connections/test"


def seen_by_airflow(body: dict[str, Any], path: str = PATH) -> tuple[dict[str, Any], dict]:
    """The body and headers the route behind the middleware receives."""
    raw = json.dumps(body).encode()
    got: dict[str, Any] = {}

    async def route(scope: dict, receive: Any, send: Any) -> None:
        message = await receive()
        got["body"] = json.loads(message["body"])
        got["headers"] = dict(scope["headers"])

    async def client() -> dict:
        return {"type": "http.request", "body": raw, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))],
    }
    asyncio.run(PortlessConnectionTest(route)(scope, client, lambda _m: None))
    return got["body"], got["headers"]


def test_port_zero_of_an_icechat_connection_reaches_airflow_as_no_port() -> None:
    body = {"connection_id": "icechat_graph", "conn_type": "icechat_graph", "port": 0, "host": ""}
    seen, headers = seen_by_airflow(body)
    assert seen == {**body, "port": None}
    assert int(headers[b"content-length"]) == len(json.dumps(seen).encode())


def test_other_types_ports_and_paths_pass_untouched() -> None:
    postgres = {"connection_id": "db", "conn_type": "postgres", "port": 0}
    assert seen_by_airflow(postgres)[0] == postgres
    graph = {"connection_id": "g", "conn_type": "icechat_graph", "port": 8443}
    assert seen_by_airflow(graph)[0] == graph
    zero = {"connection_id": "g", "conn_type": "icechat_pgp", "port": 0}
    assert seen_by_airflow(zero, "/api/v2/connections")[0] == zero
    assert portless(b"not json") == b"not json"
