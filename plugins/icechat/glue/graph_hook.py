"""The ``icechat_graph`` connection as core GraphSettings, with its secrets masked in task logs.

:class:`IceChatGraphHook` is the connection type's hook in the Airflow UI: its "Test" gets a
token, reads directory users (as the mapping does) and one of their mailboxes (as the import
does).
"""

from __future__ import annotations

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from icechat.checks import check_graph_app
from icechat.exceptions import IceChatError
from icechat.graph.client import GraphClient
from icechat.graph.retry import RetryPolicy
from icechat.graph.settings import GRAPH_URL, MICROSOFT_AUTHORITY_HOST, GraphSettings

GRAPH_CONN_ID = "icechat_graph"
# A connection test answers within seconds; the import's ten-minute retry budget would not.
TEST_POLICY = RetryPolicy(budget=20.0)


def graph_settings(conn_id: str = GRAPH_CONN_ID) -> GraphSettings:
    """Settings from the connection: login = client id, password = secret, extras for the rest."""
    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson
    secret = conn.password or None
    certificate = extra.get("certificate") or None
    for value in (secret, certificate):
        if value:
            mask_secret(value)
    return GraphSettings(
        client_id=conn.login or "",
        tenant_id=str(extra.get("tenant_id") or ""),
        client_secret=secret,
        certificate_pem=certificate,
        thumbprint=extra.get("thumbprint") or None,
        authority_host=extra.get("authority_host") or MICROSOFT_AUTHORITY_HOST,
        graph_url=extra.get("graph_url") or GRAPH_URL,
        ca_bundle=extra.get("ca_bundle") or None,
        scope=extra.get("scope") or None,
    )


class IceChatGraphHook(BaseHook):
    """The app registration the connector writes mailboxes with (fields: see the provider info)."""

    conn_name_attr = "icechat_graph_conn_id"
    default_conn_name = GRAPH_CONN_ID
    conn_type = "icechat_graph"
    hook_name = "ICE Chat: Microsoft Graph"

    def __init__(self, icechat_graph_conn_id: str = GRAPH_CONN_ID) -> None:
        super().__init__()
        self.icechat_graph_conn_id = icechat_graph_conn_id

    def get_conn(self) -> GraphSettings:
        """The connection as core settings."""
        return graph_settings(self.icechat_graph_conn_id)

    def test_connection(self) -> tuple[bool, str]:
        """Token, directory and one mailbox; the message says what to fix, never a secret."""
        try:
            with GraphClient(self.get_conn(), policy=TEST_POLICY) as client:
                result = check_graph_app(client)
        except IceChatError as exc:
            return False, str(exc)
        return result.ok, result.detail
