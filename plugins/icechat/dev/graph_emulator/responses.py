"""Request and response values shared by the HTTP front end, the Graph API and ``$batch``.

Errors are shaped like Graph's: ``{"error": {"code", "message", "innerError": {...}}}``, with
``request-id`` and ``client-request-id`` headers, so a client's error handling meets what
the real service sends.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl


@dataclass
class Request:
    """One Graph request (a whole HTTP request, or one ``$batch`` sub-request)."""

    method: str
    path: str  # below the version segment, e.g. "/users/x/messages"
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base_url: str  # "https://127.0.0.1:PORT"
    client_id: str | None = None
    roles: tuple[str, ...] = ()
    arrived: float = 0.0
    batch_of: str | None = None  # request id of the enclosing $batch
    mailbox: str | None = None  # UPN of the mailbox the request addressed, once resolved
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not JSON."""
        return json.loads(self.body or b"null")

    def header(self, name: str) -> str | None:
        """A request header by (case-insensitive) name."""
        return self.headers.get(name.lower())


@dataclass
class Response:
    """What the emulator answers: status, headers, body (JSON value or raw bytes)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    retry_after: int | None = None

    def payload(self) -> bytes:
        """The body bytes to send."""
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return b""
        return json.dumps(self.body).encode()

    def all_headers(self) -> dict[str, str]:
        """Headers to send, with the JSON content type and Retry-After filled in."""
        headers = dict(self.headers)
        if self.raw is None and self.body is not None:
            headers.setdefault("Content-Type", "application/json; odata.metadata=minimal")
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def parse_query(query: str) -> dict[str, str]:
    """Query options by name; OData option names are matched without case."""
    out: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        out[key.lower() if key.startswith("$") else key] = value
    return out


def graph_error(
    request: Request | None,
    status: int,
    code: str,
    message: str,
    *,
    retry_after: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An error response shaped as Microsoft Graph shapes it."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    request_id = request.request_id if request else str(uuid.uuid4())
    client_request_id = (request.header("client-request-id") if request else None) or request_id
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": now,
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
    return Response(status, body, dict(headers or {}), retry_after=retry_after)
