"""The day's report: the contract's JSON and an HTML page a compliance officer can read.

Every copy (one per chat item and participant) is exactly one of ``imported``,
``already_present``, ``not_mapped`` or ``failed``; ``balanced`` says the four add up.
:func:`day_report` assembles it from the results the day's tasks passed on, and
:func:`record_run` writes the run's row in the ledger.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jinja2

from icechat.files import write_atomic
from icechat.ledger import FileRecord, Ledger
from icechat.mapping.rules import REASON_HELP

log = logging.getLogger(__name__)

# The counts the ledger's run row keeps; with the day and the verdict, what a run returns.
RUN_COUNTS = ("items", "copies", "imported", "already_present", "not_mapped", "failed")
FILE_FIELDS = ("name", "size", "sha256", "flags")
FAILURES_LOGGED = 20  # failures named in the task log (the HTML report lists them all)

# The report pages (this one and verification's): every value escaped, none missing.
TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("icechat", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass
class ImportCounts:
    """What the import tasks did with the planned copies (summed over shards)."""

    imported: int = 0
    already_present: int = 0
    failed: int = 0
    imported_with_notice: int = 0
    per_mailbox: dict[str, Counter[str]] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, shard: Mapping[str, Any]) -> None:
        """Fold in one import task's result (see :class:`icechat.importer.ShardSummary`)."""
        self.imported += shard.get("imported", 0)
        self.already_present += shard.get("already_present", 0)
        self.failed += shard.get("failed", 0)
        self.imported_with_notice += shard.get("imported_with_notice", 0)
        for mailbox, counts in shard.get("per_mailbox", {}).items():
            self.per_mailbox.setdefault(mailbox, Counter()).update(counts)
        self.failures.extend(shard.get("failures", []))
        self.seconds += shard.get("seconds", 0.0)


