"""The sensor that waits for day D's export on the ICE SFTP site.

It runs in reschedule mode, so a waiting day holds no worker slot: each poke connects, looks
once, saves the look for the next poke in the data directory (a folder or object storage),
and disconnects. Looks are
``icechat_poke_interval`` seconds apart (600 by default) unless the task gives its own.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowSensorTimeout

from icechat.exceptions import DeliveryTimeoutError
from icechat.glue.connections import SFTP_CONN_ID, data_store, load_settings, open_site
from icechat.ice.delivery import default_deadline, enforce_deadline
from icechat.ice.fetch import load_look, look, save_look
from icechat.settings import DEFAULT_POKE_INTERVAL
from icechat.store import LocalStore, layout_key, workspace
from icechat.workdir import look_state_path


class IceChatDeliverySensor(BaseSensorOperator):
    """Done when day ``day``'s parts are complete on the site (see ``check_complete``).

    Returns (as XCom) ``{"day", "firm", "parts": [{"name", "size", "mtime"}], "marker"}``,
    ``firm`` as the files spell it. Each look that is not complete logs what it saw, what it
    waits for and what else in the directory looks like an ICE Chat export.
    Fails with :class:`AirflowSensorTimeout` after ``deadline`` (default: end of D+1, UTC),
    naming the site, the directory, the names expected and what was seen; at once when the
    first look is already past the deadline and finds nothing of the day (an old day).
    """

    template_fields = ("day", "remote_dir", "data_dir", "deadline")

    def __init__(
        self,
        *,
        day: str,
        data_dir: str | None = None,
        remote_dir: str | None = None,
        sftp_conn_id: str = SFTP_CONN_ID,
        deadline: str | None = None,
        mode: str = "reschedule",
        poke_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, poke_interval=poke_interval or DEFAULT_POKE_INTERVAL, **kwargs)
        self.poke_from_settings = poke_interval is None
        self.day = day
        self.data_dir = data_dir
        self.remote_dir = remote_dir
        self.sftp_conn_id = sftp_conn_id
        self.deadline = deadline

    def execute(self, context: Any) -> Any:
        if self.poke_from_settings:
            self.poke_interval = load_settings().poke_interval
        return super().execute(context)

    def clock(self) -> datetime:
        """The time the deadline is compared with; tests replace it, so none depends on today."""
        return datetime.now(UTC)

    def poke(self, context: Any) -> PokeReturnValue:
        day = date.fromisoformat(self.day)
        settings = load_settings()
        remote_dir = self.remote_dir or settings.remote_dir
        store = LocalStore(Path(self.data_dir)) if self.data_dir else data_store(settings)
        key = layout_key(look_state_path(Path(), day))
        with workspace(store, inputs=[key], outputs=[key]) as root:
            previous = load_look(root / key)
            with open_site(self.sftp_conn_id) as site:
                completion = look(site, remote_dir, site.firm, day, previous)
            save_look(root / key, completion.look)
        if completion.complete:
            self.log.info("ICE Chat %s complete on %s: %s", day, site.site, completion.describe())
            return PokeReturnValue(
                is_done=True,
                xcom_value={
                    "day": day.isoformat(),
                    "firm": completion.firm,
                    "parts": [p.to_dict() for p in completion.parts],
                    "marker": completion.marker is not None,
                },
            )
        deadline = datetime.fromisoformat(self.deadline) if self.deadline else None
        try:
            enforce_deadline(
                completion,
                now=self.clock(),
                deadline=deadline or default_deadline(day),
                first_look=previous is None,
                site=site.site,
                remote_dir=remote_dir,
                firm=site.firm,
                day=day,
            )
        except DeliveryTimeoutError as exc:
            raise AirflowSensorTimeout(str(exc)) from exc
        self.log.info("ICE Chat %s not complete yet: %s", day, completion.describe())
        return PokeReturnValue(is_done=False)
