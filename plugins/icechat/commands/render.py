"""``icechat render FILE... --eml DIR``: a dry run that writes the emails as ``.eml`` files.

The mail items are those of the DAG's parse+render (:func:`icechat.render.day.mail_items`):
each file is what the Graph import would create (same ``Message-ID`` as its
``internetMessageId``), named ``{dedupe key}.eml``, so a re-run rewrites the same files, and
a room-day that spans two parts gives two files, as it gives two items in the mailbox.

The files are written once each, plainly, into ``DIR.partial/``, which becomes ``DIR`` when
every part is done (:class:`icechat.files.StagedFolder`): a failed run leaves ``DIR`` as it
was. The work is done by :data:`WRITERS` other processes. In message mode a plain part is cut
into as many ranges (:mod:`icechat.ice.ranges`), and each process parses one, rendering and
writing its items: no item crosses between processes. When a range cannot be read (the part
is damaged, or a cut fell somewhere unsafe), the whole run starts again reading each part
whole, so that the user gets the part's own error with its true line, or every item right.
A part that cannot be cut (compressed, one conversation) is parsed here, and each chat item
goes with its file to a writer process, which renders it and writes its file meanwhile. A
transcript needs its whole conversation, so transcripts are rendered here and only written
elsewhere.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from icechat.exceptions import IceChatError, RenderOutputError
from icechat.files import PRIVATE, Maker, StagedFolder, write_each
from icechat.ice.parser import PartReader, read_part
from icechat.ice.ranges import PartRange, cut_part, read_range
from icechat.render import MESSAGE, MODES, TRANSCRIPT
from icechat.render.day import mail_items
from icechat.render.eml import eml_name, message_eml, to_eml
from icechat.render.mail import item_file

log = logging.getLogger(__name__)
# Processes parsing (a range each), rendering and writing the files: two keep a two-core
# machine busy (they take turns creating files: icechat.files).
WRITERS = 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "render",
        help="dry run: write one .eml per chat item (or per conversation-day)",
        description=(
            "Read decrypted export parts (plain, .gz, .zip) and write each email the import "
            "would create as an RFC 5322 .eml file named by its dedupe key."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--eml", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=MESSAGE,
        help="message: one email per chat item (default); transcript: one per conversation-day",
    )
    parser.set_defaults(func=run)


def _write_failure(exc: OSError | BrokenProcessPool, out: Path) -> RenderOutputError:
    """A failed write (of this file or one handed over earlier) as the user's error."""
    if isinstance(exc, BrokenProcessPool):
        return RenderOutputError(
            f"a process writing the .eml files stopped unexpectedly (killed, or out of "
            f"memory?); nothing was written to {out}: run the command again"
        )
    return RenderOutputError(
        f"{exc.filename}: cannot write ({exc.strerror}); nothing was written to {out}: "
        "free space or choose another folder"
    )


@contextmanager
def _writing(out: Path) -> Iterator[None]:
    try:
        yield
    except (OSError, BrokenProcessPool) as exc:
        raise _write_failure(exc, out) from exc


@dataclass
class _Tally:
    """What the run wrote, as its summary reports it."""

    chat_items: int = 0
    eml_written: int = 0
    room_days_continued: int = 0
    files_not_attached: int = 0


def _messages(part: PartReader, folder: StagedFolder, tally: _Tally, out: Path) -> None:
    """Hand each chat item, with its file read from the part, to the writers to render."""
    source = part.attachments
    for item in part.items():
        file = item_file(item, source)
        mail_file, missing, _ = file
        size = len(item.text) + (len(mail_file.data) if mail_file is not None else 0)
        try:  # not _writing: a context manager per item costs 2 µs, 3% of parsing it
            folder.write_made(message_eml, (item, file), size)
        except (OSError, BrokenProcessPool) as exc:
            raise _write_failure(exc, out) from exc
        tally.chat_items += 1
        tally.eml_written += 1
        tally.files_not_attached += missing is not None


