"""``icechat render FILE... --eml DIR``: a dry run that writes the emails as ``.eml`` files.

Each file is what the Graph import would create (same ``Message-ID`` as its
``internetMessageId``), named ``{dedupe key}.eml``, so a re-run rewrites the same files.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from icechat.exceptions import RenderOutputError
from icechat.files import PRIVATE, write_atomic
from icechat.ice.parser import PartReader, read_part
from icechat.render import (
    MESSAGE,
    MODES,
    TRANSCRIPT,
    MailItem,
    build_message,
    build_transcript,
    to_eml,
)

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


def _mails(part: PartReader, mode: str) -> Iterator[MailItem]:
    if mode == TRANSCRIPT:
        return (build_transcript(s, part.attachments) for s in part.slices())
    return (build_message(i, part.attachments) for i in part.items())


def run(args: argparse.Namespace) -> int:
    out: Path = args.eml
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RenderOutputError(
            f"{out}: cannot create the output folder ({exc.strerror}); choose a writable folder"
        ) from exc
    # Conversation-days seen, to tell when two parts hold slices of the same room and day.
    days: dict[str, str] = {}
    written = repeated = absent = items = 0
    for name in args.files:
        with read_part(name) as part:
            for mail in _mails(part, args.mode):
                if mail.mode == TRANSCRIPT:
                    if mail.key in days:
                        repeated += 1
                        log.warning(
                            "%s: room %s on %s was already rendered from %s; this slice's "
                            ".eml replaces that one",
                            name,
                            mail.room.room_id,
                            mail.day,
                            days[mail.key],
                        )
                    days[mail.key] = name
                target = out / f"{mail.key}.eml"
                try:
                    write_atomic(target, to_eml(mail), PRIVATE)
                except OSError as exc:
                    raise RenderOutputError(
                        f"{target}: cannot write ({exc.strerror}); {written} .eml files were "
                        "written before this one"
                    ) from exc
                written += 1
                items += mail.item_count
                absent += len(mail.absent_files)
        log.info("%s: rendered, %d .eml files so far", name, written)
    summary = {
        "mode": args.mode,
        "files": len(args.files),
        "chat_items": items,
        "eml_written": written,
        "same_day_replaced": repeated,
        "files_not_attached": absent,
        "dir": str(out),
    }
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
