"""The day's report: the contract's JSON and an HTML page a compliance officer can read.

Every copy (one per chat item and participant) is exactly one of ``imported``,
``already_present``, ``not_mapped`` or ``failed``; ``balanced`` says the four add up.
``imported`` counts only what this run's attempt created: a run cleared and run again keeps
its run id, so the report names the attempt (Airflow's clear number), says when it is a
cleared re-run, and credits the copies already present to the run attempt that created them.
:func:`day_report` assembles it from the results the day's tasks passed on, and
:func:`record_run` writes the run's row in the ledger.
The page opens with a verdict, the failures, and the day's volume against the previous
30 days (a sudden drop means ICE delivered less). :class:`ReportShelf` reads the reports
back, for that history and for the operator's view in Airflow.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from icechat.files import write_atomic
from icechat.ledger import FileRecord, Ledger
from icechat.mapping.rules import REASON_HELP
from icechat.store import DataStore, layout_key, workspace

log = logging.getLogger(__name__)

# The counts the ledger's run row keeps; with the day and the verdict, what a run returns.
RUN_COUNTS = ("items", "copies", "imported", "already_present", "not_mapped", "failed")
FILE_FIELDS = ("name", "size", "sha256", "flags")
LOCK_FIELDS = ("lock_mode", "retain_until")  # present when the original is under retention
FAILURES_LOGGED = 20  # failures named in the task log
# Failed copies the report names one by one; the rest are counted (per mailbox too) and
# each is in the ledger with its reason: a day where everything failed stays readable.
FAILURES_LISTED = 1000

# The report pages (this one and verification's): every value escaped, none missing.
TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("icechat", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


HISTORY_DAYS = 30
DROP_SHARE = 0.5  # a day under half the usual volume is flagged
CHART_HEIGHT = 80.0
BAR_STEP = 14.0


@dataclass
class ImportCounts:
    """What the import tasks did with the planned copies (summed over shards); ``failures``
    names the first :data:`FAILURES_LISTED` failed copies of all shards."""

    imported: int = 0
    already_present: int = 0
    failed: int = 0
    imported_with_notice: int = 0
    per_mailbox: dict[str, Counter[str]] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    imported_by: Counter[tuple[str | None, int | None]] = field(default_factory=Counter)
    present_from: Counter[tuple[str | None, int | None]] = field(default_factory=Counter)

    def add(self, shard: Mapping[str, Any]) -> None:
        """Fold in one import task's result (see :class:`icechat.importer.ShardSummary`)."""
        if shard.get("imported"):
            self.imported_by[(shard.get("run_id"), shard.get("attempt"))] += shard["imported"]
        for entry in shard.get("present_from", ()):
            self.present_from[(entry["run_id"], entry["attempt"])] += entry["copies"]
        self.imported += shard.get("imported", 0)
        self.already_present += shard.get("already_present", 0)
        self.failed += shard.get("failed", 0)
        self.imported_with_notice += shard.get("imported_with_notice", 0)
        for mailbox, counts in shard.get("per_mailbox", {}).items():
            self.per_mailbox.setdefault(mailbox, Counter()).update(counts)
        self.failures.extend(shard.get("failures", [])[: FAILURES_LISTED - len(self.failures)])
        self.seconds += shard.get("seconds", 0.0)


