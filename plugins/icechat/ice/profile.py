"""The export profile: every element and attribute name of the ICE Chat XML in one table.

A firm whose files use other names adapts the parser with a profile JSON file (keys as in
:class:`Profile`) instead of touching code; see :func:`load_profile`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Profile:
    """Element and attribute names of one export family (default: ICE's FileDump)."""

    root: str = "FileDump"
    root_firm_attr: str = "FirmCode"
    root_date_attr: str = "ExportDate"
    root_schema_attr: str = "SchemaVersion"
    conversation: str = "Conversation"
    room_id: str = "RoomID"
    room_name: str = "RoomName"
    room_type: str = "RoomType"
    start_time: str = "StartTimeUTC"
    end_time: str = "EndTimeUTC"
    participant_entered: str = "ParticipantEntered"
    participant_left: str = "ParticipantLeft"
    message: str = "Message"
    message_type_attr: str = "Type"
    file_transfer: str = "FileTransfer"
    message_id: str = "MessageID"
    date_time: str = "DateTimeUTC"
    sender: str = "Sender"
    recipient: str = "Recipient"
    im_id: str = "ImId"
    display_name: str = "DisplayName"
    company_name: str = "CompanyName"
    email: str = "Email"
    sender_email: str = "SenderEmail"
    recipient_email: str = "RecipientEmail"
    content: str = "Content"
    updated_type: str = "UpdatedType"
    original_message_id: str = "OriginalMessageID"
    user_file_name: str = "UserFileName"
    file_name: str = "FileName"
    file_size: str = "FileSize"
    status: str = "Status"
    # Attribute and element values with a meaning.
    type_chat: str = "Chat"
    type_system: str = "System"
    type_disclaimer: str = "Disclaimer"
    updated_edited: str = "Edited"
    updated_deleted: str = "Deleted"
    status_completed: str = "Completed"
    status_failed: str = "Failed"
    disclaimer_prefix: str = "***"
    disclaimer_word: str = "disclaimer"

    @property
    def item_elements(self) -> frozenset[str]:
        """Elements that are chat items (what the marker's item count counts)."""
        return frozenset({self.message, self.file_transfer})


DEFAULT_PROFILE = Profile()


def load_profile(path: str | Path) -> Profile:
    """Read a JSON object of overrides (keys are :class:`Profile` field names)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    known = {f.name for f in fields(Profile)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown profile keys {unknown}; valid keys are {sorted(known)}")
    return replace(DEFAULT_PROFILE, **{k: str(v) for k, v in data.items()})
