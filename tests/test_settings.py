"""The connector's variables: defaults, checked values, and a firm's own profile."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from icechat.exceptions import SettingsError
from icechat.ice.parser import read_part
from icechat.ice.profile import DEFAULT_PROFILE
from icechat.settings import Settings
from tests.support.paths import REPO, SPEC


def settings(**values: str) -> Settings:
    return Settings.from_lookup(lambda name: values.get(name.removeprefix("icechat_")))


def test_defaults(monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", "/opt/airflow")
    got = settings()
    assert got.remote_dir == "/"
    assert got.data_dir == Path("/opt/airflow/icechat")
    assert (got.auto_mapping, got.folder_name, got.item_mode) == (True, "ICE Chat", "message")
    assert got.mapping_csv is None and got.unmapped_mailbox is None
    assert got.profile == DEFAULT_PROFILE


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("auto_mapping", "maybe", "icechat_auto_mapping is 'maybe'; set it to true or false"),
        ("item_mode", "thread", "icechat_item_mode is 'thread'; set it to one of message"),
        ("folder_name", "Chats/ICE", "icechat_folder_name is 'Chats/ICE'; it names one"),
        ("unmapped_mailbox", "nobody", "icechat_unmapped_mailbox is 'nobody'; set it to a"),
        ("profile", "/nonexistent.json", "icechat_profile is '/nonexistent.json', which cannot"),
        ("data_dir", "ftp://bank-archive/icechat", "give a local path, a file:// URL or an object"),
        ("data_dir", "s3://", "e.g. s3://aws_conn_id@bucket/prefix"),
        ("raw_retention", "seven years", "icechat_raw_retention is 'seven years'; give a period"),
        ("raw_retention", "0d", "icechat_raw_retention is '0d'"),
        ("raw_retention", "7y legal-hold", "give a period in years or days"),
        ("raw_retention", "101y", "at most 100 years"),
    ],
)
def test_bad_values_name_the_variable(name, value, message):
    with pytest.raises(SettingsError, match=message):
        settings(**{name: value})


@pytest.mark.parametrize("scheme", ["wasbs", "wasb", "abfs", "abfss"])
def test_hadoops_azure_url_form_is_refused_showing_airflows(scheme):
    """``container@account.blob.core.windows.net`` would be read as connection ``container``
    and container ``account.blob...``: the message shows the form to give instead."""
    with pytest.raises(SettingsError) as err:
        settings(data_dir=f"{scheme}://archive@bankstore.blob.core.windows.net/icechat")
    message = str(err.value)
    assert "icechat_data_dir" in message and "Hadoop's container@account-host form" in message
    assert f"Give {scheme}://conn_id@archive/icechat" in message
    assert "connection (type wasb) to the storage account bankstore" in message


def test_hadoops_azure_url_form_is_refused_for_the_mapping_file_too():
    with pytest.raises(SettingsError) as err:
        settings(mapping_csv="wasbs://maps@bankstore.blob.core.windows.net/imids.csv")
    message = str(err.value)
    assert "icechat_mapping_csv" in message and "Hadoop's container@account-host form" in message
    assert "Give wasbs://conn_id@maps/imids.csv" in message


def test_shipped_default_profile_file_is_the_default_profile():
    got = settings(profile=str(REPO / "include" / "profile.default.json"))
    assert got.profile == DEFAULT_PROFILE


def test_a_firm_profile_renames_elements_without_code(tmp_path):
    renamed = SPEC.read_text().replace("<Content>", "<Body>").replace("</Content>", "</Body>")
    part = tmp_path / "part.xml"
    part.write_text(renamed)
    overrides = tmp_path / "profile.json"
    overrides.write_text(json.dumps({"content": "Body"}))
    profile = settings(profile=str(overrides)).profile
    with read_part(part, profile) as reader:
        first = next(reader.items())
        assert first.text == "bid 5y EUR 2.315 / 2.325, 50m"
        assert not reader.stats.unknown_elements
    with read_part(part) as reader:
        assert next(reader.items()).text == ""
        assert reader.stats.unknown_elements["Body"] == 1


def test_unknown_profile_keys_are_refused(tmp_path):
    overrides = tmp_path / "profile.json"
    overrides.write_text(json.dumps({"contents": "Body"}))
    with pytest.raises(SettingsError, match=r"unknown profile keys \['contents'\]"):
        settings(profile=str(overrides))


def test_data_dir_as_a_file_url():
    assert settings(data_dir="file:///srv/ice%20chat").data_dir == Path("/srv/ice chat")
    assert settings(data_dir="file:///srv/ice%20chat").data_url is None


@pytest.mark.parametrize(
    "url",
    [
        "s3://bank-archive/icechat",
        "s3://archive_aws@bank-archive/icechat/",
        "abfs://c/p",
        "wasbs://icechat_azure@archive/icechat",
    ],
)
def test_data_dir_in_object_storage(url):
    assert settings(data_dir=url).data_url == url.rstrip("/")


@pytest.mark.parametrize(
    ("value", "mode", "until"),
    [
        ("7y", "COMPLIANCE", datetime(2033, 11, 26, 8, 30, tzinfo=UTC)),
        ("2555d", "COMPLIANCE", datetime(2033, 11, 24, 8, 30, tzinfo=UTC)),
        ("7y governance", "GOVERNANCE", datetime(2033, 11, 26, 8, 30, tzinfo=UTC)),
        (" 10Y Compliance ", "COMPLIANCE", datetime(2036, 11, 26, 8, 30, tzinfo=UTC)),
    ],
)
def test_raw_retention_is_a_period_and_a_lock_mode(value, mode, until):
    retention = settings(raw_retention=value).raw_retention
    lock = retention.lock(datetime(2026, 11, 26, 8, 30, 0, 512, tzinfo=UTC))
    assert (lock.mode, lock.until) == (mode, until)


def test_retention_from_29_february_ends_on_28_february():
    retention = settings(raw_retention="1y").raw_retention
    assert retention.until(datetime(2028, 2, 29, tzinfo=UTC)) == datetime(2029, 2, 28, tzinfo=UTC)


def test_no_retention_unless_set():
    assert settings().raw_retention is None


def test_verify_defaults_cover_each_day_once_a_week():
    from datetime import date, timedelta

    from icechat.settings import VerifySettings

    got = VerifySettings.from_lookup(lambda name: None)
    assert (got.schedule, got.days, got.lag_days) == ("0 6 * * 1", 7, 2)
    monday = date(2026, 12, 7)
    week = got.days_for(monday)
    assert week == [date(2026, 11, 29) + timedelta(days=n) for n in range(7)]
    assert got.days_for(monday + timedelta(days=7))[0] == week[-1] + timedelta(days=1)


def test_verify_settings_from_variables():
    from datetime import date

    from icechat.settings import VerifySettings

    values = {
        "icechat_verify_schedule": "@daily",
        "icechat_verify_days": "3",
        "icechat_verify_lag_days": "0",
    }
    got = VerifySettings.from_lookup(values.get)
    assert got.schedule == "@daily"
    assert got.days_for(date(2026, 12, 7)) == [
        date(2026, 12, 5),
        date(2026, 12, 6),
        date(2026, 12, 7),
    ]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("icechat_verify_schedule", "weekly", "a cron expression of five fields"),
        ("icechat_verify_days", "0", "icechat_verify_days is '0'; set it to a whole number"),
        ("icechat_verify_lag_days", "-1", "from 0 to 366"),
        ("icechat_verify_days", "7d", "icechat_verify_days is '7d'"),
    ],
)
def test_bad_verify_variables_say_what_they_accept(name, value, message):
    from icechat.settings import VerifySettings

    with pytest.raises(SettingsError, match=message):
        VerifySettings.from_lookup({name: value}.get)


def test_go_live_poke_interval_and_pool(monkeypatch):
    from datetime import date

    from icechat.settings import DEFAULT_POKE_INTERVAL, graph_pool

    got = settings(go_live="2026-11-20", poke_interval="5")
    assert (got.go_live, got.poke_interval) == (date(2026, 11, 20), 5.0)
    assert (settings().go_live, settings().poke_interval) == (None, DEFAULT_POKE_INTERVAL)
    with pytest.raises(SettingsError, match="icechat_go_live is '20.11.2026'; give the first"):
        settings(go_live="20.11.2026")
    with pytest.raises(SettingsError, match="icechat_poke_interval is '0'; give a number of sec"):
        settings(poke_interval="0")
    assert graph_pool(lambda name: None) is None
    assert graph_pool({"icechat_graph_pool": " icechat_graph "}.get) == "icechat_graph"
    with pytest.raises(SettingsError, match="icechat_graph_pool is 'a b'; name an Airflow pool"):
        graph_pool({"icechat_graph_pool": "a b"}.get)