class _RangeUnreadable(Exception):
    """A writer process could not read its range of a cut part (the reason as text: the
    parser's own errors do not cross between processes)."""


class _CutFailed(Exception):
    """A range of a cut part could not be read: the run starts again, reading parts whole."""


def _render_range(folder: str, mode: int, piece: PartRange) -> _Tally:
    """In a writer process: parse one range of a plain part, render each chat item and write
    its file; return what it wrote."""
    tally = _Tally()

    def files(part: PartReader) -> Iterator[tuple[Maker, tuple[Any, ...], int]]:
        for item in part.items():
            file = item_file(item, part.attachments)
            tally.chat_items += 1
            tally.files_not_attached += file[1] is not None
            yield message_eml, (item, file), len(item.text)

    try:
        with read_range(piece) as part:
            write_each(folder, mode, files(part))
    except IceChatError as exc:
        raise _RangeUnreadable(str(exc)) from None
    tally.eml_written = tally.chat_items
    return tally


def _messages_in_ranges(
    name: str, pieces: list[PartRange], folder: StagedFolder, tally: _Tally, out: Path
) -> None:
    """Give each range of a cut part to a writer process, and add up what they wrote."""
    log.info("%s: read in %d ranges side by side", name, len(pieces))
    done = [folder.run_in_writer(_render_range, piece) for piece in pieces]
    for future in done:
        try:
            wrote = future.result()
        except BrokenProcessPool as exc:
            raise _write_failure(exc, out) from exc
        except Exception as exc:  # a file not written, else the part's own error or a bad cut
            in_folder = str(getattr(exc, "filename", "")).startswith(f"{folder.staging}{os.sep}")
            if isinstance(exc, OSError) and in_folder:
                raise _write_failure(exc, out) from exc
            raise _CutFailed(f"{name}: {exc}") from exc
        tally.chat_items += wrote.chat_items
        tally.eml_written += wrote.eml_written
        tally.files_not_attached += wrote.files_not_attached


def _transcripts(
    name: str, part: PartReader, folder: StagedFolder, tally: _Tally, out: Path, seen: set[str]
) -> None:
    """Render each conversation-day here (it needs its whole conversation), then hand it over."""
    for rendered in mail_items(part, part.attachments, TRANSCRIPT, seen):
        mail = rendered.mail
        if rendered.continued:
            tally.room_days_continued += 1
            log.info(
                "%s: room %s on %s began in an earlier part; this slice is its own .eml",
                name,
                mail.room.room_id,
                mail.day,
            )
        with _writing(out):
            folder.write(eml_name(mail.key), to_eml(mail))
        tally.chat_items += mail.item_count
        tally.eml_written += 1
        tally.files_not_attached += len(mail.absent_files)


def run(args: argparse.Namespace) -> int:
    if args.mode == MESSAGE:
        try:
            return _run(args, cut=True)
        except _CutFailed as failed:
            log.info("%s; reading every part whole", failed)
    return _run(args, cut=False)


def _run(args: argparse.Namespace, cut: bool) -> int:
    out: Path = args.eml
    seen: set[str] = set()  # transcript keys, across the parts given
    tally = _Tally()
    folder = StagedFolder(out, PRIVATE, writers=WRITERS)
    try:
        folder.open()
    except OSError as exc:
        raise RenderOutputError(
            f"{out}: cannot create the output folder ({exc.strerror}); choose a writable folder"
        ) from exc
    with folder:
        for name in args.files:
            pieces = cut_part(Path(name), WRITERS) if cut else []
            if len(pieces) > 1:
                _messages_in_ranges(name, pieces, folder, tally, out)
            else:
                with read_part(name) as part:
                    if args.mode == MESSAGE:
                        _messages(part, folder, tally, out)
                    else:
                        _transcripts(name, part, folder, tally, out, seen)
            log.info("%s: rendered, %d .eml files so far", name, tally.eml_written)
        with _writing(out):
            folder.flush()
    summary = {"mode": args.mode, "files": len(args.files), **asdict(tally), "dir": str(out)}
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
