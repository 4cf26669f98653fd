"""``icechat validate-mapping FILE``: check a user-mapping CSV against the spec."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from icechat.mapping.csvfile import parse_mapping


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "validate-mapping",
        help="check a custom user-mapping CSV (ImId,Mailbox)",
        description="Print every problem with its line; exit 1 if there is any, else 0.",
    )
    parser.add_argument("file", metavar="FILE", type=Path)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"{args.file}: cannot read: {exc.strerror}", file=sys.stderr)
        return 1
    table = parse_mapping(data, str(args.file))
    for problem in table.problems:
        print(problem.render(str(args.file)), file=sys.stderr)
    if table.problems:
        print(f"{args.file}: {len(table.problems)} problem(s)", file=sys.stderr)
        return 1
    print(
        f"{args.file}: OK: {table.rows} row(s), {len(table.entries)} ImId(s) "
        f"mapped to {len(table.mailboxes)} mailbox(es)"
    )
    return 0
