"""The HTTPS front end: one threaded server for Entra ID, Graph and the emulator's own API.

TLS is handshaken in the request thread (a slow client never blocks the accept loop);
HTTP/1.1 keep-alive lets clients pool connections as they would against Graph.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from icechat.dev.graph_emulator.admin import Admin
from icechat.dev.graph_emulator.auth import Authority, Principal
from icechat.dev.graph_emulator.faults import FaultConfig, Limiter
from icechat.dev.graph_emulator.graph_api import GraphApi
from icechat.dev.graph_emulator.recorder import Recorder
from icechat.dev.graph_emulator.responses import Request, Response, graph_error, parse_query
from icechat.dev.graph_emulator.store import Store, apply_directory
from icechat.dev.graph_emulator.tls import ensure_tls_files

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 4 * 1024 * 1024
_DISCARD_LIMIT = 64 * 1024 * 1024
# A message create over 4 MB is answered 400 BadRequest "The maximum request length supported
# is 4MB." (microsoftgraph/microsoft-graph-docs-contrib#682, POST /users/{id}/messages);
# other requests over it 413 RequestEntityTooLarge (sendMail: msgraph-sdk-powershell#1554).
_MESSAGE_CREATE = re.compile(r"/v1\.0/users/[^/]+(?:/mailFolders/[^/]+)?/messages/?")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], emulator: GraphEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.emulator.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            with contextlib.suppress(ssl.SSLError, OSError):
                tls.unwrap()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _serve(self) -> None:
        arrived = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            body = b""
            self._discard(length)
        else:
            body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        host = self.headers.get("Host") or self.server.emulator.host_port
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_query(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            base_url=f"https://{host}",
            arrived=arrived,
        )
        if length > MAX_REQUEST_BYTES:
            response = _too_large(request, length)
            self.server.emulator.record(request, response)
        else:
            response = self.server.emulator.dispatch(request)
        self._send(request, response)
        self.server.emulator.recorder.sent(request.request_id)

    def _discard(self, length: int) -> None:
        if length > _DISCARD_LIMIT:
            self.close_connection = True
            return
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)

    def _send(self, request: Request, response: Response) -> None:
        payload = response.payload()
        try:
            self.send_response(response.status)
            headers = response.all_headers()
            headers.setdefault("request-id", request.request_id)
            headers.setdefault(
                "client-request-id", request.header("client-request-id") or request.request_id
            )
            prefer = request.header("prefer") or ""
            if "idtype" in prefer.lower():
                headers["Preference-Applied"] = prefer
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload and self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True


def _too_large(request: Request, length: int) -> Response:
    """Graph's answer to a request body over 4 MB, given before authentication."""
    if request.method == "POST" and _MESSAGE_CREATE.fullmatch(request.path):
        return graph_error(
            request, 400, "BadRequest", "The maximum request length supported is 4MB."
        )
    return graph_error(
        request,
        413,
        "RequestEntityTooLarge",
        f"The request body is {length} bytes; Microsoft Graph accepts at most"
        f" {MAX_REQUEST_BYTES} (4 MB). Send large attachments with an upload session.",
    )


