"""The demo: a firm's ICE SFTP site, its PGP key and a Microsoft 365 tenant, all local.

``DemoSite`` keeps everything under one directory (``demo/`` by default) and starts sshd and
the Graph emulator on loopback; ``run_day`` archives one day with ``airflow dags test`` and
exports the mailboxes as ``.eml``; ``serve_airflow`` runs ``airflow standalone`` against the
same servers. Keys, sample days, the emulator's mailboxes and the ledger persist between
runs, so a second run of a day shows that nothing is imported twice.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

import icechat
from icechat.dev.airflow import Standalone, airflow_env, prepare_database, run_airflow
from icechat.dev.graph_emulator import GraphEmulator
from icechat.dev.sample import marker_name, own_people, write_day
from icechat.dev.sample.population import directory_users, firm_domain
from icechat.dev.sftpd import LocalSftpServer, free_port
from icechat.exceptions import DemoError, DevServerError
from icechat.files import PRIVATE, write_atomic
from icechat.ice.keys import env_line, make_pgp_keypair, new_passphrase, pgp_connection
from icechat.ice.packages import safe_member_path
from icechat.report import report_file, reports_dir, summary_line
from icechat.settings import DEFAULT_FOLDER

log = logging.getLogger(__name__)

DAG_ID = "icechat_archive"
DEMO_DAY = date(2026, 11, 26)
SAMPLE_DAYS = (date(2026, 11, 24), date(2026, 11, 25), DEMO_DAY)
MESSAGES = 200
PARTS = 2
SEED = 7
CLIENT_ID = "0d3e6a1c-5a11-4c0e-9d3e-1cec4a7a0de0"
Say = Callable[[str], None]


def repo_root() -> Path:
    """The clone this package runs from (its ``dags/`` folder holds the DAG)."""
    root = Path(icechat.__file__).resolve().parents[2]
    if not (root / "dags" / f"{DAG_ID}.py").is_file():
        raise DemoError(
            f"no dags/{DAG_ID}.py next to {Path(icechat.__file__).parent}: run the demo from a"
            " clone of the repository (make demo installs it with pip install -e .)"
        )
    return root


@dataclass(frozen=True)
class DemoLayout:
    """Where the demo keeps things, under ``root``."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    @property
    def keys(self) -> Path:
        """The firm's PGP key pair and the Graph app's secret."""
        return self.root / "keys"

    @property
    def sftp(self) -> Path:
        """sshd's keys, config and log; ``site/`` is what it serves (ICE's side)."""
        return self.root / "sftp"

    @property
    def site(self) -> Path:
        """The SFTP site's directory: the encrypted sample days."""
        return self.sftp / "site"

    @property
    def emulator(self) -> Path:
        """The Graph emulator's state (tenant, users, mailboxes)."""
        return self.root / "graph-emulator"

    @property
    def data(self) -> Path:
        """``icechat_data_dir``: raw files, reports, the ledger."""
        return self.root / "data"

    @property
    def airflow_home(self) -> Path:
        """``AIRFLOW_HOME`` of the demo (SQLite metadata database)."""
        return self.root / "airflow"

    @property
    def mailboxes(self) -> Path:
        """The mailboxes' ICE Chat folders exported as ``.eml``, one folder per mailbox."""
        return self.root / "mailboxes"

    @property
    def logs(self) -> Path:
        """Logs of the Airflow commands the demo ran."""
        return self.root / "logs"

    @property
    def env_file(self) -> Path:
        """The demo's connections and variables as shell assignments."""
        return self.root / "demo.env"

    def report(self, day: date, kind: str = "json") -> Path:
        """The day's report (``json`` or ``html``)."""
        return report_file(reports_dir(self.data), day, kind)


