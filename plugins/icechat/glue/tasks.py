"""The bodies of the DAG's tasks: each turns Airflow context into core arguments, calls the core
and returns JSON (paths and counts) for the next task.

Each turns the core's typed errors into what Airflow should do with them: a transient one is
raised as it is (the task retries with backoff), any other becomes ``AirflowFailException``
(no retry: a person must act, and the message says how).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from icechat.exceptions import IceChatError
from icechat.glue.connections import (
    data_store,
    graph_settings,
    ledger_url,
    load_settings,
    mapping_table,
    open_site,
    pgp_key,
)
from icechat.ice.rawstore import RawStore
from icechat.store import DataStore

log = logging.getLogger(__name__)


def parse_day(text: str) -> date:
    """The day string passed between tasks."""
    return date.fromisoformat(text)


def attempt_of(context: Mapping[str, Any]) -> int:
    """The run's attempt: how often it was cleared (a cleared run keeps its run id)."""
    return int(getattr(context.get("dag_run"), "clear_number", 0) or 0)


def day_of(context: Mapping[str, Any]) -> date:
    """The day a run processes: its ``day`` param, else the UTC date of its logical date.

    Never ``data_interval_start``: a manual run for logical date D may get another interval.
    The rule is :func:`icechat.overview.day_of_run`; this says why a run has no day.
    """
    from icechat.overview import day_of_run

    given = (context.get("params") or {}).get("day")
    day = day_of_run(context.get("params"), context.get("logical_date"))
    if day is not None:
        return day
    if given:
        raise AirflowFailException(f"param day is {given!r}; give the day to process as YYYY-MM-DD")
    raise AirflowFailException(
        "this run has no logical date and no day param: trigger it with a logical date "
        'or with params {"day": "YYYY-MM-DD"}'
    )


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


def start_day(context: Mapping[str, Any]) -> date:
    """The run's day (:func:`day_of`), once the run is marked in the data store as begun for
    it: whatever its kind, catch-up then never starts that day again."""
    import json

    from icechat.catchup import started_marker
    from icechat.store import layout_key

    day, run_id = day_of(context), str(context["run_id"])
    marker = {"run_id": run_id, "run_type": str(context["dag_run"].run_type), "day": str(day)}
    with actionable("start"):
        store = data_store(load_settings())
        key = layout_key(started_marker(Path(), day, run_id))
        store.write_bytes(key, json.dumps(marker).encode())
    return day


def missed_days(context: Mapping[str, Any]) -> list[dict[str, str]]:
    """For a scheduled run: each day since ``icechat_go_live`` before the run's own that has
    no report and no run, as the arguments of the catch-up run that archives it."""
    from icechat import report
    from icechat.catchup import missed_days as find_missed
    from icechat.catchup import started_dir
    from icechat.store import layout_key

    run = context["dag_run"]
    if run.run_type != "scheduled":
        return []
    with actionable("catch up"):
        settings = load_settings()
    if settings.go_live is None:
        log.warning(
            "variable icechat_go_live is not set: days missed while the scheduler was down or "
            "the DAG paused are not caught up; set it to the first day to archive (YYYY-MM-DD)"
        )
        return []
    store = data_store(settings)

    def handled(day: date) -> bool:
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        reported = report.report_file(report.reports_dir(Path()), day)
        return (
            store.exists(layout_key(reported))
            or bool(context["ti"].get_dr_count(dag_id=run.dag_id, logical_dates=[midnight]))
            or bool(store.files(layout_key(started_dir(Path(), day))))
        )

    missed = find_missed(settings.go_live, day_of(context), handled)
    for day in missed:
        log.warning("ICE Chat %s has no report and no run: starting run catchup__%s", day, day)
    return [
        {"logical_date": f"{d}T00:00:00+00:00", "trigger_run_id": f"catchup__{d}"} for d in missed
    ]


def _stored_files(
    result: Mapping[str, Any], raw: RawStore, store: DataStore, root: Path
) -> dict[str, Any]:
    """The fetch result with each file named for the next task and its retention lock."""
    from icechat.store import portable

    locks = {r.stored: r for r in raw.records}

    def entry(f: Mapping[str, Any]) -> dict[str, Any]:
        record = locks.get(Path(f["path"]).name)
        named = {**f, "path": portable(store, Path(f["path"]), root)}
        if record is None or not record.lock_mode:
            return named
        return named | {"lock_mode": record.lock_mode, "retain_until": record.retain_until}

    marker = result["marker"]
    return {
        **result,
        "raw_dir": portable(store, Path(result["raw_dir"]), root),
        "files": [entry(f) for f in result["files"]],
        "marker": entry(marker) if marker else None,
    }


