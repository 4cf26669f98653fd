"""How participants are shown in every rendering, computed once per distinct participant
and once per distinct cast (an item's sender and recipients).

A dataclass-keyed cache would pay Python-level hashing and equality on every lookup, so
:func:`shown` is keyed on the field tuple (hashed and compared in C). The parser hands out
one :class:`Participant` object per person of a part, so the items of a room share the
same objects and :func:`cast_of` can key on their identities (see there why that is safe).
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
_MAX_CASTS = 10_000  # about 1 kB each at five people
NOBODY = "(nobody else)"


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


@dataclass(frozen=True, slots=True)
class Cast:
    """An item's sender and recipients in the forms every renderer shows them together."""

    sender: Shown
    text_to: str  # recipients' labels for the text body, or NOBODY
    html_to: str  # the same, HTML-escaped
    mail_to: str  # the To header's value, "" when nobody else
    graph_to: str  # the Graph toRecipients members, serialised and comma-separated
    names: tuple[str, ...]  # everyone's name, each ImId once, by ImId (names a 1:1 room)


# Keyed on the participants' ids: each entry holds its participants, and no two live objects
# share an id, so a key found names exactly the objects it was made for.
_casts: dict[tuple[int, ...], tuple[tuple[Participant, ...], Cast]] = {}


def cast_of(sender: Participant, recipients: tuple[Participant, ...]) -> Cast:
    """The :class:`Cast` of ``sender`` writing to ``recipients`` (cached)."""
    key = (id(sender), *map(id, recipients))
    found = _casts.get(key)
    if found is None:
        if len(_casts) >= _MAX_CASTS:
            _casts.clear()
        to = [shown(p) for p in recipients]
        unique = {p.im_id: p for p in (sender, *recipients)}
        cast = Cast(
            sender=shown(sender),
            text_to="; ".join([s.label for s in to]) or NOBODY,
            html_to="; ".join([s.html_label for s in to]) or NOBODY,
            mail_to=",\r\n ".join([s.mailbox for s in to]),
            graph_to=", ".join([s.graph_json for s in to]),
            names=tuple(shown(unique[k]).name for k in sorted(unique)),
        )
        found = _casts[key] = ((sender, *recipients), cast)
    return found[1]
