"""The ``icechat_graph`` connection as core GraphSettings, with its secrets masked in task logs."""

from __future__ import annotations

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from icechat.graph_settings import GRAPH_URL, MICROSOFT_AUTHORITY_HOST, GraphSettings

GRAPH_CONN_ID = "icechat_graph"


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
    )