def _under(key: str, folder: str) -> bool:
    return key.startswith(folder.rstrip("/") + "/")


def fetch(day: date) -> dict[str, Any]:
    """Download the day's parts into ``raw/{day}/`` (nothing already there is fetched again);
    in object storage each original is written once, locked when ``icechat_raw_retention``
    is set."""
    from icechat.ice.fetch import fetch_day
    from icechat.ice.rawstore import keep_originals, raw_day_dir
    from icechat.store import layout_key, workspace

    began = time.monotonic()
    with actionable("fetch"):
        settings = load_settings()
        store = data_store(settings)  # a store that cannot lock is refused before fetching
        with workspace(store, inputs=[layout_key(raw_day_dir(Path(), day))]) as root:
            with open_site() as site:
                result = fetch_day(site, settings.remote_dir, site.firm, day, root)
            retention = settings.raw_retention
            lock = retention.lock(datetime.now(UTC)) if retention else None
            raw = keep_originals(store, root, day, lock)
            fetched = _stored_files(result.to_dict(), raw, store, root)
    return {**fetched, "seconds": time.monotonic() - began}


def decrypt_and_unpack(day: date, fetched: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Decrypt (when encrypted) and unpack each part under ``work/{day}/`` (owner-only); an
    original whose bytes changed since it was fetched is refused."""
    from icechat.ice.rawstore import check_unchanged
    from icechat.store import key_of, layout_key, portable, workspace
    from icechat.workdir import parts_dir, plain_parts, unpacked_parts

    with actionable("decrypt"):
        store = data_store(load_settings())
        files = fetched["files"]
        kept: list[str] = []  # what the next step reads, known once unpacked
        out = layout_key(parts_dir(Path(), day))
        with workspace(store, inputs=[f["path"] for f in files], outputs=kept) as root:
            originals = [root / f["path"] for f in files]
            for entry, original in zip(files, originals, strict=True):
                check_unchanged(original, entry["sha256"])
            xmls = plain_parts(originals, root / out, pgp_key())
            kept += [key_of(p, root) for p in unpacked_parts(xmls, root / out)]
            return [
                {
                    "name": entry["name"],
                    "raw": entry["path"],
                    "xml": portable(store, xml, root),
                    "items_expected": entry.get("items_expected"),
                }
                for entry, xml in zip(files, xmls, strict=True)
            ]


def parse_and_render(day: date, parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Parse every part and write its mail items (one line each) under ``work/{day}/items``."""
    from icechat.render.day import render_day
    from icechat.store import layout_key, portable, workspace
    from icechat.workdir import items_dir, parts_dir

    began = time.monotonic()
    with actionable("parse and render"):
        settings = load_settings()
        store = data_store(settings)
        out, unpacked = layout_key(items_dir(Path(), day)), layout_key(parts_dir(Path(), day))
        # An unencrypted plain part is read where it was fetched, in raw/.
        inputs = [unpacked, *(p["xml"] for p in parts if not _under(p["xml"], unpacked))]
        with workspace(store, inputs=inputs, outputs=[out]) as root:
            local: list[Mapping[str, Any]] = [{**p, "xml": str(root / p["xml"])} for p in parts]
            summary = render_day(
                local, root / out, mode=settings.item_mode, profile=settings.profile
            )
            summary["part_dirs"] = [portable(store, Path(d), root) for d in summary["part_dirs"]]
    log.info(
        "%d chat items in %d conversations rendered as %d mail items",
        summary["items"],
        summary["conversations"],
        summary["mail_items"],
    )
    return {**summary, "seconds": time.monotonic() - began}


def plan(day: date, rendered: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Map every participant to a mailbox, write the import shards under ``work/{day}/plan``
    and record the plan in the ledger (routes, MessageIDs, the copies that go nowhere)."""
    from icechat.graph.client import GraphClient
    from icechat.leases import MailboxLeases
    from icechat.ledger import Ledger
    from icechat.mapping.graph_directory import GraphDirectory
    from icechat.mapping.plan import fallback_mailbox, plan_day, record_plan
    from icechat.mapping.rules import Resolver
    from icechat.render.itemsfile import INDEX
    from icechat.store import layout_key, portable, workspace
    from icechat.workdir import plan_dir as day_plan_dir

    began = time.monotonic()
    run_id, attempt = str(context["run_id"]), attempt_of(context)
    with actionable("map participants"):
        settings = load_settings()
        table, store = mapping_table(settings), data_store(settings)
        out = layout_key(day_plan_dir(Path(), day))
        # The map reads each part's index, never its payloads.
        inputs = [f"{part}/{INDEX}" for part in rendered["part_dirs"]]
        with (
            workspace(store, inputs=inputs, outputs=[out]) as root,
            GraphClient(graph_settings()) as client,
            Ledger(ledger_url(settings)) as ledger,
        ):
            leases = MailboxLeases(ledger, f"map {run_id} attempt {attempt}")
            directory = GraphDirectory(client, leases)
            resolver = Resolver(table, directory, auto_mapping=settings.auto_mapping)
            fallback = fallback_mailbox(directory, settings.unmapped_mailbox)
            parts = [root / p for p in rendered["part_dirs"]]
            summary = plan_day(parts, resolver, root / out, fallback=fallback)
            record_plan(ledger, day, root / out, parts, run_id, attempt=attempt)
            summary.shards = [portable(store, Path(p), root) for p in summary.shards]
    return {**summary.to_json(), "seconds": time.monotonic() - began}


def import_shard(day: date, shard: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """Import one shard's copies into their mailboxes; every copy ends in one count.

    Only the shard file is copied to the workspace; of the day's items, only the payloads
    the shard names are read, by byte range, where they are stored.
    """
    from icechat import importer
    from icechat.graph.client import GraphClient
    from icechat.ledger import Ledger
    from icechat.render.itemsfile import StoredPayloads
    from icechat.store import layout_key, workspace
    from icechat.workdir import items_dir

    with actionable("import"):
        settings = load_settings()
        store = data_store(settings)
        payloads = StoredPayloads(store, layout_key(items_dir(Path(), day)))
        with (
            workspace(store, inputs=[shard]) as root,
            GraphClient(graph_settings()) as client,
            Ledger(ledger_url(settings)) as ledger,
        ):
            summary = importer.import_shard(
                client,
                ledger,
                root / shard,
                payloads,
                day,
                run_id=str(context["run_id"]),
                attempt=attempt_of(context),
                folder_name=settings.folder_name,
            )
    return summary.to_json()


def _results(upstream: Mapping[str, Any]) -> list[Any]:
    """The upstream tasks' results in DAG order; fail naming a task that left none."""
    for task_id, result in upstream.items():
        if result is None:
            raise AirflowFailException(
                f"the day stopped before reconciling: task {task_id} has no result (it failed "
                "or was skipped); read that task's log, fix the cause and clear it"
            )
    return list(upstream.values())


def reconcile(
    day: date,
    upstream: Mapping[str, Any],
    shards: Sequence[Mapping[str, Any] | None],
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """Write the day's report, record the run, remove the plaintext; fail if a copy failed.

    ``upstream`` holds the results of wait, fetch, decrypt, parse+render and map, keyed by
    task id in DAG order; ``None`` for a task that failed or was skipped.
    """
    from icechat import report
    from icechat.ledger import Ledger
    from icechat.workdir import remove_stored_plaintext

    _waited, fetched, _parts, rendered, planned = _results(upstream)
    with actionable("reconcile"):
        settings = load_settings()
        store, run_id = data_store(settings), str(context["run_id"])
        day_report = report.day_report(
            day,
            fetched=fetched,
            rendered=rendered,
            planned=planned,
            shards=shards,
            item_mode=settings.item_mode,
            run_id=run_id,
            attempt=attempt_of(context),
            history=report.stored_history(store, day),
        )
        json_path, html_path = report.store_report(store, day_report)
        with Ledger(ledger_url(settings)) as ledger:
            report.record_run(ledger, run_id, day, day_report)
    log.info("%s", report.summary_line(day_report))
    log.info("report: %s (and %s)", json_path, html_path)
    if not report.archived(day_report):
        report.log_failures(day_report)
        raise AirflowFailException(
            f"{report.summary_line(day_report)}. Not every copy is archived: read the failures "
            f"in {html_path}, fix the cause, then clear this run's import_shard tasks and "
            "reconcile (copies already imported are skipped)"
        )
    remove_stored_plaintext(store, day)
    return report.outcome(day_report)
