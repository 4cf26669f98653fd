"""What the connector needs to reach Microsoft Graph, as a plain value (no Airflow)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from icechat.exceptions import GraphSettingsError

MICROSOFT_AUTHORITY_HOST = "https://login.microsoftonline.com"
GRAPH_URL = "https://graph.microsoft.com/v1.0"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# Outlook's limit per application and mailbox: 10,000 requests per 10 minutes, each $batch
# part counted (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
MAILBOX_REQUESTS = 10_000
MAILBOX_WINDOW = 600.0
# Hosts of Microsoft Graph in each cloud (global, US Gov L4, US Gov L5 (DoD), China): a
# token for one of them must name that cloud's Graph as its resource.
GRAPH_HOSTS = frozenset(
    {
        "graph.microsoft.com",
        "graph.microsoft.us",
        "dod-graph.microsoft.us",
        "microsoftgraph.chinacloudapi.cn",
    }
)
# Entra ID clouds MSAL knows; any other authority host (a test server) skips instance discovery.
KNOWN_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
)


@dataclass(frozen=True)
class GraphSettings:
    """App registration and endpoints; exactly one of client secret or certificate is set.

    ``scope`` (the connection's extra) overrides what tokens are asked for; without it
    they are for Graph itself (:func:`graph_scope`), since a gateway, proxy or test server
    in ``graph_url`` still takes tokens for Microsoft Graph. ``mailbox_requests`` per
    ``mailbox_window_seconds`` is the rate each mailbox is paced to (Outlook's limit unless a
    tenant has another, or a test server is scaled down). Secrets are excluded from
    ``repr`` so that logging a settings object cannot leak them.
    """

    client_id: str
    tenant_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_pem: str | None = field(default=None, repr=False)
    thumbprint: str | None = None
    authority_host: str = MICROSOFT_AUTHORITY_HOST
    graph_url: str = GRAPH_URL
    ca_bundle: str | None = None
    scope: str | None = None
    mailbox_requests: int = MAILBOX_REQUESTS
    mailbox_window_seconds: float = MAILBOX_WINDOW

    def __post_init__(self) -> None:
        if not self.client_id or not self.tenant_id:
            raise GraphSettingsError(
                "Graph connection: set login = application (client) id and extra tenant_id"
            )
        has_secret = bool(self.client_secret)
        has_cert = bool(self.certificate_pem)
        if has_secret == has_cert:
            raise GraphSettingsError(
                f"Graph connection for app {self.client_id}: set either password = client "
                "secret or extras certificate + thumbprint, not both and not neither"
            )
        if has_cert and not self.thumbprint:
            raise GraphSettingsError(
                f"Graph connection for app {self.client_id}: extra certificate needs extra "
                "thumbprint (the SHA-1 thumbprint of the certificate uploaded to the app)"
            )
        for name in ("authority_host", "graph_url"):
            if urlsplit(getattr(self, name)).scheme != "https":
                raise GraphSettingsError(
                    f"Graph connection for app {self.client_id}: {name} must be an https URL"
                )
        if self.mailbox_requests < 1 or self.mailbox_window_seconds <= 0:
            raise GraphSettingsError(
                f"Graph connection for app {self.client_id}: extras mailbox_requests "
                f"({self.mailbox_requests}) and mailbox_window_seconds "
                f"({self.mailbox_window_seconds}) must be positive; leave them out for "
                f"Outlook's {MAILBOX_REQUESTS} requests per {MAILBOX_WINDOW:.0f} s"
            )
        if self.scope and not self.scope.endswith("/.default"):
            raise GraphSettingsError(
                f"Graph connection for app {self.client_id}: extra scope {self.scope!r} is not "
                f"a resource's .default scope: set it like {GRAPH_SCOPE}, or leave it empty "
                "for Microsoft Graph's"
            )

    @property
    def authority(self) -> str:
        """The token authority: the tenant under the authority host."""
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"

    @property
    def token_scope(self) -> str:
        """The scope tokens are asked for: the ``scope`` extra, else Graph's own."""
        return self.scope or graph_scope(self.graph_url)

    @property
    def is_microsoft_authority(self) -> bool:
        """Whether the authority is a real Entra ID cloud (MSAL may run instance discovery)."""
        return urlsplit(self.authority_host).hostname in KNOWN_AUTHORITY_HOSTS


def graph_scope(graph_url: str) -> str:
    """Graph's ``.default`` scope for ``graph_url``: its cloud's when it is a Graph host.

    Any other host (a gateway, a proxy, a test server) gets the global Graph's scope: the
    token is still for Microsoft Graph, and Entra ID knows no resource by that host.
    """
    host = urlsplit(graph_url).hostname or ""
    return f"https://{host}/.default" if host in GRAPH_HOSTS else GRAPH_SCOPE
