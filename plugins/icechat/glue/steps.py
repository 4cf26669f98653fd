"""The bodies of the DAG's tasks: read settings and connections, call the core, return JSON.

Each step turns the core's typed errors into what Airflow should do with them: a transient
one is raised as it is (the task retries with backoff), any other becomes
``AirflowFailException`` (no retry: a person must act, and the message says how).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date
from pathlib import Path
from typing import Any

from airflow.sdk import Variable
from airflow.sdk.exceptions import AirflowFailException

from icechat.exceptions import IceChatError, SettingsError
from icechat.settings import Settings

log = logging.getLogger(__name__)

LEDGER_CONN_ID = "icechat_ledger"


def load_settings() -> Settings:
    """The connector's Airflow Variables, checked."""
    return Settings.from_lookup(lambda name: Variable.get(name, default=None))


def parse_day(text: str) -> date:
    """The day string passed between tasks."""
    return date.fromisoformat(text)


def day_of(context: Mapping[str, Any]) -> date:
    """The day a run processes: its ``day`` param, else the UTC date of its logical date.

    Never ``data_interval_start``: a manual run for logical date D may get another interval.
    """
    given = (context.get("params") or {}).get("day")
    if given:
        try:
            return date.fromisoformat(str(given).strip())
        except ValueError as exc:
            raise AirflowFailException(
                f"param day is {given!r}; give the day to process as YYYY-MM-DD"
            ) from exc
    logical = context.get("logical_date")
    if logical is None:
        raise AirflowFailException(
            "this run has no logical date and no day param: trigger it with a logical date "
            'or with params {"day": "YYYY-MM-DD"}'
        )
    return logical.astimezone(UTC).date()


@contextmanager
def actionable(step: str) -> Iterator[None]:
    """Log an icechat error plainly, and retry only what may succeed later."""
    try:
        yield
    except IceChatError as exc:
        what = "will retry" if exc.transient else "not retried: fix the cause, then clear the task"
        log.error("%s failed (%s): %s", step, what, exc)
        if exc.transient:
            raise
        raise AirflowFailException(f"{step}: {exc}") from exc


def data_dir(settings: Settings) -> Path:
    """The data directory, created owner-only on first use."""
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise SettingsError(
            f"variable icechat_data_dir is {str(path)!r}, which cannot be created "
            f"({exc.strerror}); point it at a writable directory shared by the workers"
        ) from exc
    return path


def fetch(day: date) -> dict[str, Any]:
    """Download the day's parts into ``raw/{day}/`` (nothing already there is fetched again)."""
    from icechat.fetch import fetch_day
    from icechat.glue.sftp import open_site

    began = time.monotonic()
    with actionable("fetch"):
        settings = load_settings()
        with open_site() as site:
            result = fetch_day(site, settings.remote_dir, site.login, day, data_dir(settings))
    return {**result.to_dict(), "seconds": time.monotonic() - began}