class DemoSite:
    """The demo's keys and sample days, sshd and the Graph emulator: a context manager.

    Entering makes what is missing (keys on the first run, sample days not yet written),
    starts both servers on loopback (on the ports of the last run when they are free) and
    writes ``demo.env``; leaving stops the servers. State stays on disk.
    """

    def __init__(self, layout: DemoLayout, repo: Path, days: Iterable[date] = SAMPLE_DAYS) -> None:
        self.layout = layout
        self.repo = repo
        self.days = tuple(sorted(set(days)))
        self.sftpd = LocalSftpServer(layout.sftp, served=layout.site)
        self.firm = self.sftpd.username
        self.emulator: GraphEmulator | None = None

    # -- state ---------------------------------------------------------------------------
    def _pgp(self) -> tuple[Path, str, str]:
        """The firm's public key file, secret key and passphrase, made on the first run."""
        keys = self.layout.keys
        public, secret, phrase = (
            keys / "pgp-public.asc",
            keys / "pgp-secret.asc",
            keys / "pgp-passphrase",
        )
        if not (public.exists() and secret.exists() and phrase.exists()):
            keys.mkdir(parents=True, exist_ok=True)
            passphrase = new_passphrase()
            pair = make_pgp_keypair(
                f"{self.firm} ICE Chat archive (demo)",
                f"ice-chat@{firm_domain(self.firm)}",
                passphrase,
                algo="ed25519",
            )
            public.write_text(pair.public_armored)
            write_atomic(secret, pair.secret_armored, PRIVATE)
            write_atomic(phrase, passphrase, PRIVATE)
        return public, secret.read_text(), phrase.read_text()

    def _app_secret(self) -> str:
        path = self.layout.keys / "graph-app-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, secrets.token_urlsafe(24), PRIVATE)
        return path.read_text()

    def _ports(self) -> dict[str, int]:
        path = self.layout.root / "ports.json"
        try:
            return {k: int(v) for k, v in json.loads(path.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _write_samples(self, public_key: Path) -> None:
        for day in self.days:
            if (self.layout.site / marker_name(self.firm, day)).exists():
                continue
            log.info("writing the sample day %s for firm %s", day, self.firm)
            write_day(
                self.layout.site,
                self.firm,
                day,
                MESSAGES,
                SEED,
                parts=PARTS,
                packaging="zip",
                encrypt_to=public_key,
                marker=True,
            )

    def _directory(self) -> dict[str, Any]:
        # Who has no mailbox is decided among the sample days' people only, so a day added
        # later (``make airflow`` adds yesterday) never takes away a mailbox that has items.
        users = directory_users(own_people(self.firm, SAMPLE_DAYS, MESSAGES, SEED))
        known = {user["userPrincipalName"] for user in users}
        users += [
            {"userPrincipalName": email, "displayName": name}
            for email, name in own_people(self.firm, self.days, MESSAGES, SEED).items()
            if email not in known
        ]
        return {
            "users": users,
            "apps": [
                {
                    "client_id": CLIENT_ID,
                    "secret": self._app_secret(),
                    "permissions": ["Mail.ReadWrite", "User.Read.All"],
                }
            ],
        }

    # -- servers -------------------------------------------------------------------------
    def _start_emulator(self, port: int) -> GraphEmulator:
        directory = self._directory()
        try:
            return GraphEmulator(self.layout.emulator, port=port, directory=directory).start()
        except OSError:
            if port == 0:
                raise
            return GraphEmulator(self.layout.emulator, directory=directory).start()

    def _start_sftpd(self, port: int) -> None:
        self.sftpd.port = port
        try:
            self.sftpd.start()
        except DevServerError:
            if port == 0:
                raise
            self.sftpd.port = 0
            self.sftpd.start()

    def __enter__(self) -> DemoSite:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        public_key, self._secret_key, self._passphrase = self._pgp()
        self._write_samples(public_key)
        ports = self._ports()
        self._start_sftpd(ports.get("sftp", 0))
        try:
            self.emulator = self._start_emulator(ports.get("graph", 0))
        except BaseException:
            self.sftpd.stop()
            raise
        (self.layout.root / "ports.json").write_text(
            json.dumps({"sftp": self.sftpd.port, "graph": self.emulator.port})
        )
        self._write_env_file()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None
        self.sftpd.stop()

    # -- what Airflow gets ---------------------------------------------------------------
    def _running(self) -> GraphEmulator:
        if self.emulator is None:
            raise DemoError("the demo's servers are not running (use DemoSite as a context)")
        return self.emulator

    @property
    def graph_base_url(self) -> str:
        """Where the Graph emulator listens (Entra ID at the root, Graph under ``/v1.0``)."""
        return self._running().base_url

    def connections(self) -> dict[str, dict[str, Any]]:
        """The ``icechat_sftp``, ``icechat_pgp`` and ``icechat_graph`` connections."""
        emulator = self._running()
        return {
            "icechat_sftp": self.sftpd.connection(),
            "icechat_pgp": pgp_connection(
                passphrase=self._passphrase, secret_armored=self._secret_key
            ),
            "icechat_graph": emulator.connection(CLIENT_ID, self._app_secret()),
        }

    def variables(self) -> dict[str, str]:
        """``icechat_data_dir`` and ``icechat_remote_dir``."""
        return {
            "icechat_data_dir": str(self.layout.data.resolve()),
            "icechat_remote_dir": self.sftpd.remote_dir,
        }

    def env(self) -> dict[str, str]:
        """Environment for Airflow commands against the demo."""
        return airflow_env(
            self.layout.airflow_home.resolve(), self.repo, self.connections(), self.variables()
        )

    def _write_env_file(self) -> None:
        env = self.env()
        names = [
            "AIRFLOW_HOME",
            "AIRFLOW__CORE__DAGS_FOLDER",
            "AIRFLOW__CORE__PLUGINS_FOLDER",
            "AIRFLOW__CORE__LOAD_EXAMPLES",
            "PYTHONPATH",
            *(f"AIRFLOW_VAR_{name.upper()}" for name in self.variables()),
        ]
        lines = [
            "# The demo's Airflow settings, connections and variables (written by icechat demo;",
            "# the servers listen only while `make demo` or `make airflow` runs).",
            "# Use: set -a; . demo/demo.env; set +a; airflow dags list",
            *(f"{name}={_quote(env[name])}" for name in names),
            *(env_line(conn_id, conn) for conn_id, conn in self.connections().items()),
        ]
        write_atomic(self.layout.env_file, "\n".join(lines) + "\n", PRIVATE)

    # -- results -------------------------------------------------------------------------
    def export_mailboxes(self) -> dict[str, int]:
        """Unpack each mailbox's ICE Chat folder as ``.eml`` under ``mailboxes/{upn}/``."""
        emulator = self._running()
        shutil.rmtree(self.layout.mailboxes, ignore_errors=True)
        exported: dict[str, int] = {}
        with requests.Session() as session:
            session.verify = str(emulator.ca_bundle)
            session.trust_env = False
            admin = f"{emulator.base_url}/_emulator"
            state = session.get(f"{admin}/state", timeout=30)
            state.raise_for_status()
            for user in state.json()["users"]:
                upn = user["userPrincipalName"]
                folders = {f["displayName"]: f["messageCount"] for f in user["folders"]}
                if not folders.get(DEFAULT_FOLDER):
                    continue
                answer = session.get(
                    f"{admin}/mailboxes/{upn}/folders/{DEFAULT_FOLDER}/eml", timeout=60
                )
                answer.raise_for_status()
                exported[upn] = _unzip(answer.content, self.layout.mailboxes / upn)
        return exported


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _unzip(data: bytes, target: Path) -> int:
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.infolist():
            if member.is_dir():
                continue
            path = target / safe_member_path(member.filename, target.name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.read(member))
            count += 1
    return count


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run_day(layout: DemoLayout, day: date = DEMO_DAY, say: Say = print) -> int:
    """Archive ``day`` from the demo's SFTP site into its mailboxes; 0 if every copy is."""
    repo = repo_root()
    with DemoSite(layout, repo, {*SAMPLE_DAYS, day}) as site:
        say(
            f"demo: firm {site.firm}: sshd on 127.0.0.1:{site.sftpd.port} serves"
            f" {_relative(layout.site)}, Graph emulator on {site.graph_base_url}"
        )
        env = site.env()
        say(f"demo: airflow db migrate (AIRFLOW_HOME={_relative(layout.airflow_home)})")
        prepare_database(env)
        log_path = layout.logs / f"dags-test-{day.isoformat()}.log"
        started = time.time()
        say(f"demo: airflow dags test {DAG_ID} {day.isoformat()} (log: {_relative(log_path)})")
        result = run_airflow(env, "dags", "test", DAG_ID, day.isoformat(), timeout=600)
        layout.logs.mkdir(parents=True, exist_ok=True)
        log_path.write_text(result.stdout + result.stderr)
        report_path = layout.report(day)
        fresh = report_path.exists() and report_path.stat().st_mtime >= started
        report = json.loads(report_path.read_text()) if fresh else None
        mailboxes = site.export_mailboxes()
    ok = (
        result.returncode == 0
        and report is not None
        and report["balanced"]
        and report["failed"] == 0
    )
    if report is None:
        say(f"demo: the run wrote no report for {day}; the end of {_relative(log_path)}:")
        say((result.stdout + result.stderr)[-4000:])
        return 1
    say("")
    say(summary_line(report))
    say(f"  report:    {_relative(layout.report(day, 'html'))} (and .json)")
    say(
        f"  mailboxes: {_relative(layout.mailboxes)}/ ({sum(mailboxes.values())} .eml in"
        f" {len(mailboxes)} mailboxes, the '{DEFAULT_FOLDER}' folder of each)"
    )
    say(f"  run log:   {_relative(log_path)}")
    say(f"  settings:  {_relative(layout.env_file)} (connections and variables)")
    if not ok:
        say(f"demo: the run FAILED (exit status {result.returncode}); see the report and log")
        return 1
    say("demo: next, `make airflow` runs the same in the Airflow UI (trigger, backfill)")
    return 0


def airflow_days(today: date | None = None) -> tuple[date, ...]:
    """The sample days for the UI: the demo days and yesterday (what unpausing schedules)."""
    today = today or datetime.now(UTC).date()
    return (*SAMPLE_DAYS, today - timedelta(days=1))


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Let SIGTERM stop the demo as Ctrl-C does, so the servers are stopped on the way out."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def serve_airflow(
    layout: DemoLayout,
    port: int = 8080,
    *,
    smoke: bool = False,
    ready_timeout: float = 180,
    say: Say = print,
) -> int:
    """Run ``airflow standalone`` on the demo until interrupted (``smoke``: until it answers)."""
    repo = repo_root()
    with _sigterm_interrupts(), DemoSite(layout, repo, airflow_days()) as site:
        env = site.env()
        say(f"demo: airflow db migrate (AIRFLOW_HOME={_relative(layout.airflow_home)})")
        prepare_database(env)
        if port and not _port_free(port):
            say(f"demo: port {port} is taken; using a free one")
            port = 0
        log_path = layout.logs / "airflow-standalone.log"
        with Standalone(env, port or free_port(), log_path) as airflow:
            say(f"demo: starting airflow standalone (log: {_relative(log_path)})")
            try:
                version = airflow.wait_ready(ready_timeout)
                _banner(say, airflow.url, version, site)
                if smoke:
                    return 0
                while airflow.process is not None and airflow.process.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                say("demo: stopping Airflow, sshd and the Graph emulator")
                return 0
            say(f"demo: airflow standalone stopped by itself; see {_relative(log_path)}")
            return 1


def _banner(say: Say, url: str, version: str, site: DemoSite) -> None:
    days = ", ".join(d.isoformat() for d in site.days)
    for line in (
        "",
        f"Airflow {version} is up: {url}",
        "  login: none (AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True: every visitor is"
        " admin; it listens on 127.0.0.1 only)",
        f"  DAG {DAG_ID} (paused): open it, Trigger with a logical date or the 'day' param,"
        " or Backfill a date range",
        f"  sample days on the SFTP site: {days}",
        f"  reports: {_relative(reports_dir(site.layout.data))}/",
        "  Ctrl-C stops Airflow, sshd and the Graph emulator",
    ):
        say(line)
    sys.stdout.flush()
