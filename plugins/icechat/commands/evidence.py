"""``icechat evidence DAY --out DIR``: the folder an auditor asks for, for one day.

Runs with the deployment's connections and variables; the work is done by
:mod:`icechat.glue.verify`, loaded only when this command runs.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from icechat.commands import log_to_stderr
from icechat.commands.verify import parse_day


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "evidence",
        help="write a day's reports, ledger rows, originals and verification to one folder",
        description=(
            "Writes into DIR (new or empty): the day's report and its verification (run "
            "icechat verify DAY first), the ledger rows of the day and the originals as CSV "
            "(no cell can start a spreadsheet formula), and SHA256SUMS with the SHA-256 of "
            "every file."
        ),
    )
    parser.add_argument("day", type=parse_day, metavar="DAY", help="YYYY-MM-DD")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="a new folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    glue = importlib.import_module("icechat.glue.verify")
    log_to_stderr(args.verbose)
    glue.use_metadata_connections()
    evidence = glue.export_evidence(args.day, args.out)
    print(
        f"evidence for {args.day} in {evidence.folder}: {len(evidence.files)} files and SHA256SUMS"
    )
    for name, digest in evidence.files.items():
        print(f"  {digest}  {name}")
    print(f"  {evidence.ledger_rows} ledger rows; check the folder with sha256sum -c SHA256SUMS")
    return 0
