"""``icechat demo``: archive a local demo day end to end, or serve the demo in Airflow's UI."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import Any

from icechat.dev.demo import DEMO_DAY, DemoLayout, run_day, serve_airflow


def add_parser(subparsers: Any) -> None:
    """Register ``demo run`` and ``demo airflow`` on the console script."""
    parser = subparsers.add_parser(
        "demo",
        help="run the connector against a local SFTP site and Graph emulator",
        description="Everything local, on loopback, without root: an OpenSSH sshd serves"
        " encrypted sample days as the firm's ICE SFTP site (the login, i.e. the firm code, is"
        " your user name), the Graph emulator plays Microsoft 365. State is kept in --dir.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser(
        "run",
        help="archive one day with `airflow dags test` and export the mailboxes as .eml",
        description="Archive DAY with `airflow dags test icechat_archive DAY`, then print the"
        " report's summary, where the HTML report is and where the mailboxes were exported as"
        " .eml. Exit status 1 if the run failed.",
    )
    run.add_argument(
        "--day",
        type=date.fromisoformat,
        default=DEMO_DAY,
        help=f"UTC day, YYYY-MM-DD (default {DEMO_DAY})",
    )
    run.set_defaults(func=_run)
    serve = actions.add_parser(
        "airflow",
        help="run `airflow standalone` on the demo's servers until Ctrl-C",
        description="Start sshd, the Graph emulator and `airflow standalone` (API server,"
        " scheduler, DAG processor, triggerer) with the demo's connections, and print the URL."
        " Every visitor is an admin (local demo only).",
    )
    serve.add_argument(
        "--port", type=int, default=8080, help="UI port (default 8080; a free one if taken)"
    )
    serve.add_argument(
        "--smoke",
        action="store_true",
        help="stop as soon as the UI answers (checks that it starts)",
    )
    serve.set_defaults(func=_serve)
    for sub in (run, serve):
        sub.add_argument(
            "--dir", type=Path, default=Path("demo"), help="demo state directory (default demo)"
        )


def _run(args: argparse.Namespace) -> int:
    return run_day(DemoLayout(args.dir), args.day)


def _serve(args: argparse.Namespace) -> int:
    return serve_airflow(DemoLayout(args.dir), args.port, smoke=args.smoke)
