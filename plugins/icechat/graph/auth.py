"""Entra ID app-only tokens for Graph through MSAL: one app per settings per process.

Keeping one ``ConfidentialClientApplication`` per process lets its token cache serve every
request until the token nears expiry. Secrets and tokens never reach a log or a message.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import msal

from icechat.exceptions import GraphAuthError
from icechat.graph.settings import GRAPH_SCOPE, GraphSettings
from icechat.graph.tls import VerifyingSession

log = logging.getLogger(__name__)

TOKEN_TIMEOUT = 30.0
# Entra ID's answers to a scope whose resource it does not know or cannot serve.
SCOPE_ERRORS = frozenset({"invalid_resource", "invalid_scope"})
_PRIVATE_KEY = re.compile(
    r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.+?-----END \1PRIVATE KEY-----", re.DOTALL
)
_apps: dict[GraphSettings, msal.ConfidentialClientApplication] = {}
_apps_lock = threading.Lock()


def _credential(settings: GraphSettings) -> str | dict[str, str]:
    if settings.client_secret:
        return settings.client_secret
    match = _PRIVATE_KEY.search(settings.certificate_pem or "")
    if match is None:
        raise GraphAuthError(
            f"Graph connection for app {settings.client_id}: extra certificate holds no PEM "
            "private key; give the key and the certificate, both PEM"
        )
    return {"private_key": match.group(0), "thumbprint": settings.thumbprint or ""}


def msal_app(settings: GraphSettings) -> msal.ConfidentialClientApplication:
    """The process's MSAL app for ``settings`` (created on first use, then shared)."""
    with _apps_lock:
        app = _apps.get(settings)
        if app is None:
            log.info(
                "MSAL app for client %s, authority %s, credential %s, ca_bundle %s",
                settings.client_id,
                settings.authority,
                "secret" if settings.client_secret else "certificate",
                settings.ca_bundle or "system",
            )
            app = msal.ConfidentialClientApplication(
                settings.client_id,
                client_credential=_credential(settings),
                authority=settings.authority,
                instance_discovery=None if settings.is_microsoft_authority else False,
                # Our session: verify=ca_bundle even with REQUESTS_CA_BUNDLE set, and a timeout.
                http_client=VerifyingSession(settings.ca_bundle or True, TOKEN_TIMEOUT),
            )
            _apps[settings] = app
    return app


def access_token(settings: GraphSettings) -> str:
    """A bearer token for Graph, from MSAL's cache when it still holds a valid one."""
    try:
        result: dict[str, Any] = msal_app(settings).acquire_token_for_client(
            scopes=[settings.token_scope]
        )
    except (ValueError, OSError) as exc:
        raise GraphAuthError(
            f"cannot get a token for app {settings.client_id} from {settings.authority}: "
            f"{type(exc).__name__}; check authority_host, tenant_id and ca_bundle"
        ) from exc
    token = result.get("access_token")
    if isinstance(token, str):
        return token
    error = str(result.get("error", "unknown_error"))
    description = str(result.get("error_description", "")).splitlines()[0:1]
    if error in SCOPE_ERRORS:
        fix = (
            "the scope must be Microsoft Graph's of the tenant's cloud: correct or clear the "
            f"extra scope of the Graph connection (empty means {GRAPH_SCOPE}, whatever "
            "graph_url is)"
        )
    else:
        fix = (
            "check the client id, the tenant and the client secret or certificate (and that "
            "it has not expired)"
        )
    raise GraphAuthError(
        f"Entra ID refused a token for app {settings.client_id} in tenant "
        f"{settings.tenant_id} for scope {settings.token_scope}: {error}: {' '.join(description)}; "
        f"{fix}",
        code=error,
    )
