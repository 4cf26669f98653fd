"""The custom user-mapping CSV of the spec: ``ImId,Mailbox`` with a header row.

Every problem is reported with its line number, all at once, so an administrator fixes the
file in one pass: missing columns, an ImId mapped to two mailboxes (both lines), an invalid
address, bad encoding.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field

from icechat.exceptions import MappingFileError
from icechat.render.addresses import is_address

IMID_COLUMN = "imid"
MAILBOX_COLUMN = "mailbox"


@dataclass(frozen=True, slots=True)
class MappingProblem:
    """One thing wrong with the file, with the line(s) it is on."""

    line: int
    message: str

    def render(self, name: str) -> str:
        return f"{name}:{self.line}: {self.message}"


@dataclass
class MappingTable:
    """ImId -> mailbox (lower-cased address) with the line each came from."""

    name: str
    entries: dict[str, tuple[str, int]] = field(default_factory=dict)
    problems: list[MappingProblem] = field(default_factory=list)
    rows: int = 0

    def mailbox_for(self, im_id: str) -> str | None:
        entry = self.entries.get(im_id)
        return entry[0] if entry else None

    @property
    def mailboxes(self) -> set[str]:
        return {mailbox for mailbox, _ in self.entries.values()}

    def raise_if_invalid(self) -> None:
        """Refuse to run on a file with problems (a wrong mapping misfiles records)."""
        if self.problems:
            listed = "\n".join(p.render(self.name) for p in self.problems[:50])
            more = len(self.problems) - 50
            tail = f"\n... and {more} more" if more > 0 else ""
            raise MappingFileError(
                f"{self.name}: {len(self.problems)} problem(s) in the user-mapping file; "
                f"fix them (see `icechat validate-mapping`) and re-run:\n{listed}{tail}"
            )


def parse_mapping(data: bytes, name: str) -> MappingTable:
    """Read a mapping file's bytes; problems are collected in the table, not raised."""
    table = MappingTable(name=name)
    text = _decode(data, table)
    if text is None:
        return table
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in row]
            missing = [c for c in ("ImId", "Mailbox") if c.lower() not in header]
            if missing:
                table.problems.append(
                    MappingProblem(
                        line,
                        f"header {row!r} lacks the column(s) {missing}; "
                        "the first row must name ImId and Mailbox",
                    )
                )
                return table
            imid_at, mailbox_at = header.index(IMID_COLUMN), header.index(MAILBOX_COLUMN)
            continue
        table.rows += 1
        _add_row(table, row, line, imid_at, mailbox_at)
    if header is None:
        table.problems.append(
            MappingProblem(1, "the file is empty; it needs an ImId,Mailbox header")
        )
    return table


def _decode(data: bytes, table: MappingTable) -> str | None:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        table.problems.append(
            MappingProblem(
                line,
                f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                "save the file as UTF-8",
            )
        )
        return None


def _add_row(table: MappingTable, row: list[str], line: int, imid_at: int, mailbox_at: int) -> None:
    if len(row) <= max(imid_at, mailbox_at):
        table.problems.append(
            MappingProblem(line, f"row has {len(row)} column(s); ImId and Mailbox are required")
        )
        return
    im_id = row[imid_at].strip()
    mailbox = row[mailbox_at].strip()
    if not im_id:
        table.problems.append(MappingProblem(line, "ImId is empty"))
        return
    if not is_address(mailbox):
        table.problems.append(
            MappingProblem(line, f"Mailbox {mailbox!r} of ImId {im_id!r} is not an email address")
        )
        return
    mailbox = mailbox.lower()
    previous = table.entries.get(im_id)
    if previous is None:
        table.entries[im_id] = (mailbox, line)
    elif previous[0] != mailbox:
        table.problems.append(
            MappingProblem(
                line,
                f"ImId {im_id!r} is mapped to {previous[0]} on line {previous[1]} and to "
                f"{mailbox} on line {line}; keep one",
            )
        )
