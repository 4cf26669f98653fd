"""The bodies of the DAG's tasks: read settings and connections, call the core, return JSON.

Each step turns the core's typed errors into what Airflow should do with them: a transient
one is raised as it is (the task retries with backoff), any other becomes
``AirflowFailException`` (no retry: a person must act, and the message says how).
"""

from __future__ import annotations

import logging
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


def load_settings() -> Settings:
    """The connector's Airflow Variables, checked."""
    return Settings.from_lookup(lambda name: Variable.get(name, default=None))


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

    with actionable("fetch"):
        settings = load_settings()
        with open_site() as site:
            result = fetch_day(site, settings.remote_dir, site.login, day, data_dir(settings))
    return result.to_dict()


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
                    "xml": str(unpacked.xml),
                    "items_expected": entry.get("items_expected"),
                }
            )
    return parts


def parse_and_render(day: date, parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Parse every part and write its mail items (one line each) under ``work/{day}/items``."""
    from icechat.stages import render_day
    from icechat.workdir import work_day_dir

    with actionable("parse and render"):
        settings = load_settings()
        out = work_day_dir(data_dir(settings), day) / "items"
        summary = render_day(parts, out, mode=settings.item_mode)
    log.info(
        "%d chat items in %d conversations rendered as %d mail items",
        summary["items"],
        summary["conversations"],
        summary["mail_items"],
    )
    return summary
