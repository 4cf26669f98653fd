"""``icechat render FILE... --eml DIR``: a dry run that writes the emails as ``.eml`` files.

The mail items are those of the DAG's parse+render (:func:`icechat.render.day.mail_items`):
each file is what the Graph import would create (same ``Message-ID`` as its
``internetMessageId``), named ``{dedupe key}.eml``, so a re-run rewrites the same files, and
a room-day that spans two parts gives two files, as it gives two items in the mailbox.

The files are written once each, plainly, into ``DIR.partial/``, which becomes ``DIR`` when
every part is done (:class:`icechat.files.StagedFolder`): a failed run leaves ``DIR`` as it
was. In message mode this process only parses: each chat item goes, with its file, to one of
:data:`WRITERS` other processes, which render it and write its file meanwhile. A transcript
needs its whole conversation, so transcripts are rendered here and only written elsewhere.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from icechat.exceptions import RenderOutputError
from icechat.files import PRIVATE, StagedFolder
from icechat.ice.parser import PartReader, read_part
from icechat.render import MESSAGE, MODES, TRANSCRIPT
from icechat.render.day import mail_items
from icechat.render.eml import eml_name, message_eml, to_eml
from icechat.render.mail import item_file

log = logging.getLogger(__name__)
# Processes rendering and writing the files. Two keep a two-core machine busy: the parsing
# process has about half the work of a message-mode run (the writers take turns creating
# files: icechat.files).
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
