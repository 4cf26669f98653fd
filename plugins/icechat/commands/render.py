"""``icechat render FILE... --eml DIR``: a dry run that writes the emails as ``.eml`` files.

The mail items are those of the DAG's parse+render (:func:`icechat.render.day.mail_items`):
each file is what the Graph import would create (same ``Message-ID`` as its
``internetMessageId``), named ``{dedupe key}.eml``, so a re-run rewrites the same files, and
a room-day that spans two parts gives two files, as it gives two items in the mailbox.

The files are written once each, plainly, into ``DIR.partial/``, which becomes ``DIR`` when
every part is done (:class:`icechat.files.StagedFolder`): a failed run leaves ``DIR`` as it
was. A second process assembles each file's bytes and writes them while this one parses and
renders, so the run takes about the longer of the two, not their sum.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path

from icechat.exceptions import RenderOutputError
from icechat.files import PRIVATE, StagedFolder
from icechat.ice.parser import read_part
from icechat.render import MESSAGE, MODES
from icechat.render.day import mail_items
from icechat.render.eml import eml_bytes, eml_fields, eml_size

log = logging.getLogger(__name__)


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


@contextmanager
def _writing(out: Path) -> Iterator[None]:
    """A failed write (of this file or one handed over earlier) as the user's error."""
    try:
        yield
    except OSError as exc:
        raise RenderOutputError(
            f"{exc.filename}: cannot write ({exc.strerror}); nothing was written to {out}: "
            "free space or choose another folder"
        ) from exc
    except BrokenProcessPool as exc:
        raise RenderOutputError(
            f"the process writing the .eml files stopped unexpectedly (killed, or out of "
            f"memory?); nothing was written to {out}: run the command again"
        ) from exc


def run(args: argparse.Namespace) -> int:
    out: Path = args.eml
    seen: set[str] = set()  # transcript keys, across the parts given
    written = continued = absent = items = 0
    folder = StagedFolder(out, PRIVATE, writer_process=True)
    try:
        folder.open()
    except OSError as exc:
        raise RenderOutputError(
            f"{out}: cannot create the output folder ({exc.strerror}); choose a writable folder"
        ) from exc
    with folder:
        for name in args.files:
            with read_part(name) as part:
                for rendered in mail_items(part, part.attachments, args.mode, seen):
                    mail = rendered.mail
                    if rendered.continued:
                        continued += 1
                        log.info(
                            "%s: room %s on %s began in an earlier part; this slice is its own"
                            " .eml",
                            name,
                            mail.room.room_id,
                            mail.day,
                        )
                    fields = eml_fields(mail)
                    with _writing(out):
                        folder.write_encoded(f"{mail.key}.eml", eml_bytes, fields, eml_size(fields))
                    written += 1
                    items += mail.item_count
                    absent += len(mail.absent_files)
            log.info("%s: rendered, %d .eml files so far", name, written)
        with _writing(out):
            folder.flush()
    summary = {
        "mode": args.mode,
        "files": len(args.files),
        "chat_items": items,
        "eml_written": written,
        "room_days_continued": continued,
        "files_not_attached": absent,
        "dir": str(out),
    }
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
