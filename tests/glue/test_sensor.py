"""The delivery sensor's poke against a real sshd, with the connection from the environment."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout

from icechat.glue.connections import pgp_key
from icechat.glue.sensor import IceChatDeliverySensor


@pytest.fixture
def site(sftp_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_SFTP", sftp_server.connection_env())
    return sftp_server


# ICE uploads 2026-11-26 during 2026-11-27: mid-morning of that day, the default deadline
# (the end of 2026-11-27) is still ahead, whatever today's date is.
DURING_UPLOAD = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def at(now: datetime, sensor: IceChatDeliverySensor) -> IceChatDeliverySensor:
    """The sensor with its clock stopped at ``now``."""
    sensor.clock = lambda: now
    return sensor


def sensor(site, tmp_path, now=DURING_UPLOAD, day="2026-11-26", **kw):
    return at(
        now,
        IceChatDeliverySensor(
            task_id="wait_for_export",
            day=day,
            data_dir=str(tmp_path / "data"),
            remote_dir=site.remote_dir,
            **kw,
        ),
    )


def test_runs_in_reschedule_mode():
    s = IceChatDeliverySensor(task_id="w", day="2026-11-26", data_dir="/d")
    assert s.mode == "reschedule"


def test_day_with_marker_is_found_on_the_first_poke(site, make_day, tmp_path):
    make_day(site.served, site.username, date(2026, 11, 26), parts=2)
    result = sensor(site, tmp_path).poke({})
    assert result.is_done
    assert result.xcom_value["marker"] is True
    assert result.xcom_value["firm"] == site.username
    assert [p["name"] for p in result.xcom_value["parts"]] == [
        f"{site.username}_ICECHAT_20261126_01.xml",
        f"{site.username}_ICECHAT_20261126_02.xml",
    ]


def test_day_without_marker_is_found_once_stable_across_two_pokes(site, make_day, tmp_path):
    (part,) = make_day(site.served, site.username, date(2026, 11, 26), parts=1, marker=False)
    assert not sensor(site, tmp_path).poke({}).is_done  # a fresh instance, as on reschedule
    part.write_bytes(part.read_bytes() + b"\n")  # still being uploaded
    assert not sensor(site, tmp_path).poke({}).is_done
    done = sensor(site, tmp_path).poke({})
    assert done.is_done
    assert done.xcom_value["parts"][0]["name"] == part.name


def test_a_slow_upload_among_other_files_is_waited_for_and_the_wait_says_what_is_there(
    site, make_day, tmp_path, capsys
):
    """A real site: lower-case login, upper-case firm code, other files, an upload under way."""
    firm = site.username.upper()
    staging = tmp_path / "ice"
    staging.mkdir()
    part, marker = make_day(staging, firm, date(2026, 11, 26), parts=1)
    make_day(site.served, firm, date(2026, 11, 25), parts=1)  # yesterday's, still on the site
    (site.served / "README.txt").write_text("files are kept 30 days\n")
    uploading = site.served / f"{part.name}.filepart"
    uploading.write_bytes(part.read_bytes()[:100])
    assert not sensor(site, tmp_path).poke({}).is_done
    logged = "".join(capsys.readouterr())  # the task log, as Airflow's logging writes it
    assert "seen: nothing; waiting for: any part named" in logged
    assert "other days: 2026-11-25 (2 file(s))" in logged
    assert f"unknown extension or part number (an upload in progress?): {uploading.name}" in logged
    assert "1 file(s) not named like an ICE Chat export" in logged
    uploading.write_bytes(part.read_bytes())
    uploading.rename(site.served / part.name)
    assert not sensor(site, tmp_path).poke({}).is_done  # no marker yet: not stable yet
    (site.served / marker.name).write_bytes(marker.read_bytes())
    done = sensor(site, tmp_path).poke({})
    assert done.is_done
    assert done.xcom_value["firm"] == firm
    assert [p["name"] for p in done.xcom_value["parts"]] == [part.name]


def test_times_out_with_a_message_a_person_can_act_on(site, tmp_path):
    (site.served / f"{site.username}_ICECHAT_20261125.xml").write_text("<x/>")  # the day before
    deadline = DURING_UPLOAD + timedelta(minutes=1)
    assert not sensor(site, tmp_path, deadline=deadline.isoformat()).poke({}).is_done
    late = sensor(
        site, tmp_path, now=deadline + timedelta(minutes=9), deadline=deadline.isoformat()
    )
    with pytest.raises(AirflowSensorTimeout) as err:
        late.poke({})
    message = str(err.value)
    assert f"sftp://{site.host}:{site.port}" in message
    assert repr(site.remote_dir) in message
    assert f"{site.username}_ICECHAT_20261126[_NN].{{xml,xml.gz,zip}}" in message
    assert f"{site.username}_ICECHAT_20261126.done" in message
    assert "seen: nothing" in message
    assert "other days: 2026-11-25 (1 file(s))" in message
    assert f"by {deadline.isoformat()}" in message


def test_an_old_day_not_on_the_site_fails_on_the_first_poke_naming_what_is_there(
    site, make_day, tmp_path
):
    """A backfill of a day ICE no longer holds, or a typo: no poke interval is waited."""
    for day in (date(2026, 11, 24), date(2026, 11, 25)):
        make_day(site.served, site.username.upper(), day, parts=1)
    (site.served / "README.txt").write_text("files are kept 30 days\n")
    old = sensor(site, tmp_path, now=datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    with pytest.raises(AirflowSensorTimeout) as err:
        old.poke({})
    message = str(err.value)
    assert "for 2026-11-26 is not on" in message
    assert f"in directory {site.remote_dir!r}" in message
    assert "upload deadline 2026-11-28T00:00:00+00:00 has passed" in message
    assert "seen: nothing" in message
    assert "other days: 2026-11-25, 2026-11-24 (4 file(s))" in message
    assert "1 file(s) not named like an ICE Chat export" in message


def test_an_old_day_that_is_on_the_site_is_fetched_on_the_second_poke(site, make_day, tmp_path):
    make_day(site.served, site.username.upper(), date(2026, 11, 26), parts=1, marker=False)
    old = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert not sensor(site, tmp_path, now=old).poke({}).is_done  # the stability look
    assert sensor(site, tmp_path, now=old).poke({}).is_done


def test_pgp_connection_absent_means_no_key(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_ICECHAT_PGP", raising=False)
    assert pgp_key() is None


def test_pgp_connection_gives_the_key(monkeypatch, pgp_keypair):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ICECHAT_PGP",
        json.dumps(
            {
                "conn_type": "generic",
                "password": pgp_keypair.passphrase,
                "extra": {"private_key": pgp_keypair.secret_armored},
            }
        ),
    )
    key = pgp_key()
    assert key is not None
    assert key.passphrase == pgp_keypair.passphrase
    assert key.secret_armored == pgp_keypair.secret_armored


def test_default_deadline_is_the_end_of_the_next_day(site, tmp_path):
    def waiting(now: datetime) -> IceChatDeliverySensor:
        return sensor(site, tmp_path, now, day="2020-02-28")

    before = datetime(2020, 2, 29, 23, 59, tzinfo=UTC)
    assert not waiting(before).poke({}).is_done
    assert not waiting(before).poke({}).is_done  # still before the deadline
    with pytest.raises(AirflowSensorTimeout, match=r"by 2020-03-01T00:00:00\+00:00"):
        waiting(datetime(2020, 3, 1, tzinfo=UTC)).poke({})


def test_looks_are_icechat_poke_interval_apart_unless_the_task_says(site, tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowRescheduleException

    class FirstLook:
        """The task instance of a sensor's first poke: no reschedule yet."""

        def get_first_reschedule_date(self, context):
            return None

    monkeypatch.setenv("AIRFLOW_VAR_ICECHAT_POKE_INTERVAL", "5")
    for given, expected in ((None, 5), (120, 120)):
        waiting = sensor(site, tmp_path, poke_interval=given)
        before = datetime.now(UTC)
        with pytest.raises(AirflowRescheduleException) as next_look:
            waiting.execute({"ti": FirstLook()})
        wait = (next_look.value.reschedule_date - before).total_seconds()
        assert expected <= wait < expected + 5