def _credits(counted: Counter[tuple[str | None, int | None]]) -> list[dict[str, Any]]:
    """Copies by the (run id, attempt) credited with them, oldest attempt first."""
    return [
        {"run_id": run_id, "attempt": attempt, "copies": n}
        for (run_id, attempt), n in sorted(
            counted.items(), key=lambda e: (str(e[0][0]), -1 if e[0][1] is None else e[0][1])
        )
    ]


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
    run_id: str | None = None,
    attempt: int | None = None,
    history: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The report object: the contract's keys first, then the detail behind them.

    ``run_id`` and ``attempt`` name the run attempt reporting; ``imported_by`` and
    ``already_present_from`` say which run attempts created the copies counted.
    ``history`` is the volume of the previous days (see :func:`volume_history`).
    """
    not_mapped = sum(plan.get("not_mapped", {}).values())
    already_present = plan.get("already_present", 0) + imports.already_present
    copies = plan.get("copies", 0)
    unaccounted = plan.get("planned", 0) - (
        imports.imported + imports.already_present + imports.failed
    )
    failed = imports.failed + max(unaccounted, 0)
    total = imports.imported + already_present + not_mapped + failed
    failures = list(imports.failures)
    not_listed = imports.failed - len(failures)
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
        # A shard counts a copy imported with a notice only under that status: it is imported.
        mailboxes[upn] = {
            "planned": planned,
            "imported": done.get("imported", 0) + done.get("imported_with_notice", 0),
            **{k: done.get(k, 0) for k in ("already_present", "failed")},
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
        "run_id": run_id,
        "attempt": attempt,
        "cleared_rerun": bool(attempt),
        "imported_by": _credits(imports.imported_by),
        "already_present_from": _credits(imports.present_from),
        "item_mode": item_mode,
        "mail_items": render.get("mail_items", 0),
        "by_kind": render.get("by_kind", {}),
        "imported_with_notice": imports.imported_with_notice,
        "not_mapped_reasons": plan.get("not_mapped", {}),
        "fallback": plan.get("fallback", 0),
        "unmapped_participants": plan.get("unmapped_participants", {}),
        "per_mailbox": mailboxes,
        "failures": failures,
        "failures_not_listed": not_listed,
        "unknown_elements": render.get("unknown_elements", {}),
        "unknown_attributes": render.get("unknown_attributes", {}),
        "absent_files": render.get("absent_files", 0),
        "timings": {
            "fetch": round(fetch_seconds, 3),
            "parse_render": round(render.get("seconds", 0.0), 3),
            "map": round(plan.get("seconds", 0.0), 3),
            "import": round(imports.seconds, 3),
        },
        "history": list(history),
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
    run_id: str | None = None,
    attempt: int | None = None,
    history: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The report from the results of fetch, parse+render, map and the import tasks.

    An import task that left no result (it failed) adds nothing: its planned copies show
    as failed, "planned copies have no import result". An import task that a cleared
    re-run did not run again keeps the result, and the attempt, it had. ``history``: see
    :func:`volume_history`.
    """
    imports = ImportCounts()
    for shard in shards:
        if shard:
            imports.add(shard)
    return build_report(
        day=day.isoformat(),
        firm=fetched["firm"],
        files=[
            {k: f[k] for k in FILE_FIELDS} | {k: f[k] for k in LOCK_FIELDS if f.get(k)}
            for f in fetched["files"]
        ],
        render=rendered,
        plan=planned,
        imports=imports,
        item_mode=item_mode,
        fetch_seconds=fetched.get("seconds", 0.0),
        run_id=run_id,
        attempt=attempt,
        history=history,
    )


def record_run(ledger: Ledger, run_id: str, day: date, report: Mapping[str, Any]) -> None:
    """The run's row in the ledger: the files with their hashes, the counts and timings."""
    files = [
        FileRecord(f["name"], f["size"], f["sha256"], f.get("lock_mode"), f.get("retain_until"))
        for f in report["files"]
    ]
    ledger.start_run(run_id, day, files, attempt=report.get("attempt"))
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
    """One line for the task log; a cleared re-run says so.

    Balanced only means the counts add up: a day with failed copies says so at the end too.
    """
    if not report["balanced"]:
        verdict = "NOT BALANCED"
    elif report["failed"]:
        verdict = f"balanced, NOT ARCHIVED IN FULL ({report['failed']} failed)"
    else:
        verdict = "balanced"
    line = (
        f"ICE Chat {report['day']} {report['firm']}: {len(report['files'])} file(s), "
        f"{report['items']} items, {report['copies']} copies: {report['imported']} imported, "
        f"{report['already_present']} already present, {report['not_mapped']} not mapped, "
        f"{report['failed']} failed; {verdict}"
    )
    if report.get("cleared_rerun"):
        line += f"; cleared re-run: attempt {report['attempt']} of run {report['run_id']}"
    return line