def decrypt_and_unpack(day: date, fetched: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Decrypt (when encrypted) and unpack each part under ``work/{day}/`` (owner-only)."""
    from icechat.glue.pgp import pgp_key
    from icechat.pgp import decrypt_parts
    from icechat.workdir import unpack_part, work_day_dir

    with actionable("decrypt"):
        work = work_day_dir(data_dir(load_settings()), day) / "parts"
        files = fetched["files"]
        plain = decrypt_parts([Path(f["path"]) for f in files], work, pgp_key())
        parts = []
        for entry, path in zip(files, plain, strict=True):
            unpacked = unpack_part(path, work)
            parts.append(
                {
                    "name": entry["name"],
                    "raw": entry["path"],
                    "xml": str(unpacked.xml),
                    "items_expected": entry.get("items_expected"),
                }
            )
    return parts


def parse_and_render(day: date, parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Parse every part and write its mail items (one line each) under ``work/{day}/items``."""
    from icechat.stages import render_day
    from icechat.workdir import work_day_dir

    began = time.monotonic()
    with actionable("parse and render"):
        settings = load_settings()
        out = work_day_dir(data_dir(settings), day) / "items"
        summary = render_day(parts, out, mode=settings.item_mode, profile=settings.profile)
    log.info(
        "%d chat items in %d conversations rendered as %d mail items",
        summary["items"],
        summary["conversations"],
        summary["mail_items"],
    )
    return {**summary, "seconds": time.monotonic() - began}


def ledger_url(settings: Settings, data: Path | None = None) -> str:
    """The ``icechat_ledger`` connection as a SQLAlchemy URL; absent: SQLite in the data dir.

    ``data`` is the data directory when the caller must not create it (the UI reads only).
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException
    from airflow.sdk.log import mask_secret

    try:
        conn = BaseHook.get_connection(LEDGER_CONN_ID)
    except AirflowNotFoundException:
        return f"sqlite:///{(data or data_dir(settings)) / 'ledger.sqlite'}"
    if conn.password:
        mask_secret(conn.password)
    if conn.conn_type in ("postgres", "postgresql"):
        return f"postgresql://{conn.get_uri().partition('://')[2]}"
    url = conn.extra_dejson.get("url") or conn.host or ""
    if "://" not in url:
        raise SettingsError(
            f"connection {LEDGER_CONN_ID} is of type {conn.conn_type!r} without a SQLAlchemy URL: "
            "make it a postgres connection, or put the URL in its host or its extra 'url'"
        )
    return str(url)


def _items_dir(settings: Settings, day: date) -> Path:
    from icechat.workdir import work_day_dir

    return work_day_dir(data_dir(settings), day) / "items"


def plan(day: date, rendered: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Map every participant to a mailbox and write the import shards under ``work/{day}/plan``.

    Copies that go nowhere are recorded in the ledger too (mailbox ``unmapped:{ImId}``, state
    ``not_mapped`` with the reason), so it accounts for every copy, not only imported ones;
    so are every copy's route and the MessageIDs of every item, for the ledger search.
    """
    from icechat.glue.graph_hook import graph_settings
    from icechat.graph_client import GraphClient
    from icechat.mapping.graph_directory import GraphDirectory
    from icechat.mapping.plan import plan_day
    from icechat.mapping.rules import Resolver
    from icechat.workdir import work_day_dir

    began = time.monotonic()
    with actionable("map participants"):
        settings = load_settings()
        table = mapping_table(settings)
        with GraphClient(graph_settings()) as client:
            directory = GraphDirectory(client)
            resolver = Resolver(table, directory, auto_mapping=settings.auto_mapping)
            fallback = None
            if settings.unmapped_mailbox:
                fallback = directory.lookup([settings.unmapped_mailbox])[settings.unmapped_mailbox]
                if fallback.user_id is None or fallback.verdict != "valid":
                    raise SettingsError(
                        f"variable icechat_unmapped_mailbox is {settings.unmapped_mailbox}, "
                        f"which is not a valid mailbox ({fallback.verdict}); fix or delete it"
                    )
            plan_dir = work_day_dir(data_dir(settings), day) / "plan"
            part_dirs = [Path(p) for p in rendered["part_dirs"]]
            summary = plan_day(part_dirs, resolver, plan_dir, fallback=fallback)
        _record_plan(settings, day, plan_dir, part_dirs, str(context["run_id"]))
    log.info(
        "%d copies: %d to import, %d already covered by another participant, not mapped: %s",
        summary.copies,
        summary.planned,
        summary.already_present,
        dict(summary.not_mapped),
    )
    return {**summary.to_json(), "seconds": time.monotonic() - began}


def _record_plan(
    settings: Settings, day: date, plan_dir: Path, part_dirs: list[Path], run_id: str
) -> None:
    from icechat.ledger import Ledger
    from icechat.mapping.plan import record_plan

    with Ledger(ledger_url(settings)) as ledger:
        record_plan(ledger, day, plan_dir, part_dirs, run_id)


def mapping_table(settings: Settings) -> Any:
    """The custom mapping file (path or object-storage URL), refused when it has problems."""
    from airflow.sdk import ObjectStoragePath

    from icechat.mapping.csvfile import parse_mapping

    if not settings.mapping_csv:
        return None
    source = settings.mapping_csv
    try:
        data = (
            ObjectStoragePath(source).read_bytes() if "://" in source else Path(source).read_bytes()
        )
    except OSError as exc:
        raise SettingsError(
            f"variable icechat_mapping_csv is {source!r}, which cannot be read ({exc}); "
            "fix the path or delete the variable"
        ) from exc
    table = parse_mapping(data, source)
    table.raise_if_invalid()
    log.info("mapping file %s: %d ImIds", source, len(table.entries))
    return table


def import_shard(day: date, shard: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """Import one shard's copies into their mailboxes; every copy ends in one count."""
    from collections import Counter, defaultdict

    from icechat.glue.graph_hook import graph_settings
    from icechat.graph_client import GraphClient
    from icechat.importer import Copy, CopyOutcome, Importer
    from icechat.itemsfile import PayloadReader, read_sources
    from icechat.ledger import Ledger
    from icechat.mapping.plan import read_shard

    with actionable("import"):
        settings = load_settings()
        items = _items_dir(settings, day)
        planned = read_shard(Path(shard))
        upn_of = {c.user_id: c.upn for c in planned}
        per_mailbox: dict[str, Counter[str]] = defaultdict(Counter)
        readers: dict[str, PayloadReader] = {}
        sources: dict[str, dict[str, dict[str, str]]] = {}

        def copies() -> Iterator[Copy]:
            for c in planned:
                reader = readers.get(c.part)
                if reader is None:
                    reader = readers[c.part] = PayloadReader(items / c.part)
                    sources[c.part] = read_sources(items / c.part)
                yield Copy(
                    mailbox=c.user_id,
                    key=c.key,
                    payload=reader.at(c.offset),
                    day=day,
                    attachment_sources=sources[c.part].get(c.key, {}),
                )

        def seen(outcome: CopyOutcome) -> None:
            per_mailbox[upn_of.get(outcome.mailbox, outcome.mailbox)][str(outcome.status)] += 1

        try:
            with GraphClient(graph_settings()) as client, Ledger(ledger_url(settings)) as ledger:
                importer = Importer(
                    client,
                    ledger,
                    run_id=str(context["run_id"]),
                    folder_name=settings.folder_name,
                    on_outcome=seen,
                )
                result = importer.run(copies(), total=len(planned))
        finally:
            for reader in readers.values():
                reader.close()
    counts = result.counts
    failures = [
        {
            "mailbox": upn_of.get(f.mailbox, f.mailbox),
            "key": f.key,
            "reason": f.reason or "",
            "action": "see the reason; clear this import task to try the copy again",
        }
        for f in result.failures
    ]
    for failure in failures[:20]:
        log.error(
            "copy %s for %s failed: %s", failure["key"], failure["mailbox"], failure["reason"]
        )
    log.info("shard %s: %s", Path(shard).name, dict(counts))
    return {
        "imported": counts["imported"],
        "already_present": counts["already_present"],
        "failed": counts["failed"],
        "imported_with_notice": counts["imported_with_notice"],
        "per_mailbox": {k: dict(v) for k, v in per_mailbox.items()},
        "failures": failures,
        "seconds": result.seconds,
    }


def _pulled(context: Mapping[str, Any], task_id: str) -> Any:
    value = context["ti"].xcom_pull(task_ids=task_id)
    if value is None:
        raise AirflowFailException(
            f"the day stopped before reconciling: task {task_id} has no result (it failed or "
            "was skipped); read that task's log, fix the cause and clear it"
        )
    return value


def reconcile(
    day: date, results: list[Mapping[str, Any] | None], context: Mapping[str, Any]
) -> dict[str, Any]:
    """Write the day's report, record the run, remove the plaintext; fail if a copy failed."""
    from icechat.ledger import FileRecord, Ledger
    from icechat.report import (
        ImportCounts,
        ReportShelf,
        build_report,
        summary_line,
        volume_history,
        write_report,
    )
    from icechat.workdir import remove_plaintext

    # In DAG order, so a run that stopped early names the task that stopped it.
    stages = ("wait_for_export", "fetch", "decrypt", "parse_render", "map_participants")
    pulled = {task_id: _pulled(context, task_id) for task_id in stages}
    fetched, rendered, planned = pulled["fetch"], pulled["parse_render"], pulled["map_participants"]
    imports = ImportCounts()
    for result in results:
        if result:
            imports.add(result)
    with actionable("reconcile"):
        settings = load_settings()
        files = [
            {"name": f["name"], "size": f["size"], "sha256": f["sha256"], "flags": f["flags"]}
            for f in fetched["files"]
        ]
        run_id = str(context["run_id"])
        reports = data_dir(settings) / "reports"
        report = build_report(
            day=day.isoformat(),
            firm=fetched["firm"],
            files=files,
            render=rendered,
            plan=planned,
            imports=imports,
            item_mode=settings.item_mode,
            fetch_seconds=fetched.get("seconds", 0.0),
            run_id=run_id,
            history=volume_history(ReportShelf(reports), day),
        )
        json_path, html_path = write_report(report, reports)
        with Ledger(ledger_url(settings)) as ledger:
            ledger.start_run(
                run_id, day, [FileRecord(f["name"], f["size"], f["sha256"]) for f in files]
            )
            counts = {
                k: report[k]
                for k in ("items", "copies", "imported", "already_present", "not_mapped", "failed")
            }
            ledger.finish_run(run_id, counts, report["timings"])
    log.info("%s", summary_line(report))
    log.info("report: %s (and %s)", json_path, html_path)
    if report["failed"] or not report["balanced"]:
        for failure in report["failures"][:20]:
            log.error(
                "%s %s: %s -> %s",
                failure["mailbox"],
                failure["key"],
                failure["reason"],
                failure["action"],
            )
        raise AirflowFailException(
            f"{summary_line(report)}. Not every copy is archived: read the failures in "
            f"{html_path}, fix the cause, then clear this run's import_shard tasks and "
            "reconcile (copies already imported are skipped)"
        )
    remove_plaintext(data_dir(settings), day)
    return {
        k: report[k]
        for k in (
            "day",
            "items",
            "copies",
            "imported",
            "already_present",
            "not_mapped",
            "failed",
            "balanced",
        )
    }
