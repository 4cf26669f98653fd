"""The ``icechat_pgp`` connection as a :class:`icechat.pgp.PgpKey` (or none configured)."""

from __future__ import annotations

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from icechat.exceptions import PgpKeyError
from icechat.pgp import PgpKey

CONN_ID = "icechat_pgp"


def pgp_key(conn_id: str = CONN_ID) -> PgpKey | None:
    """The firm's secret key and passphrase; ``None`` when the connection does not exist."""
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    secret = conn.extra_dejson.get("private_key")
    if not secret:
        raise PgpKeyError(
            f"connection {conn_id} has no private_key extra: put the ASCII-armoured secret key "
            "there (and the passphrase in its password)"
        )
    return PgpKey(secret_armored=secret, passphrase=conn.password or "")
