"""``icechat render FILE... --eml DIR``: a dry run that writes the emails as ``.eml`` files.

Each file is what the Graph import would create (same ``Message-ID`` as its
``internetMessageId``), named ``{dedupe key}.eml``, so a re-run rewrites the same files.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from icechat.parser import PartReader, read_part
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


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".partial")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(data)
    tmp.replace(path)


def run(args: argparse.Namespace) -> int:
    out: Path = args.eml
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    repeated = absent = items = 0
    for name in args.files:
        with read_part(name) as part:
            for mail in _mails(part, args.mode):
                if mail.key in written:
                    repeated += 1
                    log.warning(
                        "%s: %s has the same key as one from %s; its .eml replaces that one",
                        name,
                        mail.internet_message_id,
                        written[mail.key],
                    )
                _write(out / f"{mail.key}.eml", to_eml(mail))
                written[mail.key] = name
                items += mail.item_count
                absent += len(mail.absent_files)
        log.info("%s: rendered, %d .eml files so far", name, len(written))
    summary = {
        "mode": args.mode,
        "files": len(args.files),
        "chat_items": items,
        "eml_written": len(written),
        "same_key_replaced": repeated,
        "files_not_attached": absent,
        "dir": str(out),
    }
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
