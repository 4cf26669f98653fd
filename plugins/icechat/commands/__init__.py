"""The ``icechat`` console script: the CLI, one module per verb.

Exit status: 0 when all went well, 1 for bad input (each problem on stderr, naming the file
and line or row), 2 for a usage error. Each verb lives in ``icechat.commands.<name>`` (dashes
become underscores) and exposes ``add_parser(subparsers)``, which sets ``func`` to a callable
returning the status. Only the verb being run is imported (all of them for ``--help``), so
a production verb never loads the development tools the dev verbs use.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from icechat.exceptions import IceChatError

COMMANDS: tuple[str, ...] = (
    "sample",
    "inspect",
    "render",
    "validate-mapping",
    "keys",
    "graph-emulator",
    "check",
    "verify",
    "evidence",
    "demo",
)
EXIT_BAD_INPUT = 1


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: ``verb`` in full, the other verbs by name only (all when None)."""
    parser = argparse.ArgumentParser(
        prog="icechat", description="Archive ICE Chat exports into Microsoft 365 mailboxes."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        if verb in (None, name):
            importlib.import_module(f"icechat.commands.{name.replace('-', '_')}").add_parser(sub)
        else:
            sub.add_parser(name)
    return parser


def log_to_stderr(verbose: bool) -> None:
    """Progress logs on stderr (``-v``: INFO, else WARNING), stdout left to the results.

    Verbs that import Airflow call it again: importing Airflow points logging at stdout.
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb and return its exit status."""
    args_given = sys.argv[1:] if argv is None else list(argv)
    verb = next((a for a in args_given if not a.startswith("-")), None)
    parser = build_parser(verb if verb in COMMANDS else None)
    args = parser.parse_args(args_given)
    log_to_stderr(args.verbose)
    try:
        status: int = args.func(args)
    except IceChatError as exc:
        print(f"icechat {args.command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return status