def verdict(report: dict[str, Any]) -> tuple[bool, str]:
    """Whether the day is archived in full, and in one sentence why (or why not)."""
    copies, failed = report["copies"], report["failed"]
    counted = report["imported"] + report["already_present"] + report["not_mapped"] + failed
    if failed:
        return False, (
            f"Not archived in full: {failed} of {copies} copies failed (listed first below); "
            "fix the cause, then clear the day's import tasks and reconcile."
        )
    if not report["balanced"]:
        return False, (
            f"Not balanced: the counts add up to {counted} copies, not {copies}; "
            "re-run the day and tell the maintainers if it persists."
        )
    notices = report.get("imported_with_notice", 0)
    text = (
        f"Balanced: all {copies} copies of {report['items']} chat items are accounted for "
        f"({report['imported']} imported, {report['already_present']} already present, "
        f"{report['not_mapped']} not mapped)."
    )
    if notices:
        text += f" {notices} went in with a notice (a file too large for Graph; see the body)."
    return True, text


def volume_note(report: dict[str, Any]) -> str | None:
    """A warning when the day holds far fewer chat items than usual, else None.

    Usual = the median of the same weekday in the history (chats are quieter at weekends),
    or of every day when fewer than two of that weekday have a report.
    """
    day = date.fromisoformat(report["day"])
    known = [
        (date.fromisoformat(h["day"]), h["items"])
        for h in report.get("history", [])
        if h["items"] is not None
    ]
    same_weekday = [n for d, n in known if d.weekday() == day.weekday()]
    usual = same_weekday if len(same_weekday) >= 2 else [n for _, n in known]
    if len(usual) < 2:
        return None
    median = statistics.median(usual)
    if median and report["items"] < DROP_SHARE * median:
        return (
            f"{report['items']} chat items, against a median of {median:g} on comparable days "
            "of the previous 30: check with ICE that the whole day was delivered."
        )
    return None


