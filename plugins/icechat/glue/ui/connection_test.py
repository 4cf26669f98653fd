"""Lets the UI's *Test Connection* button work for icechat's connection types on Airflow 3.3.2.

The connection list posts ``port: Number(connection.port)``, which is 0 for a connection
without a port, and Airflow 3.3.2's ``POST /api/v2/connections/test`` takes 0 for another
destination than the stored NULL: it answers 400 instead of testing with the stored secret.
Our types have no port. Fixed upstream by apache/airflow#73298 (after 3.3.2), which treats
0 as blank; this middleware does the same for our types only, before the route sees the
body. Remove it once the pinned Airflow includes that fix.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

TEST_PATH = "/api/v2/connections/test"
PORTLESS_TYPES = frozenset({"icechat_graph", "icechat_pgp"})
MAX_BODY = 1 << 20  # a connection test body is small; larger ones pass untouched


def portless(body: bytes) -> bytes:
    """The test request body with ``port`` 0 made null, for icechat's types; else unchanged."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict) and data.get("conn_type") in PORTLESS_TYPES and data.get("port") == 0:
        data["port"] = None
        return json.dumps(data).encode()
    return body


class PortlessConnectionTest:
    """ASGI middleware applying :func:`portless` to ``POST .../api/v2/connections/test``."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and str(scope["path"]).endswith(TEST_PATH)
        ):
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more and len(body) <= MAX_BODY:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay(message, receive), send)
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        fixed = body if more else portless(body)
        if fixed is not body:
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
            scope = {**scope, "headers": [*headers, (b"content-length", b"%d" % len(fixed))]}
        request = {"type": "http.request", "body": fixed, "more_body": more}
        await self.app(scope, _replay(request, receive), send)


def _replay(first: Message, receive: Receive) -> Receive:
    """``receive`` that gives ``first`` once, then what the client sends next."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return first
        return await receive()

    return replay
