"""``icechat sample``: write a realistic, deterministic export day as ICE would deliver it."""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from icechat.dev.sample import write_day
from icechat.exceptions import SampleError
from icechat.ice.delivery import Packaging


def add_parser(subparsers: Any) -> None:
    """Register ``sample`` on the console script."""
    parser = subparsers.add_parser(
        "sample",
        help="write a deterministic sample export day",
        description=(
            "Write a realistic day of ICE Chat export parts, named as ICE names them. "
            "The same arguments give byte-identical files (except the random PGP session key "
            "when --encrypt-to is used). Prints the written paths, then a summary."
        ),
    )
    parser.add_argument("--firm", required=True, help="firm code, e.g. ACME01")
    parser.add_argument("--day", required=True, type=_day, help="UTC day, YYYY-MM-DD")
    parser.add_argument(
        "--messages", required=True, type=int, help="chat items (Message + FileTransfer) in the day"
    )
    parser.add_argument("--out", required=True, type=Path, help="directory to write to")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--parts", type=int, default=1, help="split the day into K parts")
    parser.add_argument(
        "--people",
        type=int,
        help="people in the firm's chat world (default 120 + messages / 5000)",
    )
    parser.add_argument(
        "--zipf",
        type=float,
        default=0.0,
        help="shape like a trading floor: person k takes part in proportion to 1 / k ** ZIPF "
        "(1.0: a few people get most copies; default 0, everyone alike)",
    )
    packaging = parser.add_mutually_exclusive_group()
    packaging.add_argument(
        "--zip", action="store_true", help="zip parts with an attachments/ folder"
    )
    packaging.add_argument("--gzip", action="store_true", help="gzip parts (.xml.gz)")
    parser.add_argument(
        "--encrypt-to",
        type=Path,
        metavar="PUBLIC_KEY_FILE",
        help="encrypt each part to this OpenPGP public key (binary .pgp)",
    )
    parser.add_argument(
        "--marker", action="store_true", help="also write the {FIRM}_ICECHAT_{YYYYMMDD}.done marker"
    )
    parser.set_defaults(func=run)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


def run(args: argparse.Namespace) -> int:
    """Write the day and print what was written."""
    if args.encrypt_to is not None and not args.encrypt_to.is_file():
        raise SampleError(f"{args.encrypt_to}: public key file not found")
    packaging: Packaging = "zip" if args.zip else "xml.gz" if args.gzip else "xml"
    day = write_day(
        args.out,
        args.firm,
        args.day,
        args.messages,
        args.seed,
        parts=args.parts,
        packaging=packaging,
        encrypt_to=args.encrypt_to,
        marker=args.marker,
        people=args.people,
        zipf=args.zipf,
    )
    for path in day.paths:
        print(path)
    kinds: Counter[str] = Counter()
    for part in day.parts:
        kinds.update(part.stats.by_kind)
    conversations = sum(p.stats.conversations for p in day.parts)
    items = sum(p.stats.items for p in day.parts)
    detail = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    print(f"{len(day.parts)} part(s), {conversations} conversations, {items} items ({detail})")
    return 0