def volume_chart(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Bars for the page's chart: the history then the day, as SVG geometry."""
    days = [*report.get("history", []), {"day": report["day"], "items": report["items"]}]
    top = max([d["items"] or 0 for d in days] + [1])
    bars = []
    for n, entry in enumerate(days):
        height = 0.0 if entry["items"] is None else CHART_HEIGHT * entry["items"] / top
        bars.append(
            {
                "x": n * BAR_STEP,
                "y": CHART_HEIGHT - height,
                "height": height,
                "day": entry["day"],
                "items": entry["items"],
                "today": n == len(days) - 1,
                "label": (len(days) - 1 - n) % 7 == 0,  # the day and every week before
            }
        )
    return bars


def render_html(report: dict[str, Any], *, note: str | None = None, back: str | None = None) -> str:
    """The report page (every value escaped: names and reasons come from outside).

    ``note`` is a line above the report, ``back`` a link to where the reader came from
    (both for the operator's view in Airflow).
    """
    ok, text = verdict(report)
    return TEMPLATES.get_template("report.html.j2").render(
        report=report,
        note=note,
        back=back,
        reason_help=REASON_HELP,
        summary=summary_line(report),
        verdict_ok=ok,
        verdict=text,
        volume_note=volume_note(report),
        bars=volume_chart(report),
        chart={"height": CHART_HEIGHT, "step": BAR_STEP},
    )


def reports_dir(data_dir: Path) -> Path:
    """``{data_dir}/reports``: every day's report, kept."""
    return data_dir / "reports"


def report_file(reports: Path, day: date | str, kind: str = "json") -> Path:
    """The day's report in ``reports``: ``{YYYY-MM-DD}.json`` or ``{YYYY-MM-DD}.html``."""
    return reports / f"{day}.{kind}"


def stored_history(store: DataStore, day: date) -> list[dict[str, Any]]:
    """:func:`volume_history` from the reports in the data directory, wherever it is."""
    shelf = reports_dir(Path())
    keys = [layout_key(report_file(shelf, d)) for d in history_days(day)]
    with workspace(store, inputs=keys) as root:
        return volume_history(ReportShelf(reports_dir(root)), day)


def store_report(store: DataStore, report: dict[str, Any]) -> tuple[str, str]:
    """Write the day's report into the data directory; return where, JSON then HTML."""
    shelf = reports_dir(Path())
    keys = [layout_key(report_file(shelf, report["day"], kind)) for kind in ("json", "html")]
    with workspace(store, outputs=keys) as root:
        write_report(report, reports_dir(root))
    return f"{store.url}/{keys[0]}", f"{store.url}/{keys[1]}"


def mirrored_reports(store: DataStore, cache: Path) -> Path:
    """The day reports (``reports/*.json``) in a local folder a :class:`ReportShelf` reads: the
    data directory's own for a local store; else ``cache``, where a report new or changed in
    the store is downloaded again and one gone from it removed."""
    if store.local_root is not None:
        return reports_dir(store.local_root)
    shelf = reports_dir(Path())
    stamps = {
        key: stamp
        for key, stamp in store.stamps(layout_key(shelf)).items()
        if key.endswith(".json") and not PurePosixPath(key).name.startswith("verify-")
    }
    seen_file = cache / ".stamps.json"
    seen = json.loads(seen_file.read_text()) if seen_file.exists() else {}
    for key, stamp in stamps.items():
        if seen.get(key) != stamp or not (cache / key).exists():
            store.download(key, cache / key)
    for key in set(seen) - set(stamps):
        (cache / key).unlink(missing_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    write_atomic(seen_file, json.dumps(stamps))
    return reports_dir(cache)


def write_report(report: dict[str, Any], reports: Path) -> tuple[Path, Path]:
    """Write ``{day}.json`` and ``{day}.html``, replacing an earlier report of that day."""
    reports.mkdir(parents=True, exist_ok=True)
    json_path = report_file(reports, report["day"], "json")
    html_path = report_file(reports, report["day"], "html")
    write_atomic(json_path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    write_atomic(html_path, render_html(report))
    return json_path, html_path


@dataclass(frozen=True, slots=True)
class DaySummary:
    """A day's figures as its report gives them (what the operator's overview lists)."""

    day: date
    items: int
    copies: int
    imported: int
    already_present: int
    not_mapped: int
    failed: int
    imported_with_notice: int
    balanced: bool
    run_id: str | None

    @classmethod
    def of(cls, report: dict[str, Any]) -> DaySummary:
        return cls(
            day=date.fromisoformat(report["day"]),
            items=report["items"],
            copies=report["copies"],
            imported=report["imported"],
            already_present=report["already_present"],
            not_mapped=report["not_mapped"],
            failed=report["failed"],
            imported_with_notice=report.get("imported_with_notice", 0),
            balanced=report["balanced"],
            run_id=report.get("run_id"),
        )


class ReportShelf:
    """The reports directory, read back; a report is parsed again only when its file changed.

    Files that are not a day's report (or not readable JSON) are skipped.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, tuple[int, int, DaySummary]] = {}

    def summaries(self) -> dict[date, DaySummary]:
        """Every day that has a report."""
        found: dict[date, DaySummary] = {}
        try:
            paths = list(self.directory.glob("????-??-??.json"))
        except OSError:
            return found
        for path in paths:
            summary = self._summary(path)
            if summary is not None:
                found[summary.day] = summary
        return found

    def summary(self, day: date) -> DaySummary | None:
        """The day's figures, if it has a report."""
        return self._summary(report_file(self.directory, day, "json"))

    def report(self, day: date) -> dict[str, Any] | None:
        """The day's whole report, if it has one."""
        try:
            found: dict[str, Any] = json.loads(
                report_file(self.directory, day, "json").read_text(encoding="utf-8")
            )
        except (OSError, ValueError):
            return None
        return found

    def html(self, day: date) -> str | None:
        """The day's report page, if it has one."""
        try:
            return report_file(self.directory, day, "html").read_text(encoding="utf-8")
        except OSError:
            return None

    def _summary(self, path: Path) -> DaySummary | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        cached = self._cache.get(path.name)
        if cached is not None and cached[:2] == (stat.st_mtime_ns, stat.st_size):
            return cached[2]
        try:
            summary = DaySummary.of(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        self._cache[path.name] = (stat.st_mtime_ns, stat.st_size, summary)
        return summary


def history_days(day: date, days: int = HISTORY_DAYS) -> list[date]:
    """The days before ``day`` whose volume the report shows, oldest first."""
    return [day - timedelta(days=n) for n in range(days, 0, -1)]


def volume_history(shelf: ReportShelf, day: date, days: int = HISTORY_DAYS) -> list[dict[str, Any]]:
    """Chat items of each of the ``days`` days before ``day`` (None: no report)."""
    known = shelf.summaries()
    history = []
    for earlier in history_days(day, days):
        summary = known.get(earlier)
        history.append({"day": earlier.isoformat(), "items": summary.items if summary else None})
    return history
