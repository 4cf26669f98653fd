"""How a participant is shown in every rendering, computed once per distinct participant.

The parser builds a new :class:`Participant` per chat item, so a dataclass-keyed cache
would pay Python-level hashing and equality on every lookup; this one is keyed on the
field tuple (hashed and compared in C) and holds all forms the renderers need.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape

from icechat.ice.model import Participant
from icechat.render.addresses import address_of
from icechat.render.headers import mailbox
from icechat.render.text import header_text

_MAX_CACHED = 200_000


@dataclass(frozen=True, slots=True)
class Shown:
    """A participant's name, address and labels, each safe for where it goes."""

    name: str  # display name, else ImId; one header line, no outer spaces
    address: str  # export email, or the placeholder (see icechat.render.addresses)
    label: str  # "Name (Company, ImId)" for text bodies
    html_label: str  # the same, HTML-escaped
    mailbox: str  # "Name <address>" as an RFC 5322 header piece
    graph_json: str  # the Graph recipient object, serialised


_cache: dict[tuple[str, str, str, str | None], Shown] = {}


def shown(participant: Participant) -> Shown:
    """The participant's :class:`Shown` forms (cached)."""
    p = participant
    key = (p.im_id, p.display_name, p.company, p.email)
    found = _cache.get(key)
    if found is None:
        if len(_cache) >= _MAX_CACHED:
            _cache.clear()
        name = header_text(p.display_name).strip() or header_text(p.im_id).strip()
        address = address_of(p)
        label = header_text(p.label)
        graph = json.dumps({"emailAddress": {"name": name, "address": address}})
        found = _cache[key] = Shown(
            name, address, label, escape(label), mailbox(name, address), graph
        )
    return found
