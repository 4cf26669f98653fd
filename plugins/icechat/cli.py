"""The ``icechat`` console script.

Exit status: 0 when all went well, 1 for bad input (each problem on stderr, naming the file
and line or row), 2 for a usage error. Each sub-command lives in ``icechat.commands.<name>``
(dashes become underscores) and exposes ``add_parser(subparsers)``, which sets ``func`` to a
callable returning the status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from icechat.commands import COMMANDS
from icechat.exceptions import IceChatError

EXIT_BAD_INPUT = 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="icechat", description="Archive ICE Chat exports into Microsoft 365 mailboxes."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"icechat.commands.{name.replace('-', '_')}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        status: int = args.func(args)
    except IceChatError as exc:
        print(f"icechat {args.command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return status


if __name__ == "__main__":
    sys.exit(main())
