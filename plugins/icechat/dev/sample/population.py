"""The people and persistent rooms of a sample firm, stable for a (firm, seed).

Person ``i`` and room ``i`` depend only on the firm, the seed and ``i``, so a bigger day
draws from a longer population whose start is the same as a smaller day's, and the same
ImId means the same person on every day.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

from icechat.dev.graph_emulator.store import NO_MAILBOX_ANSWERS
from icechat.dev.sample.vocabulary import (
    EXTERNAL_COMPANIES,
    FIRST_NAMES,
    LAST_NAMES,
    PERSISTENT_ROOM_NAMES,
)
from icechat.ice.model import Participant

INTERNAL_SHARE = 0.4
NO_MAILBOX_EVERY = 4  # every 4th of the firm's own people has no Exchange Online mailbox


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters and digits of ``text`` (accents stripped), maybe empty."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum()).lower()


def firm_domain(firm: str) -> str:
    """The firm's own mail domain in sample data."""
    return f"{ascii_slug(firm) or 'firm'}.example"


def short_hash(*parts: object, length: int = 8) -> str:
    """A stable hex tag for ids (not a secret, just a spread)."""
    key = "\x1f".join(str(p) for p in parts).encode()
    return hashlib.sha256(key).hexdigest()[:length]


def person(firm: str, seed: int, index: int, day: date) -> Participant:
    """Person ``index`` of the firm's sample world as the export of ``day`` names them.

    About 40% are the firm's own users, with mail at its domain; the rest are external,
    a third of them without an email. Person 0 changes email on odd days, as ImIds do.
    """
    rng = random.Random(f"{firm}:{seed}:person:{index}")
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    im_id = f"{ascii_slug(first)[:1] or 'u'}{ascii_slug(last) or 'user'}{index}"
    display = f"{first} {last}"
    if rng.random() < 0.05:
        display += " 🚀"
    local = f"{ascii_slug(first) or 'user'}.{ascii_slug(last) or 'x'}{index}"
    if rng.random() < INTERNAL_SHARE:
        if index == 0 and day.toordinal() % 2:
            local = f"{local[:1]}.{ascii_slug(last) or 'x'}{index}"
        return Participant(im_id, display, f"{firm} BANK", f"{local}@{firm_domain(firm)}")
    company, domain = rng.choice(EXTERNAL_COMPANIES)
    email = f"{local}@{domain}" if domain and rng.random() < 0.66 else None
    return Participant(im_id, display, company, email)


def persistent_room(firm: str, seed: int, index: int) -> tuple[str, str]:
    """Id and name of persistent room ``index``."""
    name = PERSISTENT_ROOM_NAMES[index % len(PERSISTENT_ROOM_NAMES)]
    if index >= len(PERSISTENT_ROOM_NAMES):
        name = f"{name} #{index // len(PERSISTENT_ROOM_NAMES) + 1}"
    return f"PCHAT-{short_hash(firm, seed, 'room', index, length=6)}", name


def directory_users(people: Mapping[str, str]) -> list[dict[str, Any]]:
    """The Graph emulator's users for the firm's own people (address -> display name).

    A real tenant holds accounts without an Exchange Online mailbox (unlicensed, on-premises),
    so every 4th person, in address order, has none; they take Graph's two answers for such
    an account in turn (404 ``MailboxNotEnabledForRESTAPI``, 404 ``ResourceNotFound``), so
    eight people or more include both.
    """
    users: list[dict[str, Any]] = []
    for n, email in enumerate(sorted(people)):
        user: dict[str, Any] = {"userPrincipalName": email, "displayName": people[email]}
        if n % NO_MAILBOX_EVERY == NO_MAILBOX_EVERY - 1:
            answer = NO_MAILBOX_ANSWERS[n // NO_MAILBOX_EVERY % len(NO_MAILBOX_ANSWERS)]
            user |= {"hasMailbox": False, "noMailboxAnswer": answer}
        users.append(user)
    return users
