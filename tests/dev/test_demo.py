"""``icechat demo``: what ``make demo`` and ``make airflow`` run, end to end as CI runs them."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

import pytest
import requests

from tests.support.cli import icechat

SUMMARY = re.compile(
    r"^ICE Chat 2026-11-26 (?P<firm>\S+): 2 file\(s\), 200 items, (?P<copies>\d+) copies:"
    r" (?P<imported>\d+) imported, (?P<present>\d+) already present, (?P<unmapped>\d+) not"
    r" mapped, 0 failed; balanced$",
    re.MULTILINE,
)


def demo(demo_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return icechat("demo", *args, "--dir", demo_dir, cwd=demo_dir.parent)


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fresh-clone") / "demo"


@pytest.fixture(scope="module")
def first_run(demo_dir: Path) -> subprocess.CompletedProcess[str]:
    return demo(demo_dir, "run")


def test_demo_archives_the_day_and_says_where_to_look(first_run, demo_dir):
    assert first_run.returncode == 0, first_run.stdout[-3000:] + first_run.stderr[-3000:]
    summary = SUMMARY.search(first_run.stdout)
    assert summary, first_run.stdout
    imported = int(summary["imported"])
    assert imported > 0
    assert int(summary["present"]) == 0
    assert imported + int(summary["unmapped"]) == int(summary["copies"])
    assert "report:    demo/data/reports/2026-11-26.html" in first_run.stdout
    html = demo_dir / "data" / "reports" / "2026-11-26.html"
    assert "balanced" in html.read_text()
    report = json.loads(html.with_suffix(".json").read_text())
    assert report["imported"] == imported
    # Some of the firm's own people have no mailbox: their copies are not mapped, not failed.
    assert report["not_mapped_reasons"]["no_mailbox"] > 0
    assert "mailboxes: demo/mailboxes/" in first_run.stdout
    emls = list((demo_dir / "mailboxes").glob("*@*.example/*.eml"))
    assert len(emls) == imported
    assert f"{imported} .eml in" in first_run.stdout
    assert b"Message-ID: <" in emls[0].read_bytes()
    assert {p.name.removesuffix(".pgp") for p in (demo_dir / "sftp" / "site").glob("*.pgp")} >= {
        f"{summary['firm']}_ICECHAT_2026112{d}_0{n}.zip" for d in (4, 5, 6) for n in (1, 2)
    }


def test_demo_env_holds_the_connections_and_variables(first_run, demo_dir):
    assert first_run.returncode == 0
    text = (demo_dir / "demo.env").read_text()
    for name in ("ICECHAT_SFTP", "ICECHAT_PGP", "ICECHAT_GRAPH"):
        assert f"AIRFLOW_CONN_{name}='" in text
    assert f"AIRFLOW_VAR_ICECHAT_DATA_DIR='{demo_dir / 'data'}'" in text
    assert (demo_dir / "demo.env").stat().st_mode & 0o077 == 0


def test_demo_servers_are_stopped_when_it_ends(first_run, demo_dir):
    assert first_run.returncode == 0
    ports = json.loads((demo_dir / "ports.json").read_text())
    assert not listening(ports["sftp"])
    assert not listening(ports["graph"])


def test_demo_run_again_imports_nothing_twice(first_run, demo_dir):
    assert first_run.returncode == 0
    first = SUMMARY.search(first_run.stdout)
    again = demo(demo_dir, "run")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    second = SUMMARY.search(again.stdout)
    assert second, again.stdout
    assert int(second["imported"]) == 0
    assert int(second["present"]) == int(first["imported"])
    assert len(list((demo_dir / "mailboxes").glob("*/*.eml"))) == int(first["imported"])


@pytest.mark.system
def test_demo_airflow_serves_the_ui_then_stops(first_run, demo_dir):
    assert first_run.returncode == 0
    result = demo(demo_dir, "airflow", "--port", "0", "--smoke")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    url = re.search(r"Airflow 3\.\d+\.\d+ is up: (http://127\.0\.0\.1:\d+)", result.stdout)
    assert url, result.stdout
    assert "SIMPLE_AUTH_MANAGER_ALL_ADMINS=True" in result.stdout
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url[1]}/api/v2/version", timeout=2)
