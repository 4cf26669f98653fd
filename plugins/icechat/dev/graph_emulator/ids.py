"""Message ids in the two forms Graph gives: the immutable id, or the default REST id.

``Prefer: IdType="ImmutableId"`` applies only to the request it is on
(https://learn.microsoft.com/en-us/graph/outlook-immutable-id), so a ``$batch`` part needs
its own. Without it a message id comes back as a REST id, which here names the folder the
item is in (it changes when the item moves, as Exchange's does) and starts ``AAMkAG``; an
immutable id starts ``AAkALgAA`` (the page's translateExchangeIds example). Either form is
accepted in a URL. Folders have one id form: container types do not support immutable ids.
"""

from __future__ import annotations

import base64
import binascii
import re

from icechat.dev.graph_emulator.store import new_graph_id

IMMUTABLE_PREFIX = "AAkALgAA"
REST_PREFIX = "AAMkAG"
_PREFER_IMMUTABLE = re.compile(r'(?:^|[,;\s])idtype\s*=\s*"?immutableid"?', re.IGNORECASE)


def new_message_id() -> str:
    """A fresh immutable message id (what the store keeps)."""
    return new_graph_id(IMMUTABLE_PREFIX)


def wants_immutable(prefer: str | None) -> bool:
    """Whether a request's ``Prefer`` header asks for immutable ids."""
    return bool(prefer) and _PREFER_IMMUTABLE.search(prefer or "") is not None


def rest_id(immutable: str, folder_id: str) -> str:
    """The REST id of the message ``immutable`` while it is in ``folder_id``."""
    raw = f"{folder_id}\n{immutable}".encode()
    return REST_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_rest_id(value: str) -> tuple[str, str] | None:
    """``(folder_id, immutable_id)`` a REST id names, or None if it is not one of ours."""
    if not value.startswith(REST_PREFIX):
        return None
    text = value[len(REST_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    folder_id, sep, immutable = raw.partition("\n")
    return (folder_id, immutable) if sep and immutable.startswith(IMMUTABLE_PREFIX) else None
