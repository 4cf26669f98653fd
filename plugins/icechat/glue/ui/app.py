"""The ICE Chat pages, served by Airflow's API server under ``/icechat``.

- ``days``: the archive day by day (state, figures, a link to each report); gaps stand out;
- ``reports/{day}``: a day's report page;
- ``runs/{dag_id}/{run_id}``: the report of the day a run processed (a tab of each run);
- ``search?q=``: the ledger's answer to "where did this chat item go?".

Plain server-side HTML: Airflow shows external views in an iframe. Every route depends on
Airflow's own check that the user may read the ``icechat_archive`` DAG's runs, so an
anonymous request gets 401 and a user without that right 403.
"""

from __future__ import annotations

import functools
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import Depends, FastAPI, Response
from fastapi.responses import HTMLResponse

from icechat.exceptions import IceChatError
from icechat.glue.connections import data_store, ledger_url, load_settings
from icechat.glue.ui.runs import DAG_ID, latest_runs, run_of
from icechat.ledger import LedgerReader
from icechat.overview import DayState, RunState, day_rows, default_range
from icechat.report import ReportShelf, mirrored_reports, render_html, reports_dir

MAX_RANGE = 3660  # days one overview may list
SEARCH_LIMIT = 500

_PAGES = jinja2.Environment(
    loader=jinja2.PackageLoader("icechat.glue.ui", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="#4a90d9" '
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M21 12a8 8 0 0 1-'
    '11.6 7.1L4 21l1.9-5.4A8 8 0 1 1 21 12z"/><path d="M8 11h8M8 14h5"/></svg>'
)

app = FastAPI(
    title="ICE Chat",
    description="The ICE Chat archive day by day, each run's report, the ledger search.",
    dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=DAG_ID))],
)


@functools.lru_cache(maxsize=4)
def _shelf(reports: Path) -> ReportShelf:
    return ReportShelf(reports)


def _reports() -> ReportShelf:
    """The day reports: the data directory's, or a local mirror of the object store's."""
    settings = load_settings()
    if settings.data_url is None:
        return _shelf(reports_dir(settings.data_dir))
    cache = Path(tempfile.gettempdir()) / "icechat-ui-reports"
    return _shelf(mirrored_reports(data_store(settings), cache))


@functools.lru_cache(maxsize=4)
def _ledger(url: str) -> LedgerReader:
    return LedgerReader(url)


def _page(template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """A page; ``root`` (relative, so a base path in front of /icechat works) leads home."""
    values = {"root": "", "query": "", **values}
    return HTMLResponse(_PAGES.get_template(template).render(**values), status_code=status_code)


def _problem(title: str, message: str, status_code: int, root: str = "") -> HTMLResponse:
    return _page("message.html.j2", status_code, title=title, message=message, root=root)


@app.get("/days", response_class=HTMLResponse)
def days(session: SessionDep, start: date | None = None, end: date | None = None) -> HTMLResponse:
    """The archive day by day, newest first; without a range, from the first known day."""
    try:
        shelf = _reports()
    except IceChatError as exc:
        return _problem("ICE Chat settings", str(exc), 500)
    summaries = shelf.summaries()
    runs = latest_runs(session)
    first, last = default_range({*summaries, *runs}, datetime.now(UTC).date())
    start, end = start or first, end or last
    if start > end or end - start > timedelta(days=MAX_RANGE):
        message = f"from {start} to {end}: give a start before the end, at most {MAX_RANGE} days"
        return _problem("ICE Chat days", message, 400)
    rows = day_rows(start, end, summaries, runs)
    tally = {state: sum(1 for r in rows if r.state is state) for state in DayState}
    gaps = sorted(r.day for r in rows if r.state is DayState.NEVER_RUN)
    return _page("days.html.j2", rows=rows, tally=tally, gaps=gaps, start=start, end=end)


@app.get("/reports/{day}", response_class=HTMLResponse)
def report(day: date) -> HTMLResponse:
    """A day's report page (rendered again from its JSON, with a way back to the days)."""
    try:
        found = _reports().report(day)
    except IceChatError as exc:
        return _problem("ICE Chat settings", str(exc), 500, "../")
    if found is None:
        message = f"{day} has no report: it was never archived."
        return _problem(f"ICE Chat {day}", message, 404, "../")
    return HTMLResponse(render_html(found, back="../days"))


@app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
def run_report(dag_id: str, run_id: str, session: SessionDep) -> HTMLResponse:
    """The report of the day a run processed, saying whether this run wrote it."""
    home = "../../"
    if dag_id != DAG_ID:
        message = f"{dag_id} is not the ICE Chat DAG ({DAG_ID})."
        return _problem("ICE Chat report", message, 404, home)
    found = run_of(session, dag_id, run_id)
    if found is None:
        return _problem("ICE Chat report", f"{DAG_ID} has no run {run_id}.", 404, home)
    day, run = found
    if day is None:
        return _problem("ICE Chat report", f"run {run_id} names no day to process.", 404, home)
    try:
        report_ = _reports().report(day)
    except IceChatError as exc:
        return _problem("ICE Chat settings", str(exc), 500, home)
    if report_ is None:
        return _problem(f"ICE Chat {day}", _no_report(day, run), 404, home)
    return HTMLResponse(render_html(report_, note=_whose(report_, day, run)))


def _whose(report_: dict[str, Any], day: date, run: RunState) -> str:
    writer = report_.get("run_id")
    if writer == run.run_id:
        return f"Run {run.run_id} processed {day} and wrote this report."
    return (
        f"Run {run.run_id} processed {day} (state: {run.state}); this is the day's latest "
        f"report, written by run {writer or 'unknown'} at {report_.get('generated_at')}."
    )


def _no_report(day: date, run: RunState) -> str:
    if run.waiting_for_ice:
        return f"Run {run.run_id} is waiting for ICE to deliver {day}; no report yet."
    return f"Run {run.run_id} ({run.state}) has written no report for {day}."


@app.get("/search", response_class=HTMLResponse)
def search(q: str = "") -> HTMLResponse:
    """Every copy of the item with this MessageID, of this ImId, or in this mailbox."""
    found = []
    if q.strip():
        try:
            settings = load_settings()
            found = _ledger(ledger_url(settings, settings.data_dir)).search(
                q, limit=SEARCH_LIMIT + 1
            )
        except IceChatError as exc:
            return _problem("ICE Chat search", str(exc), 500)
    return _page(
        "search.html.j2",
        query=q,
        hits=found[:SEARCH_LIMIT],
        more=len(found) > SEARCH_LIMIT,
        limit=SEARCH_LIMIT,
    )


@app.get("/icon.svg")
def icon() -> Response:
    """The navigation icon."""
    return Response(ICON, media_type="image/svg+xml")
