"""What Airflow learns about icechat from the ``apache_airflow_provider`` entry point.

It registers the ``icechat_graph`` and ``icechat_pgp`` connection types with their form
fields (declared here, as Airflow 3.2+ wants, rather than in hook methods), so an admin can
fill them in the UI; the hooks named here give the form its "Test" button. Importing this
module imports nothing else: Airflow reads it in every process.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

PACKAGE_NAME = "icechat-archiver"


def _text(label: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["string", "null"], **schema},
    }


GRAPH_FIELDS: dict[str, dict[str, Any]] = {
    "tenant_id": _text("Tenant ID", "Directory (tenant) id or domain of the Microsoft 365 tenant"),
    "certificate": _text(
        "Certificate (instead of a client secret)",
        "PEM private key followed by its certificate; leave the client secret empty then",
        format="password",
    ),
    "thumbprint": _text(
        "Certificate thumbprint", "SHA-1 thumbprint (hex) of the certificate uploaded to the app"
    ),
    "authority_host": _text(
        "Authority host",
        "Entra ID sign-in host (empty: https://login.microsoftonline.com)",
    ),
    "graph_url": _text("Graph URL", "Graph API root (empty: https://graph.microsoft.com/v1.0)"),
    "ca_bundle": _text(
        "CA bundle", "Path of a PEM file to verify TLS with (proxies, test servers)"
    ),
    "scope": _text(
        "Token scope",
        "What tokens are asked for (empty: Microsoft Graph's, https://graph.microsoft.com/"
        ".default, or the national cloud's when Graph URL is one); keep it Graph's even when "
        "Graph URL is a gateway or proxy",
    ),
}

PGP_FIELDS: dict[str, dict[str, Any]] = {
    "private_key": _text(
        "Private key",
        "ASCII-armoured secret key (gpg --export-secret-keys --armor KEYID)",
        format="multiline",
    ),
}


def get_provider_info() -> dict[str, Any]:
    """The provider description Airflow's ProvidersManager validates and loads."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "ICE Chat archiver",
        "description": "Archive ICE Chat exports into Microsoft 365 mailboxes.",
        "versions": [version(PACKAGE_NAME)],
        "connection-types": [
            {
                "connection-type": "icechat_graph",
                "hook-class-name": "icechat.glue.connections.IceChatGraphHook",
                "hook-name": "ICE Chat: Microsoft Graph",
                "conn-fields": GRAPH_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "host", "extra"],
                    "relabeling": {
                        "login": "Application (client) ID",
                        "password": "Client secret",
                    },
                    "placeholders": {
                        "authority_host": "https://login.microsoftonline.com",
                        "graph_url": "https://graph.microsoft.com/v1.0",
                        "scope": "https://graph.microsoft.com/.default",
                    },
                },
            },
            {
                "connection-type": "icechat_pgp",
                "hook-class-name": "icechat.glue.connections.IceChatPgpHook",
                "hook-name": "ICE Chat: PGP key",
                "conn-fields": PGP_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "host", "login", "extra"],
                    "relabeling": {"password": "Passphrase"},
                    "placeholders": {},
                },
            },
        ],
    }
