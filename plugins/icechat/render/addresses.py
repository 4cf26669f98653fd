"""What counts as an email address, and the address a participant appears under.

The one address rule (:func:`is_address`): a plain ASCII ``local@domain`` of RFC 5322
atoms, at most 254 characters. The renderer, the mapping file, the automatic mapping and
the settings all judge addresses by it, so a participant is looked up in the directory under
exactly the address its items carry.

ICE gives an email for most participants but not all (external users often have none),
and what it gives is not always a usable address. Graph and RFC 5322 both need one, so a
participant without one gets a deterministic placeholder ``{ImId}@ice.{MESSAGE_ID_DOMAIN}``
(a reserved TLD: it never routes). The display name stays the real name, and the body shows
name, company and ImId.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from icechat.graph.properties import MESSAGE_ID_DOMAIN
from icechat.ice.model import Participant

PLACEHOLDER_DOMAIN = f"ice.{MESSAGE_ID_DOMAIN}"

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\Z")
_UNSAFE_LOCAL = re.compile(r"[^A-Za-z0-9._+-]+|\.{2,}")
_MAX_LOCAL = 64
_MAX_ADDRESS = 254


def is_address(text: str) -> bool:
    """Whether ``text`` is an email address by the rule above (its mailbox may still not exist)."""
    return len(text) <= _MAX_ADDRESS and _ADDRESS.match(text) is not None


def placeholder_address(im_id: str) -> str:
    """``{ImId}@ice.{MESSAGE_ID_DOMAIN}``; an ImId that is no plain atom gets a hash suffix.

    The suffix keeps two ImIds that differ only in unsafe characters apart.
    """
    local = _UNSAFE_LOCAL.sub("_", im_id).strip("._")
    if local != im_id or not local or len(local) > _MAX_LOCAL:
        digest = hashlib.sha256(im_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        local = f"{local[: _MAX_LOCAL - 11] or 'ice'}.{digest}"
    return f"{local}@{PLACEHOLDER_DOMAIN}"


@lru_cache(maxsize=65536)
def address_of(participant: Participant) -> str:
    """The participant's export email when it is a plain address, else the placeholder."""
    email = (participant.email or "").strip()
    if email and is_address(email):
        return email
    return placeholder_address(participant.im_id)