def build_report(
    *,
    day: str,
    firm: str,
    files: list[dict[str, Any]],
    render: Mapping[str, Any],
    plan: Mapping[str, Any],
    imports: ImportCounts,
    item_mode: str,
    fetch_seconds: float = 0.0,
) -> dict[str, Any]:
    """The report object: the contract's keys first, then the detail behind them."""
    not_mapped = sum(plan.get("not_mapped", {}).values())
    already_present = plan.get("already_present", 0) + imports.already_present
    copies = plan.get("copies", 0)
    unaccounted = plan.get("planned", 0) - (
        imports.imported + imports.already_present + imports.failed
    )
    failed = imports.failed + max(unaccounted, 0)
    total = imports.imported + already_present + not_mapped + failed
    failures = list(imports.failures)
    if unaccounted > 0:
        failures.append(
            {
                "mailbox": "(several)",
                "key": "",
                "reason": f"{unaccounted} planned copies have no import result",
                "action": "re-run the day's import tasks (clear them in the Airflow UI)",
            }
        )
    mailboxes = {}
    for upn, planned in sorted(plan.get("per_mailbox", {}).items()):
        done = imports.per_mailbox.get(upn, Counter())
        mailboxes[upn] = {
            "planned": planned,
            **{k: done.get(k, 0) for k in ("imported", "already_present", "failed")},
        }
    return {
        "day": day,
        "firm": firm,
        "files": files,
        "items": render.get("items", 0),
        "copies": copies,
        "imported": imports.imported,
        "already_present": already_present,
        "not_mapped": not_mapped,
        "failed": failed,
        "balanced": total == copies,
        "item_mode": item_mode,
        "mail_items": render.get("mail_items", 0),
        "by_kind": render.get("by_kind", {}),
        "imported_with_notice": imports.imported_with_notice,
        "not_mapped_reasons": plan.get("not_mapped", {}),
        "fallback": plan.get("fallback", 0),
        "unmapped_participants": plan.get("unmapped_participants", {}),
        "per_mailbox": mailboxes,
        "failures": failures,
        "unknown_elements": render.get("unknown_elements", {}),
        "unknown_attributes": render.get("unknown_attributes", {}),
        "absent_files": render.get("absent_files", 0),
        "timings": {
            "fetch": round(fetch_seconds, 3),
            "parse_render": round(render.get("seconds", 0.0), 3),
            "map": round(plan.get("seconds", 0.0), 3),
            "import": round(imports.seconds, 3),
        },
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def day_report(
    day: date,
    *,
    fetched: Mapping[str, Any],
    rendered: Mapping[str, Any],
    planned: Mapping[str, Any],
    shards: Iterable[Mapping[str, Any] | None],
    item_mode: str,
) -> dict[str, Any]:
    """The report from the results of fetch, parse+render, map and the import tasks.

    An import task that left no result (it failed) adds nothing: its planned copies show
    as failed, "planned copies have no import result".
    """
    imports = ImportCounts()
    for shard in shards:
        if shard:
            imports.add(shard)
    return build_report(
        day=day.isoformat(),
        firm=fetched["firm"],
        files=[{k: f[k] for k in FILE_FIELDS} for f in fetched["files"]],
        render=rendered,
        plan=planned,
        imports=imports,
        item_mode=item_mode,
        fetch_seconds=fetched.get("seconds", 0.0),
    )


def record_run(ledger: Ledger, run_id: str, day: date, report: Mapping[str, Any]) -> None:
    """The run's row in the ledger: the files with their hashes, the counts and timings."""
    files = [FileRecord(f["name"], f["size"], f["sha256"]) for f in report["files"]]
    ledger.start_run(run_id, day, files)
    ledger.finish_run(run_id, {k: report[k] for k in RUN_COUNTS}, report["timings"])


def archived(report: Mapping[str, Any]) -> bool:
    """Whether every copy of the day is accounted for and none failed."""
    return not report["failed"] and bool(report["balanced"])


def log_failures(report: Mapping[str, Any]) -> None:
    """Name the first failed copies and what to do in the log."""
    for failure in report["failures"][:FAILURES_LOGGED]:
        log.error(
            "%s %s: %s -> %s",
            failure["mailbox"],
            failure["key"],
            failure["reason"],
            failure["action"],
        )


def outcome(report: Mapping[str, Any]) -> dict[str, Any]:
    """What a reconciled day returns: the day, the counts and whether they balance."""
    return {k: report[k] for k in ("day", *RUN_COUNTS, "balanced")}


def summary_line(report: Mapping[str, Any]) -> str:
    """One line for the task log."""
    verdict = "balanced" if report["balanced"] else "NOT BALANCED"
    return (
        f"ICE Chat {report['day']} {report['firm']}: {len(report['files'])} file(s), "
        f"{report['items']} items, {report['copies']} copies: {report['imported']} imported, "
        f"{report['already_present']} already present, {report['not_mapped']} not mapped, "
        f"{report['failed']} failed; {verdict}"
    )


def render_html(report: dict[str, Any]) -> str:
    """The report page (every value escaped: names and reasons come from outside)."""
    return TEMPLATES.get_template("report.html.j2").render(
        report=report, reason_help=REASON_HELP, summary=summary_line(report)
    )


def reports_dir(data_dir: Path) -> Path:
    """``{data_dir}/reports``: every day's report, kept."""
    return data_dir / "reports"


def report_file(reports: Path, day: date | str, kind: str = "json") -> Path:
    """The day's report in ``reports``: ``{YYYY-MM-DD}.json`` or ``{YYYY-MM-DD}.html``."""
    return reports / f"{day}.{kind}"


def write_report(report: dict[str, Any], reports: Path) -> tuple[Path, Path]:
    """Write ``{day}.json`` and ``{day}.html``, replacing an earlier report of that day."""
    reports.mkdir(parents=True, exist_ok=True)
    json_path = report_file(reports, report["day"], "json")
    html_path = report_file(reports, report["day"], "html")
    write_atomic(json_path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    write_atomic(html_path, render_html(report))
    return json_path, html_path
