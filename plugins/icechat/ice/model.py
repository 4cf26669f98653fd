"""Immutable types for what an export holds: participants, chat items, conversation slices."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from enum import StrEnum
from operator import attrgetter
from typing import Any


class ItemKind(StrEnum):
    """What a chat item is; ``inspect`` counts items by these values."""

    CHAT = "chat"
    SYSTEM = "system"
    DISCLAIMER = "disclaimer"
    FILE_TRANSFER = "file_transfer"


class Update(StrEnum):
    """A message that changes an earlier one (named by ``original_id``)."""

    EDITED = "edited"
    DELETED = "deleted"


class TransferStatus(StrEnum):
    """Outcome of a file transfer as ICE recorded it."""

    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Participant:
    """One ICE Chat user as the export names them (email is often absent for externals)."""

    im_id: str
    display_name: str = ""
    company: str = ""
    email: str | None = None

    @property
    def label(self) -> str:
        """``Name (Company, ImId)`` as shown in mail bodies."""
        extra = ", ".join(x for x in (self.company, self.im_id) if x)
        name = self.display_name or self.im_id
        return f"{name} ({extra})" if extra else name


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file transfer's file: the name the user saw and where it sits in a zip part."""

    user_file_name: str
    path: str | None
    size: int | None
    status: TransferStatus


@dataclass(frozen=True, slots=True)
class Room:
    """The conversation a chat item belongs to."""

    firm: str
    room_id: str
    room_name: str | None
    room_type: str


@dataclass(frozen=True, slots=True)
class ChatItem:
    """One ``Message`` or ``FileTransfer``: what becomes one email per mailbox."""

    room: Room
    message_id: str
    kind: ItemKind
    time: datetime
    sender: Participant
    recipients: tuple[Participant, ...]
    text: str
    update: Update | None = None
    original_id: str | None = None
    attachment: Attachment | None = None

    @property
    def day(self) -> date:
        """The UTC day the item belongs to."""
        return self.time.date()

    @property
    def participants(self) -> tuple[Participant, ...]:
        """Sender first, then the recipients, in export order."""
        return (self.sender, *self.recipients)

    def __reduce__(self) -> tuple[type[ChatItem], tuple[Any, ...]]:
        """Pickled as its fields in order: ``icechat render`` hands every item to a writer
        process, and a slotted dataclass's own state methods take twice as long."""
        return ChatItem, _chat_item_fields(self)


_chat_item_fields = attrgetter(*(f.name for f in fields(ChatItem)))


@dataclass(frozen=True, slots=True)
class ConversationSlice:
    """One day's slice of a conversation, for transcript mode."""

    room: Room
    start: datetime | None
    end: datetime | None
    entered: tuple[tuple[Participant, datetime | None], ...]
    left: tuple[tuple[Participant, datetime | None], ...]
    items: tuple[ChatItem, ...]
