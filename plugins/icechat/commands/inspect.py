"""``icechat inspect FILE...``: what a day's decrypted parts hold, as one JSON object."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import datetime

from icechat.ice.model import ItemKind
from icechat.ice.parser import read_part
from icechat.ice.timestamps import iso_z


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "inspect",
        help="summarise export parts (plain, .gz, .zip; decrypted) as JSON",
        description="Read export parts and print one JSON summary of all of them.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    conversations = items = 0
    by_kind: Counter[str] = Counter({kind.value: 0 for kind in ItemKind})
    participants: set[str] = set()
    unknown_elements: Counter[str] = Counter()
    unknown_attributes: Counter[str] = Counter()
    first: datetime | None = None
    last: datetime | None = None
    for name in args.files:
        with read_part(name) as part:
            stats = part.scan()
        conversations += stats.conversations
        items += stats.items
        by_kind.update(stats.by_kind)
        participants |= stats.participants
        unknown_elements.update(stats.unknown_elements)
        unknown_attributes.update(stats.unknown_attributes)
        if stats.first and (first is None or stats.first < first):
            first = stats.first
        if stats.last and (last is None or stats.last > last):
            last = stats.last
    summary = {
        "files": len(args.files),
        "conversations": conversations,
        "items": items,
        "by_kind": dict(by_kind),
        "participants": len(participants),
        "first": iso_z(first, milliseconds=True) if first else None,
        "last": iso_z(last, milliseconds=True) if last else None,
        "unknown_elements": dict(sorted(unknown_elements.items())),
        "unknown_attributes": dict(sorted(unknown_attributes.items())),
    }
    json.dump(summary, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
