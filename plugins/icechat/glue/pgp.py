"""The ``icechat_pgp`` connection as a :class:`icechat.ice.pgp.PgpKey` (or none configured).

:class:`IceChatPgpHook` is the connection type's hook in the Airflow UI: its "Test" proves
the passphrase opens the key.
"""

from __future__ import annotations

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from icechat.exceptions import IceChatError, PgpKeyError
from icechat.ice.pgp import PgpKey

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


class IceChatPgpHook(BaseHook):
    """The firm's secret key for ICE's encrypted parts (fields: see the provider info)."""

    conn_name_attr = "icechat_pgp_conn_id"
    default_conn_name = CONN_ID
    conn_type = "icechat_pgp"
    hook_name = "ICE Chat: PGP key"

    def __init__(self, icechat_pgp_conn_id: str = CONN_ID) -> None:
        super().__init__()
        self.icechat_pgp_conn_id = icechat_pgp_conn_id

    def get_conn(self) -> PgpKey | None:
        """The key and passphrase of the connection."""
        return pgp_key(self.icechat_pgp_conn_id)

    def test_connection(self) -> tuple[bool, str]:
        """Import the key into a throwaway keyring and open it with the passphrase."""
        from icechat.checks import check_pgp

        try:
            key = self.get_conn()
        except IceChatError as exc:
            return False, str(exc)
        if key is None:
            return False, f"connection {self.icechat_pgp_conn_id} does not exist"
        result = check_pgp(key)
        return result.ok, result.detail
