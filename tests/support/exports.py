"""Small hand-made export parts, for tests that need a part's bytes laid out just so."""

from __future__ import annotations

_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<FileDump FirmCode="ACME01" ExportDate="2026-11-26" SchemaVersion="1.0">\n'
)


def conversation(room: str, contents: list[str]) -> str:
    """A conversation of ``room`` with one message per content (markup, inserted as it is)."""
    messages = "".join(
        f"<Message><MessageID>{room}-{n}</MessageID>"
        "<DateTimeUTC>2026-11-26T09:00:00Z</DateTimeUTC>"
        "<Sender><ImId>jdoe1</ImId><DisplayName>John Doe</DisplayName></Sender>"
        "<Recipient><ImId>asmith7</ImId><DisplayName>Ann Smith</DisplayName></Recipient>"
        f"<Content>{content}</Content></Message>\n"
        for n, content in enumerate(contents)
    )
    return (
        f"  <Conversation><RoomID>{room}</RoomID><RoomType>PersistentChat</RoomType>\n"
        f"{messages}  </Conversation>\n"
    )


def export_part(*parts: str) -> bytes:
    """A whole part: the declaration and root, then ``parts`` (conversations, comments)."""
    return (_HEAD + "".join(parts) + "</FileDump>\n").encode("utf-8")
