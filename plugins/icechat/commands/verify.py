"""``icechat verify DAY [DAY...] [--repair]``: prove archived days are still whole.

Runs with the deployment's connections and variables (as ``icechat check`` does), so the
work is done by :mod:`icechat.glue.verify`, loaded only when this command runs.
"""

from __future__ import annotations

import argparse
import importlib
from datetime import date

from icechat.commands import log_to_stderr

SHOWN = 10  # differences printed per day; the report lists them all


def parse_day(text: str) -> date:
    """A ``YYYY-MM-DD`` argument."""
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day: give YYYY-MM-DD") from exc


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "verify",
        help="check archived days: originals, every copy in its mailbox, every copy counted",
        description=(
            "For each day: the originals in raw/ still hash to what the ledger and the report "
            "recorded; every copy the ledger marks done is in its mailbox's folder once, at "
            "its chat time, and nothing unknown carries our dedupe key there; every copy is "
            "done, not mapped with a reason, or failed. Writes reports/verify-DAY.json and "
            ".html. Exit 0 when every day verifies, else 1."
        ),
    )
    parser.add_argument("days", nargs="+", type=parse_day, metavar="DAY", help="YYYY-MM-DD")
    parser.add_argument(
        "--repair",
        action="store_true",
        help="import again exactly the copies found missing from a mailbox (the report says so)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    glue = importlib.import_module("icechat.glue.verify")
    log_to_stderr(args.verbose)
    glue.use_metadata_connections()
    verified = True
    for day in args.days:
        outcome = glue.run_verify(day, "icechat verify", repair=args.repair)
        print(outcome.summary, flush=True)
        for finding in outcome.report["findings"][:SHOWN]:
            print(f"  {finding['kind']} {finding['subject']} {finding['key']}: {finding['detail']}")
        if outcome.report["differences"] > SHOWN:
            print(f"  ... {outcome.report['differences'] - SHOWN} more in the report")
        print(f"  report: {outcome.html_at} (and {outcome.json_at})", flush=True)
        verified = verified and outcome.verified
    return 0 if verified else 1
