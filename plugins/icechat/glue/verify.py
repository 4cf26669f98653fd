"""``icechat_verify``'s tasks and the ``verify`` / ``evidence`` commands, on Airflow settings.

The connections are ``icechat_archive``'s (``icechat_graph``, ``icechat_pgp``,
``icechat_ledger``); the variables are the connector's and ``icechat_verify_*``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Variable
from airflow.sdk.exceptions import AirflowFailException

from icechat.exceptions import VerifyIncompleteError
from icechat.glue.check import use_metadata_connections
from icechat.glue.connections import data_store, ledger_url, load_settings, mapping_table
from icechat.glue.tasks import actionable
from icechat.settings import Settings, VerifySettings
from icechat.verify import VerifyJob, VerifyOutcome

if TYPE_CHECKING:
    from icechat.verify.evidence import Evidence

log = logging.getLogger(__name__)

__all__ = [
    "days_to_verify",
    "export_evidence",
    "run_verify",
    "use_metadata_connections",
    "verify_settings",
    "verify_task",
]


def verify_settings() -> VerifySettings:
    """The ``icechat_verify_*`` variables, checked."""
    return VerifySettings.from_lookup(lambda name: Variable.get(name, default=None))


def days_to_verify(context: Mapping[str, Any]) -> list[str]:
    """The run's ``days`` param, else the range the variables give for the run's day."""
    given = (context.get("params") or {}).get("days")
    if given:
        try:
            return [date.fromisoformat(str(d).strip()).isoformat() for d in given]
        except ValueError as exc:
            raise AirflowFailException(
                f"param days is {given!r}; give a list of days as YYYY-MM-DD"
            ) from exc
    with actionable("days to verify"):
        settings = verify_settings()
    started = context.get("logical_date") or context["dag_run"].run_after
    days = settings.days_for(started.astimezone(UTC).date())
    log.info("verifying %s to %s", days[0], days[-1])
    return [d.isoformat() for d in days]


@contextmanager
def _day_job(settings: Settings, day: date, run: str) -> Iterator[VerifyJob]:
    """A day to verify with the settings it was archived with: its originals, reports and
    verification state in a local folder (the data directory itself, or a scratch copy of
    the object store's, written back at the end, messages naming the store's URLs)."""
    from icechat.ice.rawstore import raw_day_dir
    from icechat.report import report_file, reports_dir
    from icechat.store import layout_key, workspace
    from icechat.verify.report import report_paths
    from icechat.workdir import verify_work_dir

    shelf = reports_dir(Path())
    written = [*report_paths(shelf, day.isoformat()), verify_work_dir(Path(), day)]
    outputs = [layout_key(p) for p in written]
    archived = [raw_day_dir(Path(), day), *(report_file(shelf, day, k) for k in ("json", "html"))]
    inputs = [*(layout_key(p) for p in archived), *outputs]
    store = data_store(settings)
    with workspace(store, inputs=inputs, outputs=outputs) as root:
        yield VerifyJob(
            day,
            root,
            folder_name=settings.folder_name,
            item_mode=settings.item_mode,
            profile=settings.profile,
            run=run,
            store=None if store.local_root is not None else store,
        )


def run_verify(day: date, run: str, *, repair: bool = False) -> VerifyOutcome:
    """Verify one day with the deployment's settings and connections."""
    from icechat.glue.connections import graph_settings, pgp_key
    from icechat.graph.client import GraphClient
    from icechat.ledger import Ledger
    from icechat.verify import verify_day

    settings = load_settings()
    with (
        _day_job(settings, day, run) as job,
        GraphClient(graph_settings()) as client,
        Ledger(ledger_url(settings)) as ledger,
    ):
        outcome = verify_day(job, ledger=ledger, client=client, pgp_key=pgp_key(), repair=repair)
    if outcome.retry_later:
        raise VerifyIncompleteError(
            f"{outcome.summary}: Graph was unavailable for some mailboxes ({outcome.html_at}); "
            "verify the day again later: the mailboxes already checked are not read again"
        )
    return outcome


def verify_task(day: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """One day of ``icechat_verify``: fails, listing what differs, unless all is verified."""
    repair = bool((context.get("params") or {}).get("repair"))
    with actionable("verify"):
        outcome = run_verify(date.fromisoformat(day), str(context["run_id"]), repair=repair)
    log.info("%s", outcome.summary)
    log.info("report: %s (and %s)", outcome.json_at, outcome.html_at)
    if not outcome.verified:
        for finding in outcome.report["findings"][:20]:
            log.error(
                "%s %s %s: %s -> %s",
                finding["kind"],
                finding["subject"],
                finding["key"],
                finding["detail"],
                finding["action"],
            )
        raise AirflowFailException(
            f"{outcome.summary}. Read {outcome.html_at}: each difference says what to do"
        )
    report = outcome.report
    return {k: report[k] for k in ("day", "verified", "differences", "by_kind")}


def export_evidence(day: date, out: Path) -> Evidence:
    """Write the day's evidence folder with the deployment's settings and connections."""
    from icechat.glue.connections import graph_settings, pgp_key
    from icechat.graph.client import GraphClient
    from icechat.ledger import Ledger
    from icechat.mapping.graph_directory import GraphDirectory
    from icechat.mapping.rules import Resolver
    from icechat.verify.evidence import export_evidence as export

    settings = load_settings()
    with (
        _day_job(settings, day, "icechat evidence") as job,
        GraphClient(graph_settings()) as client,
        Ledger(ledger_url(settings)) as ledger,
    ):
        resolver = Resolver(
            mapping_table(settings), GraphDirectory(client), auto_mapping=settings.auto_mapping
        )
        return export(job, ledger, out, pgp_key=pgp_key(), resolver=resolver)
