"""Glue that turns Airflow connections, variables and run context into core values."""

from __future__ import annotations

import json
from datetime import date

import pendulum
import pytest
from airflow.sdk.exceptions import AirflowFailException

from icechat.exceptions import DeliveryError, ExportFormatError, SettingsError
from icechat.glue import tasks
from icechat.settings import Settings


def test_day_is_the_param_else_the_logical_date_never_the_interval():
    logical = pendulum.datetime(2026, 11, 26, tz="UTC")
    context = {
        "params": {},
        "logical_date": logical,
        "data_interval_start": pendulum.datetime(2026, 11, 25, tz="UTC"),
    }
    assert tasks.day_of(context) == date(2026, 11, 26)
    assert tasks.day_of({**context, "params": {"day": "2026-11-20"}}) == date(2026, 11, 20)
    with pytest.raises(AirflowFailException, match="param day is '26/11/2026'; give the day"):
        tasks.day_of({**context, "params": {"day": "26/11/2026"}})
    with pytest.raises(AirflowFailException, match="no logical date and no day param"):
        tasks.day_of({"params": {}, "logical_date": None})


def test_transient_errors_retry_and_permanent_ones_fail_without_retry():
    with pytest.raises(DeliveryError), tasks.actionable("fetch"):
        raise DeliveryError("site busy")
    with (
        pytest.raises(AirflowFailException, match="parse and render: p.xml: bad"),
        tasks.actionable("parse and render"),
    ):
        raise ExportFormatError("bad", file="p.xml")


@pytest.mark.parametrize(
    ("conn", "expected"),
    [
        (
            {
                "conn_type": "postgres",
                "host": "db",
                "login": "u",
                "password": "p",
                "schema": "l",
                "port": 5432,
            },
            "postgresql://u:p@db:5432/l",
        ),
        (
            {"conn_type": "generic", "host": "sqlite:////var/icechat/ledger.db"},
            "sqlite:////var/icechat/ledger.db",
        ),
        ({"conn_type": "generic", "extra": {"url": "postgresql://x@h/d"}}, "postgresql://x@h/d"),
    ],
)
def test_ledger_connection_to_url(monkeypatch, tmp_path, conn, expected):
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_LEDGER", json.dumps(conn))
    assert tasks.ledger_url(Settings(data_dir=tmp_path)) == expected


def test_no_ledger_connection_means_sqlite_in_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("AIRFLOW_CONN_ICECHAT_LEDGER", raising=False)
    assert tasks.ledger_url(Settings(data_dir=tmp_path)) == f"sqlite:///{tmp_path}/ledger.sqlite"


def test_a_ledger_connection_without_url_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_LEDGER", json.dumps({"conn_type": "generic"}))
    with pytest.raises(SettingsError, match="put the URL in its host or its extra 'url'"):
        tasks.ledger_url(Settings(data_dir=tmp_path))
