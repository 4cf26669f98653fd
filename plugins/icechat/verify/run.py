"""Verify one archived day: originals, mailboxes, accounting; write the report.

The order is the audit trail's: the originals first (are they the bytes that were
fetched?), then what the archive made of them, made again (``expected``), then each
mailbox against the ledger, then the accounting of every copy. ``repair`` re-imports the
copies found missing before the accounting, and re-checks their mailboxes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from icechat.exceptions import ArchiveError, ExportFormatError, PgpError
from icechat.graph.client import GraphClient
from icechat.ice.pgp import PgpKey
from icechat.ice.profile import DEFAULT_PROFILE, Profile
from icechat.ice.rawstore import raw_day_dir
from icechat.ledger import CopyRecord, Ledger
from icechat.render import MESSAGE
from icechat.report import reports_dir
from icechat.settings import DEFAULT_FOLDER
from icechat.store import DataStore, key_of
from icechat.verify.accounting import UNMAPPED, account
from icechat.verify.checkpoint import Checkpoint, fingerprint
from icechat.verify.expected import Expected, derive, remove_plaintext
from icechat.verify.findings import Finding, Kind
from icechat.verify.mailboxes import MailboxChecker, MailboxResult
from icechat.verify.originals import (
    Protection,
    check_originals,
    day_report,
    local_protection,
    report_files,
    store_protection,
)
from icechat.verify.repair import repair_missing
from icechat.verify.report import build_report, summary_line, write_report
from icechat.workdir import verify_work_dir

log = logging.getLogger(__name__)


def now_utc() -> datetime:
    """The verification's clock (tests give their own)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class VerifyJob:
    """What to verify and with which settings (those the day was archived with).

    ``store`` is the data directory when ``data_dir`` is only a scratch copy of it (an object
    store): messages and the report name files by its URL, and its locks protect originals.
    """

    day: date
    data_dir: Path
    folder_name: str = DEFAULT_FOLDER
    item_mode: str = MESSAGE
    profile: Profile = DEFAULT_PROFILE
    run: str = "icechat verify"
    workers: int = 8
    store: DataStore | None = None

    def where(self, path: Path) -> str:
        """``path`` (in ``data_dir``) as users reach it: itself, or its URL in the store."""
        if self.store is None:
            return str(path)
        key = key_of(path, self.data_dir)
        return self.store.url if key == "." else f"{self.store.url}/{key}"

    def protection(self, now: datetime) -> Protection:
        """What protects the originals at ``now``: file modes, or the store's locks."""
        if self.store is None:
            return local_protection
        return store_protection(self.store, self.data_dir, now)


@dataclass(frozen=True)
class VerifyOutcome:
    """The written report (where users reach it: a path, or a URL in the store), and whether
    checking again later may clear a Graph outage."""

    report: dict[str, Any]
    json_at: str
    html_at: str
    retry_later: bool

    @property
    def verified(self) -> bool:
        return bool(self.report["verified"])

    @property
    def summary(self) -> str:
        return str(self.report["summary"])


