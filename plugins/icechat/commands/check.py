"""``icechat check``: try every configured connection and say what is wrong and how to fix it.

The connections are Airflow's, so the work is done by :mod:`icechat.glue.check`, loaded only
when this command runs (the rest of the CLI needs no Airflow).
"""

from __future__ import annotations

import argparse
import importlib

from icechat.checks import CheckResult
from icechat.commands import log_to_stderr


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "check",
        help="try the SFTP, PGP, Graph and ledger connections",
        description=(
            "Try every connection where Airflow resolves them (AIRFLOW_CONN_* variables, a "
            "secrets backend or the metadata database) and print one line per check: OK, "
            "FAIL with what to do, or SKIP. Exit 0 when nothing failed, else 1."
        ),
    )
    parser.add_argument(
        "--mailbox",
        metavar="ADDRESS",
        help="mailbox to read and create the items' folder in "
        "(default: the first mailbox of the mapping CSV)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    glue = importlib.import_module("icechat.glue.check")
    log_to_stderr(args.verbose)
    results: list[CheckResult] = glue.run_checks(args.mailbox)
    for result in results:
        print(result.line(), flush=True)
    return 0 if all(r.ok for r in results) else 1
