"""The delivery sensor's poke against a real sshd, with the connection from the environment."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout

from icechat.glue.pgp import pgp_key
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


def sensor(site, tmp_path, now=DURING_UPLOAD, **kw):
    return at(
        now,
        IceChatDeliverySensor(
            task_id="wait_for_export",
            day="2026-11-26",
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


def test_times_out_with_a_message_a_person_can_act_on(site, tmp_path):
    (site.served / f"{site.username}_ICECHAT_20261125.xml").write_text("<x/>")  # the day before
    deadline = (DURING_UPLOAD - timedelta(minutes=1)).isoformat()
    late = sensor(site, tmp_path, deadline=deadline)
    assert not late.poke({}).is_done  # the first look after the deadline gets a second chance
    with pytest.raises(AirflowSensorTimeout) as err:
        late.poke({})
    message = str(err.value)
    assert f"sftp://{site.host}:{site.port}" in message
    assert repr(site.remote_dir) in message
    assert f"{site.username}_ICECHAT_20261126[_NN].{{xml,xml.gz,zip}}" in message
    assert f"{site.username}_ICECHAT_20261126.done" in message
    assert "seen: nothing" in message
    assert deadline in message


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
    def waiting(now: datetime, data: str) -> IceChatDeliverySensor:
        return at(
            now,
            IceChatDeliverySensor(
                task_id="w",
                day="2020-02-28",
                data_dir=str(tmp_path / data),
                remote_dir=site.remote_dir,
            ),
        )

    before = datetime(2020, 2, 29, 23, 59, tzinfo=UTC)
    assert not waiting(before, "early").poke({}).is_done
    assert not waiting(before, "early").poke({}).is_done  # still before the deadline
    after = datetime(2020, 3, 1, tzinfo=UTC)
    assert not waiting(after, "late").poke({}).is_done  # the first look after it: a second chance
    with pytest.raises(AirflowSensorTimeout, match=r"by 2020-03-01T00:00:00\+00:00"):
        waiting(after, "late").poke({})