def verify_day(
    job: VerifyJob,
    *,
    ledger: Ledger,
    client: GraphClient,
    pgp_key: PgpKey | None,
    repair: bool = False,
    clock: Callable[[], datetime] = now_utc,
) -> VerifyOutcome:
    """Check the day, write ``reports/verify-{day}.json`` and ``.html``; never raises on a
    difference (the outcome says), only when the ledger or the data directory fail."""
    started = clock()
    day = job.day.isoformat()
    work = verify_work_dir(job.data_dir, job.day)
    reports = reports_dir(job.data_dir)
    findings: list[Finding] = []
    report_of_day = day_report(reports, day)
    runs = ledger.runs(job.day)
    if report_of_day is None or not runs:
        what = f"no report reports/{day}.json" if report_of_day is None else "no run row"
        findings.append(Finding(Kind.NOT_ARCHIVED, "report and ledger", f"{what} for {day}"))
    originals = check_originals(
        raw_day_dir(job.data_dir, job.day),
        report_files(report_of_day),
        list(runs[-1].files) if runs else None,
        job.protection(started),
    )
    findings.extend(originals.findings)
    try:
        expected = expected_items(job, originals.run_paths, pgp_key, findings)
        results, resumed = _check_mailboxes(job, client, ledger, expected, work, started)
        repairs: list[dict[str, Any]] = []
        if repair:
            repairs = repair_missing(
                results,
                expected,
                ledger=ledger,
                client=client,
                folder_name=job.folder_name,
                day=job.day,
                run_id=f"verify-repair-{day}-{started:%Y%m%dT%H%M%SZ}",
                when=started.isoformat(timespec="seconds"),
            )
            if repairs and expected is not None:
                results, _ = _check_mailboxes(job, client, ledger, expected, work, started)
        upns = {r.mailbox: r.upn for r in results}
        accounting, accounted = account(
            list(ledger.copies(job.day)), report_of_day, expected, names=upns
        )
    finally:
        remove_plaintext(work)
    findings.extend(accounted)
    findings.extend(f for r in results for f in r.findings)
    report = build_report(
        day=day,
        started_at=started,
        finished_at=clock(),
        graph_app=client.settings.client_id,
        run=job.run,
        data_dir=job.where(job.data_dir),
        folder_name=job.folder_name,
        originals=originals,
        mailboxes=results,
        resumed=resumed,
        accounting=accounting,
        findings=findings,
        repairs=repairs,
    )
    json_path, html_path = write_report(report, reports)
    retry_later = any(r.transient for r in results)
    if not retry_later:
        Checkpoint(work, started).clear()
    log.info("%s", summary_line(report))
    return VerifyOutcome(report, job.where(json_path), job.where(html_path), retry_later)


def expected_items(
    job: VerifyJob,
    raw_files: Sequence[Path],
    pgp_key: PgpKey | None,
    findings: list[Finding] | None = None,
) -> Expected | None:
    """The day's items made again from intact originals; ``None`` (and a finding) if not.

    The plaintext stays under the day's verify work directory until
    :func:`icechat.verify.expected.remove_plaintext`.
    """
    if not raw_files:
        return None
    work = verify_work_dir(job.data_dir, job.day)
    try:
        return derive(raw_files, work, pgp_key, mode=job.item_mode, profile=job.profile)
    except (PgpError, ExportFormatError, ArchiveError) as exc:
        if findings is not None:
            findings.append(Finding(Kind.UNREADABLE, f"raw/{job.day.isoformat()}", str(exc)))
        return None


def _check_mailboxes(
    job: VerifyJob,
    client: GraphClient,
    ledger: Ledger,
    expected: Expected | None,
    work: Path,
    started: datetime,
) -> tuple[list[MailboxResult], int]:
    """Every mailbox with copies of the day, in parallel; those in the checkpoint are kept."""
    rows: dict[str, list[CopyRecord]] = defaultdict(list)
    for row in ledger.copies(job.day):
        if not row.mailbox.startswith(UNMAPPED):
            rows[row.mailbox].append(row)
    times = {k: i.chat_time for k, i in expected.items.items()} if expected else {}
    checker = MailboxChecker(client, folder_name=job.folder_name, day=job.day, chat_times=times)
    checkpoint = Checkpoint(work, started)

    def one(mailbox: str) -> tuple[MailboxResult, bool]:
        print_ = fingerprint(job.folder_name, rows[mailbox])
        known = checkpoint.get(mailbox, print_)
        if known is not None:
            return known, True
        result = checker.check(mailbox, rows[mailbox])
        checkpoint.put(mailbox, print_, result)
        return result, False

    with ThreadPoolExecutor(job.workers, thread_name_prefix="icechat-verify") as pool:
        checked = list(pool.map(one, sorted(rows)))
    results = [result for result, _ in checked]
    resumed = sum(1 for _, from_checkpoint in checked if from_checkpoint)
    return results, resumed
