"""The verification report: ``reports/verify-{day}.json`` and a page an auditor can read.

It says what was checked (originals, mailboxes, accounting), when, by which application
(the software and the Entra ID app that read the mailboxes), every difference with what to
do, and what ``--repair`` imported again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from icechat import __version__
from icechat.files import write_atomic
from icechat.report import TEMPLATES, report_file
from icechat.verify.findings import KIND_HELP, Finding, by_kind, listed
from icechat.verify.mailboxes import MailboxResult
from icechat.verify.originals import OriginalsCheck

SOFTWARE = f"icechat-archiver {__version__}"


def report_paths(reports_dir: Path, day: str) -> tuple[Path, Path]:
    """``verify-{day}.json`` and ``verify-{day}.html``."""
    name = f"verify-{day}"
    return report_file(reports_dir, name, "json"), report_file(reports_dir, name, "html")


def build_report(
    *,
    day: str,
    started_at: datetime,
    finished_at: datetime,
    graph_app: str,
    run: str,
    data_dir: str,
    folder_name: str,
    originals: OriginalsCheck,
    mailboxes: Sequence[MailboxResult],
    resumed: int,
    accounting: Mapping[str, Any],
    findings: Sequence[Finding],
    repairs: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The report object; ``verified`` is true only when nothing differs. ``data_dir`` is
    where the originals and reports were read (the files the findings name are in it)."""
    report: dict[str, Any] = {
        "day": day,
        "verified": not findings,
        "differences": len(findings),
        "by_kind": by_kind(findings),
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": finished_at.isoformat(timespec="seconds"),
        "checked_by": {"software": SOFTWARE, "graph_app": graph_app, "run": run},
        "data_dir": data_dir,
        "folder": folder_name,
        "checks": {
            "originals": {
                "files": len(originals.originals),
                "read_by_the_run": sum(o.used_by_run for o in originals.originals),
            },
            "mailboxes": {
                "mailboxes": len(mailboxes),
                "resumed_from_checkpoint": resumed,
                "copies": sum(m.copies for m in mailboxes),
                "found": sum(m.found for m in mailboxes),
            },
            "accounting": dict(accounting),
        },
        "originals": [o.to_json() for o in originals.originals],
        "mailboxes": [m.summary() for m in mailboxes],
        "findings": [f.to_json() for f in listed(findings)],
        "repaired": list(repairs),
    }
    report["summary"] = summary_line(report)
    return report


def summary_line(report: Mapping[str, Any]) -> str:
    """One line for logs and the command's output."""
    checks = report["checks"]
    kinds = ", ".join(f"{n} {kind}" for kind, n in report["by_kind"].items())
    verdict = "verified" if report["verified"] else f"DIFFERS ({kinds})"
    repaired = f", {len(report['repaired'])} re-imported" if report["repaired"] else ""
    return (
        f"ICE Chat verify {report['day']}: {checks['originals']['files']} original(s), "
        f"{checks['mailboxes']['mailboxes']} mailbox(es), {checks['mailboxes']['copies']} "
        f"copies in mailboxes, {checks['accounting'].get('copies')} copies accounted"
        f"{repaired}: {verdict}"
    )


def write_report(report: Mapping[str, Any], reports_dir: Path) -> tuple[Path, Path]:
    """Write the JSON and the HTML page, replacing an earlier verification of that day."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = report_paths(reports_dir, report["day"])
    write_atomic(json_path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    page = TEMPLATES.get_template("verify.html.j2").render(
        report=report, kind_help={k.value: v for k, v in KIND_HELP.items()}
    )
    write_atomic(html_path, page)
    return json_path, html_path