class GraphEmulator:
    """A local Microsoft Graph + Entra ID over HTTPS, state kept in ``state_dir``.

    ``start()`` serves in a background thread (tests); ``serve_forever()`` blocks (CLI).
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        directory: Any = None,
        config: FaultConfig | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.store = Store(self.state_dir)
        if directory is not None:
            apply_directory(self.store, directory)
        self.tls = ensure_tls_files(self.state_dir / "tls")
        self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls_context.load_cert_chain(self.tls.cert, self.tls.key)
        self.authority = Authority(self.store)
        self.config = config or FaultConfig()
        self.limiter = Limiter(self.config)
        self.recorder = Recorder()
        self.graph = GraphApi(self.store, self.limiter, self.recorder)
        self.admin = Admin(
            self.store,
            self.limiter,
            self.recorder,
            self.config,
            self.configure_with,
            self.info,
            lambda: self.authority.tenant_id,
        )
        self.configure_with(self.config)
        self._httpd = _Server((host, port), self)
        self.host = "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104
        self.port = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def host_port(self) -> str:
        """``host:port`` as clients address the emulator."""
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``https://host:port``: the authority host (Entra ID) lives at the root."""
        return f"https://{self.host_port}"

    @property
    def graph_url(self) -> str:
        """The Graph base URL, ``https://host:port/v1.0``."""
        return f"{self.base_url}/v1.0"

    @property
    def tenant_id(self) -> str:
        """The emulated tenant's id."""
        return self.authority.tenant_id

    @property
    def ca_bundle(self) -> Path:
        """The PEM file clients verify the emulator's TLS certificate with."""
        return self.tls.ca

    def connection(self, client_id: str, secret: str) -> dict[str, Any]:
        """The ``icechat_graph`` connection (Airflow's JSON form) for an app of this emulator."""
        return {
            "conn_type": "generic",
            "login": client_id,
            "password": secret,
            "extra": {
                "tenant_id": self.tenant_id,
                "authority_host": self.base_url,
                "graph_url": self.graph_url,
                "ca_bundle": str(self.ca_bundle.resolve()),
            },
        }

    def info(self, base_url: str | None = None) -> dict[str, Any]:
        """Where everything is, as the CLI prints it and ``GET /_emulator/info`` returns it."""
        base = base_url or self.base_url
        return {
            "graph_url": f"{base}/v1.0",
            "authority_host": base,
            "tenant_id": self.tenant_id,
            "authority": f"{base}/{self.tenant_id}",
            "ca_bundle": str(self.ca_bundle),
            "state_dir": str(self.state_dir),
            "admin": f"{base}/_emulator",
        }

    def configure_with(self, config: FaultConfig) -> None:
        """Apply limits and faults from now on."""
        self.config = config
        self.limiter.configure(config)
        self.authority.token_lifetime_s = config.token_lifetime_s

    def configure(self, **changes: Any) -> FaultConfig:
        """Change some settings (see FaultConfig); returns the settings now in force."""
        self.configure_with(self.config.updated(changes))
        return self.config

    def dispatch(self, request: Request) -> Response:
        """Route one HTTP request and record it (the emulator's own endpoints are not recorded)."""
        path = request.path
        if path.startswith("/_emulator/"):
            request.path = path[len("/_emulator") :]
            return self.admin.handle(request)
        segments = path.strip("/").split("/")
        client: str | None = None
        if segments[0] == "v1.0":
            request.path = "/" + "/".join(segments[1:])
            principal = self.authority.principal(request)
            if isinstance(principal, Principal):
                request.client_id, request.roles = principal.client_id, principal.roles
                response = self.graph.handle(request)
            else:
                response = principal
            client = request.client_id
        elif segments[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            response = self.authority.openid_configuration(request.base_url, segments[0])
        elif segments == ["common", "discovery", "instance"]:
            response = self.authority.instance_discovery(
                request.base_url, request.query.get("authorization_endpoint", "")
            )
        elif segments[1:] == ["oauth2", "v2.0", "token"] and request.method == "POST":
            response, client = self.authority.issue_token(request, segments[0])
        else:
            response = graph_error(request, 404, "NotFound", f"Nothing is served at {path}.")
        self.record(request, response, client, path)
        return response

    def record(
        self, request: Request, response: Response, client: str | None = None, path: str = ""
    ) -> None:
        """Log an answered request."""
        self.recorder.record(
            arrived=request.arrived,
            method=request.method,
            path=path or request.path,
            client=client,
            mailbox=request.mailbox,
            status=response.status,
            retry_after=response.retry_after,
            answer=request.request_id,
        )

    def start(self) -> GraphEmulator:
        """Serve in a background thread until ``stop()``."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"graph-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        try:
            self._httpd.serve_forever()
        finally:
            self.close()

    def stop(self) -> None:
        """Stop serving and close the state (it stays on disk)."""
        self._httpd.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.close()

    def close(self) -> None:
        """Release the socket and the database."""
        self._httpd.server_close()
        self.store.close()

    def __enter__(self) -> GraphEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
