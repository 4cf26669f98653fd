"""A deterministic, streaming generator of realistic ICE Chat export days.

A day is first planned as a short list of conversation plans (type, size, first message
number, forced features); each conversation is then built from its own random stream, so
the day never sits in memory, any conversation can be built alone, and the same
(firm, day, messages, seed) always gives the same items.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import TypeVar

from icechat.dev.sample import vocabulary as v
from icechat.dev.sample.population import firm_domain, persistent_room, person, short_hash
from icechat.exceptions import SampleError
from icechat.ice.model import (
    Attachment,
    ChatItem,
    ConversationSlice,
    ItemKind,
    Participant,
    Room,
    TransferStatus,
    Update,
)

T = TypeVar("T")

DAY_MS = 86_400_000
LONG_TEXT_CHARS = 120_000

# Features every day of enough messages holds at least once, placed by the plan.
FEATURES: tuple[str, ...] = (
    "disclaimer",
    "prefix_disclaimer",
    "system",
    "edit",
    "delete",
    "file",
    "file_failed",
    "file_absent",
    "long",
    *v.SPECIAL_TEXTS,
)

# Background mix of item kinds; what is left over is ordinary chat.
_KIND_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("system", 0.02),
    ("edit", 0.02),
    ("delete", 0.005),
    ("file", 0.03),
    ("file_failed", 0.005),
    ("file_absent", 0.002),
    ("prefix_disclaimer", 0.003),
    ("long", 0.00002),
)


class RoomType(StrEnum):
    """The kinds of conversation ICE exports (the parser takes any ``RoomType`` text)."""

    PERSISTENT = "PersistentChat"
    GROUP = "GroupChat"
    ONE_TO_ONE = "OneToOne"


_SIZES: dict[RoomType, tuple[int, int]] = {
    RoomType.PERSISTENT: (20, 3000),
    RoomType.GROUP: (2, 300),
    RoomType.ONE_TO_ONE: (1, 60),
}
_TYPE_WEIGHTS = ((RoomType.PERSISTENT, 0.15), (RoomType.GROUP, 0.35), (RoomType.ONE_TO_ONE, 0.5))


@dataclass(frozen=True, slots=True)
class ConversationPlan:
    """What one conversation of the day will be, before any item exists."""

    index: int
    room_type: RoomType
    size: int
    first_seq: int
    features: tuple[str, ...]
    pair: tuple[int, int] | None = None
    room_number: int | None = None


@dataclass(frozen=True, slots=True)
class _Presence:
    who: Participant
    enter: datetime
    leave: datetime
    left_early: bool


class SampleDay:
    """One sample day of a firm: its plan, its conversations and its attachment bytes."""

    def __init__(
        self,
        firm: str,
        day: date,
        messages: int,
        seed: int = 0,
        *,
        people: int | None = None,
        zipf: float = 0.0,
    ) -> None:
        if messages < 0:
            raise SampleError(f"--messages must be 0 or more, got {messages}")
        if not (firm.isascii() and firm.isalnum()):
            raise SampleError(f"--firm must be letters and digits (an ICE firm code), got {firm!r}")
        self.firm = firm
        self.day = day
        self.messages = messages
        self.seed = seed
        self.start = datetime.combine(day, time(), tzinfo=UTC)
        if people is not None and people < 10:
            raise SampleError(f"--people must be 10 or more, got {people}")
        if zipf < 0:
            raise SampleError(f"--zipf must be 0 (everyone alike) or more, got {zipf}")
        count = people if people is not None else 120 + messages // 5000
        self._people = [person(firm, seed, i, day) for i in range(count)]
        # A trading floor: person i is in conversations in proportion to 1 / (i + 1) ** zipf,
        # so a few people (and their mailboxes) get most copies; 0 draws everyone alike.
        self._cum_weights = (
            list(itertools.accumulate(1 / (i + 1) ** zipf for i in range(count))) if zipf else None
        )
        self._absent: set[str] = set()
        self.plan: tuple[ConversationPlan, ...] = tuple(self._build_plan())

    # -- planning -------------------------------------------------------------------------

    def _build_plan(self) -> Iterator[ConversationPlan]:
        rng = random.Random(f"{self.firm}:{self.seed}:{self.day}:plan")
        remaining, seq, persistent = self.messages, 0, 0
        cap = max(1, self.messages // 8)
        pairs: set[tuple[int, int]] = set()
        pair_limit = len(self._people) * (len(self._people) - 1) // 4
        features = list(FEATURES)
        index = 0
        while remaining > 0:
            forced = (RoomType.PERSISTENT, RoomType.GROUP, RoomType.ONE_TO_ONE)
            room_type = (
                forced[index] if index < 3 else _weighted(rng, _TYPE_WEIGHTS, RoomType.ONE_TO_ONE)
            )
            if room_type is RoomType.ONE_TO_ONE and len(pairs) >= pair_limit:
                room_type = RoomType.GROUP
            lo, hi = _SIZES[room_type]
            size = max(1, min(rng.randint(lo, hi), cap, remaining))
            pair = room_number = None
            if room_type is RoomType.ONE_TO_ONE:
                pair = self._new_pair(rng, pairs)
            elif room_type is RoomType.PERSISTENT:
                room_number, persistent = persistent, persistent + 1
            reserved = 2 if room_type is RoomType.PERSISTENT else 1
            take = max(0, size - reserved)
            mine, features = tuple(features[:take]), features[take:]
            yield ConversationPlan(index, room_type, size, seq, mine, pair, room_number)
            index, seq, remaining = index + 1, seq + size, remaining - size

    def _pick(self, rng: random.Random, k: int) -> list[int]:
        """``k`` different people's indexes, drawn by the day's shape."""
        if self._cum_weights is None:
            return rng.sample(range(len(self._people)), k)
        chosen: dict[int, None] = {}
        while len(chosen) < k:
            chosen[rng.choices(range(len(self._people)), cum_weights=self._cum_weights)[0]] = None
        return list(chosen)

    def _members(self, rng: random.Random, k: int) -> list[Participant]:
        if self._cum_weights is None:
            return rng.sample(self._people, k)
        return [self._people[i] for i in self._pick(rng, k)]

    def _new_pair(self, rng: random.Random, used: set[tuple[int, int]]) -> tuple[int, int]:
        while True:
            a, b = sorted(self._pick(rng, 2))
            if (a, b) not in used:
                used.add((a, b))
                return a, b

    def split(self, parts: int) -> list[tuple[ConversationPlan, ...]]:
        """The plan cut into ``parts`` runs of whole conversations of about equal size."""
        if parts < 1:
            raise SampleError(f"--parts must be 1 or more, got {parts}")
        plans = self.plan
        if parts > 1 and len(plans) < parts:
            raise SampleError(
                f"{len(plans)} conversations cannot fill {parts} parts; "
                "raise --messages or lower --parts"
            )
        cuts = [0]
        done = 0
        for j, plan in enumerate(plans):
            k = len(cuts)  # the part a cut here would start
            if k < parts and j > cuts[-1]:
                due = done >= k * self.messages / parts
                if due or len(plans) - j <= parts - k:  # or just enough left for the rest
                    cuts.append(j)
            done += plan.size
        cuts.append(len(plans))
        return [plans[a:b] for a, b in itertools.pairwise(cuts)]

    # -- conversations --------------------------------------------------------------------

    def slices(
        self, plans: Iterable[ConversationPlan] | None = None
    ) -> Iterator[ConversationSlice]:
        """Build the given conversations (default: the whole day), one at a time."""
        for plan in self.plan if plans is None else plans:
            yield self._conversation(plan)

    def _conversation(self, plan: ConversationPlan) -> ConversationSlice:
        rng = random.Random(f"{self.firm}:{self.seed}:{self.day}:conversation:{plan.index}")
        room, start, end, presence = self._room(rng, plan)
        span = int((end - start) / timedelta(milliseconds=1))
        # Some producers only keep whole seconds: a share of conversations do too.
        grain = 1000 if rng.random() < 0.25 else 1
        offsets = sorted(rng.randrange(span + 1) // grain * grain for _ in range(plan.size))
        kinds = self._kinds(rng, plan)
        recent: deque[ChatItem] = deque(maxlen=32)
        items = []
        for i, (offset, kind) in enumerate(zip(offsets, kinds, strict=True)):
            when = start + timedelta(milliseconds=offset)
            present = [p.who for p in presence if p.enter <= when <= p.leave]
            message_id = f"M-{self.day:%Y%m%d}-{plan.first_seq + i:09d}"
            item = self._item(rng, kind, room, message_id, when, present, recent)
            if item.kind is ItemKind.CHAT and item.update is None:
                recent.append(item)
            items.append(item)
        entered = tuple((p.who, p.enter) for p in presence)
        left = tuple(
            (p.who, p.leave) for p in sorted(presence, key=lambda p: (p.leave, not p.left_early))
        )
        return ConversationSlice(room, start, end, entered, left, tuple(items))

    def _room(
        self, rng: random.Random, plan: ConversationPlan
    ) -> tuple[Room, datetime, datetime, list[_Presence]]:
        day_end = self.start + timedelta(milliseconds=DAY_MS - 1)
        name: str | None
        if plan.room_type is RoomType.PERSISTENT:
            assert plan.room_number is not None
            room_id, name = persistent_room(self.firm, self.seed, plan.room_number)
            members = self._members(rng, min(len(self._people), rng.randint(3, 10)))
            start, end = self.start, day_end
        else:
            longest = 4 * 3_600_000 if plan.room_type is RoomType.GROUP else 2 * 3_600_000
            duration = rng.randint(30_000, longest)
            start = self.start + timedelta(milliseconds=rng.randrange(DAY_MS - duration))
            end = start + timedelta(milliseconds=duration)
            if plan.room_type is RoomType.GROUP:
                room_id = f"GCHAT-{short_hash(self.firm, self.seed, self.day, plan.index)}"
                name = rng.choice(v.GROUP_ROOM_NAMES) if rng.random() < 0.75 else None
                members = self._members(rng, rng.randint(3, 6))
            else:
                assert plan.pair is not None
                a, b = plan.pair
                members = [self._people[a], self._people[b]]
                room_id = f"O2O-{short_hash(self.firm, members[0].im_id, members[1].im_id)}"
                name = None
        presence = []
        for n, who in enumerate(members):
            enter, leave, early = start, end, False
            if n >= 2 and rng.random() < 0.3:
                enter = start + (end - start) * rng.random()
                enter = enter.replace(microsecond=enter.microsecond // 1000 * 1000)
            elif n >= 2 and rng.random() < 0.3:
                leave = start + (end - start) * rng.random()
                leave = leave.replace(microsecond=leave.microsecond // 1000 * 1000)
                early = True
            presence.append(_Presence(who, enter, leave, early))
        presence.sort(key=lambda p: p.enter)
        room = Room(self.firm, room_id, name, plan.room_type.value)
        return room, start, end, presence

    def _kinds(self, rng: random.Random, plan: ConversationPlan) -> list[str]:
        kinds = [_weighted(rng, _KIND_WEIGHTS, default="chat") for _ in range(plan.size)]
        first = 0
        if plan.room_type is RoomType.PERSISTENT:
            kinds[0], first = "disclaimer", 1
        if plan.size > first:
            kinds[first] = "chat"
        slots = rng.sample(range(first + 1, plan.size), len(plan.features))
        for slot, feature in zip(sorted(slots), plan.features, strict=True):
            kinds[slot] = feature
        return kinds

    def _item(
        self,
        rng: random.Random,
        kind: str,
        room: Room,
        message_id: str,
        when: datetime,
        present: Sequence[Participant],
        recent: Sequence[ChatItem],
    ) -> ChatItem:
        sender = rng.choice(present)
        if kind in ("edit", "delete") and recent:
            original = rng.choice(recent)
            sender = original.sender
            others = tuple(p for p in present if p != sender)
            if kind == "edit":
                text, update = f"{original.text} (corrected: {self._quote(rng)})", Update.EDITED
            else:
                text, update = "", Update.DELETED
            return ChatItem(
                room,
                message_id,
                ItemKind.CHAT,
                when,
                sender,
                others,
                text,
                update,
                original.message_id,
            )
        others = tuple(p for p in present if p != sender)
        if kind.startswith("file"):
            attachment = self._attachment(rng, kind, message_id)
            return ChatItem(
                room,
                message_id,
                ItemKind.FILE_TRANSFER,
                when,
                sender,
                others,
                "",
                attachment=attachment,
            )
        item_kind, text = ItemKind.CHAT, self._chat_text(rng)
        if kind == "disclaimer":
            item_kind, text = ItemKind.DISCLAIMER, v.DISCLAIMER_TEXT.format(firm=self.firm)
        elif kind == "prefix_disclaimer":
            item_kind, text = ItemKind.DISCLAIMER, v.PREFIX_DISCLAIMER_TEXT.format(firm=self.firm)
        elif kind == "system":
            template = rng.choice(v.SYSTEM_TEXTS)
            item_kind = ItemKind.SYSTEM
            text = template.format(name=sender.display_name, room=room.room_name or room.room_id)
        elif kind == "long":
            text = self._long_text(rng)
        elif kind in v.SPECIAL_TEXTS:
            text = v.SPECIAL_TEXTS[kind]
        return ChatItem(room, message_id, item_kind, when, sender, others, text)

    def _attachment(self, rng: random.Random, kind: str, message_id: str) -> Attachment:
        name = rng.choice(v.FILE_NAMES)
        path: str | None = f"attachments/{short_hash(message_id, length=10)}-{name}"
        size: int | None = rng.randint(100, 50_000)
        status = TransferStatus.COMPLETED
        if kind == "file_failed":
            status = TransferStatus.FAILED
            if rng.random() < 0.5:
                path, size = None, None
        elif kind == "file_absent":
            self._absent.add(message_id)
        return Attachment(name, path, size, status)

    def attachment_bytes(self, message_id: str, attachment: Attachment) -> bytes | None:
        """A completed transfer's file, or ``None`` for those left out of the zip on purpose."""
        if attachment.size is None or message_id in self._absent:
            return None
        key = f"{self.firm}:{self.seed}:{message_id}".encode()
        return hashlib.shake_256(key).digest(attachment.size)

    # -- texts ----------------------------------------------------------------------------

    @staticmethod
    def _quote(rng: random.Random) -> str:
        price = rng.uniform(0.5, 120.0)
        spread = rng.choice((0.005, 0.01, 0.025, 0.25))
        side = rng.choice(("bid", "offer", "mid", "px"))
        return (
            f"{side} {rng.choice(v.INSTRUMENTS)} {price:.3f} / {price + spread:.3f}, "
            f"{rng.choice((5, 10, 25, 50, 100, 250))}m"
        )

    def _chat_text(self, rng: random.Random) -> str:
        roll = rng.random()
        if roll < 0.6:
            return self._quote(rng)
        if roll < 0.95:
            return rng.choice(v.PHRASES)
        return rng.choice(tuple(v.SPECIAL_TEXTS.values()))

    def _long_text(self, rng: random.Random) -> str:
        lines = ["Run sheet — pasted from the desk blotter (long message) 📋"]
        size = len(lines[0])
        while size < LONG_TEXT_CHARS:
            line = f"{len(lines):05d} {self._quote(rng)} {rng.choice(v.PHRASES)}"
            lines.append(line)
            size += len(line) + 1
        return "\n".join(lines)


def _weighted(rng: random.Random, table: Sequence[tuple[T, float]], default: T) -> T:
    roll = rng.random()
    for value, weight in table:
        if roll < weight:
            return value
        roll -= weight
    return default


def generate_day(firm: str, day: date, messages: int, seed: int = 0) -> Iterator[ConversationSlice]:
    """The day's conversation slices in order, built one at a time."""
    return SampleDay(firm, day, messages, seed).slices()


def own_people(firm: str, days: Iterable[date], messages: int, seed: int = 0) -> dict[str, str]:
    """Email -> display name of the firm's own people in the chat items of the sample ``days``.

    They are who gets a mailbox in the emulated tenant (the demo's, a test's); the other
    firms' traders stay unmapped, as external participants do.
    """
    domain = "@" + firm_domain(firm)
    people: dict[str, str] = {}
    for day in days:
        for piece in generate_day(firm, day, messages, seed):
            for item in piece.items:
                for who in item.participants:
                    if who.email and who.email.lower().endswith(domain):
                        people.setdefault(who.email, who.display_name)
    return people
