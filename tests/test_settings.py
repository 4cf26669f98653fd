"""The connector's variables: defaults, checked values, and a firm's own profile."""

from __future__ import annotations

import json
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
        ("data_dir", "s3://bank-archive/icechat", "s3:// object storage is not supported yet"),
    ],
)
def test_bad_values_name_the_variable(name, value, message):
    with pytest.raises(SettingsError, match=message):
        settings(**{name: value})


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
