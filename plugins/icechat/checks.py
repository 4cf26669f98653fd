"""Try each outside system the connector needs and say plainly what is wrong (``icechat check``).

Every check takes core objects (the glue builds them from Airflow connections) and returns
:class:`CheckResult` values instead of raising, so one run reports every problem at once.
Details name the server, key, mailbox or ledger and the fix; they never hold a secret.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa

from icechat.exceptions import (
    GraphError,
    GraphPermissionError,
    IceChatError,
    MailboxNotFoundError,
    PgpError,
)
from icechat.graph.auth import access_token
from icechat.graph.client import GraphClient, user_path
from icechat.graph.mailbox import ensure_folder
from icechat.graph.properties import ROOT_FOLDER
from icechat.ice.delivery import firm_codes
from icechat.ice.fetch import Transport
from icechat.ice.pgp import GpgSession, PgpKey
from icechat.ledger import SCHEMA_VERSION, stored_schema_version
from icechat.mapping.graph_directory import DIRECTORY_LANE

USERS_TRIED = 10  # directory users tried for a mailbox when none is named


class Status(StrEnum):
    """How a check ended: passed, failed, or could not be tried with what was given."""

    OK = "OK"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class CheckResult:
    """One line of the check's output."""

    name: str
    status: Status
    detail: str

    @property
    def ok(self) -> bool:
        """Whether this result lets the connector run (a skipped check does not block)."""
        return self.status is not Status.FAIL

    def line(self) -> str:
        """``OK   sftp: ...`` as printed by ``icechat check``."""
        return f"{self.status.value:<4} {self.name}: {self.detail}"


def passed(name: str, detail: str) -> CheckResult:
    """An OK result."""
    return CheckResult(name, Status.OK, detail)


def failed(name: str, detail: str) -> CheckResult:
    """A FAIL result."""
    return CheckResult(name, Status.FAIL, detail)


class FirmSite(Transport, Protocol):
    """The SFTP site as the check sees it: a transport that knows the firm code it looks for."""

    @property
    def firm(self) -> str:
        """The firm code the day's files carry (the login, or the connection's extra)."""


def _firm_detail(firm: str, names: list[str]) -> tuple[bool, str]:
    """Whether the directory's exports carry our firm code, and what it holds per code.

    A site holding exports for other codes only means the DAG would wait forever: fail.
    """
    counts = firm_codes(names)
    ours = sum(n for code, n in counts.items() if code.casefold() == firm.casefold())
    others = {code: n for code, n in counts.items() if code.casefold() != firm.casefold()}
    detail = f"{ours} ICE Chat export file(s) for firm code {firm}"
    if others:
        listed = ", ".join(f"{code} ({n})" for code, n in sorted(others.items()))
        detail += (
            f"; files for other firm codes: {listed}: if one is the firm's, set the "
            "connection's firm_code extra to it (the login is used when it is unset)"
        )
    return ours > 0 or not others, detail


def check_sftp(
    open_site: Callable[[], AbstractContextManager[FirmSite]], remote_dir: str
) -> CheckResult:
    """Log in (the host key checked against the pin) and list the delivery directory.

    Also counts the exports per firm code: files only for another code mean the DAG would
    wait for ever, so that fails and names the ``firm_code`` extra.
    """
    try:
        with open_site() as site:
            try:
                files = site.listdir(remote_dir)
            except FileNotFoundError:
                return failed(
                    "sftp",
                    f"{site.site}: directory {remote_dir} does not exist; set variable "
                    "icechat_remote_dir to the directory ICE delivers to",
                )
            except PermissionError:
                return failed(
                    "sftp",
                    f"{site.site}: directory {remote_dir} may not be listed by this login; "
                    "ask ICE for read access or set icechat_remote_dir",
                )
    except IceChatError as exc:
        return failed("sftp", str(exc))
    except (OSError, EOFError) as exc:
        return failed(
            "sftp",
            f"the site dropped the connection ({type(exc).__name__}: {exc}); try again, and "
            "ask ICE if it persists",
        )
    ok, firm = _firm_detail(site.firm, [f.name for f in files])
    detail = (
        f"{site.site}: logged in, host key matches the pin, {len(files)} file(s) in "
        f"{remote_dir}; {firm}"
    )
    return passed("sftp", detail) if ok else failed("sftp", detail)


def check_pgp(key: PgpKey | None) -> CheckResult:
    """The secret key imports and the passphrase opens it (absent: parts must be plain)."""
    if key is None:
        return passed(
            "pgp",
            "not configured: parts must arrive unencrypted (an encrypted part fails the run); "
            "add connection icechat_pgp if ICE encrypts",
        )
    try:
        with GpgSession(key) as session:
            session.prove_passphrase()
            key_ids = session.key_ids
    except PgpError as exc:
        return failed("pgp", str(exc))
    return passed("pgp", f"secret key {key_ids[0]} loads and the passphrase opens it")


def check_graph_app(client: GraphClient) -> CheckResult:
    """A token, users read from the directory, and one of their mailboxes read.

    Without a mailbox named, the first directory users are tried until one has a mailbox:
    reading its folders needs the same Mail permission the import does.
    """
    app = client.settings.client_id
    try:
        access_token(client.settings)
    except GraphError as exc:
        return failed("graph", str(exc))
    try:
        body = client.get(
            "/users",
            mailbox=DIRECTORY_LANE,
            params={"$top": str(USERS_TRIED), "$select": "id,userPrincipalName"},
        )
    except GraphPermissionError:
        return failed(
            "graph",
            f"Graph refused app {app} reading the directory: grant User.Read.All (application) "
            "with admin consent",
        )
    except GraphError as exc:
        return failed("graph", str(exc))
    users = [str(u.get("userPrincipalName") or u.get("id")) for u in body.get("value", [])]
    for user in users:
        try:
            client.get(
                f"{user_path(user)}/mailFolders/{ROOT_FOLDER}",
                mailbox=user,
                params={"$select": "id"},
            )
        except MailboxNotFoundError:
            continue
        except GraphPermissionError:
            return failed(
                "graph",
                f"Graph refused app {app} reading the mailbox of {user}: grant Mail.ReadWrite "
                "(application) with admin consent",
            )
        except GraphError as exc:
            return failed("graph", str(exc))
        return passed(
            "graph", f"app {app} got a token, read the directory and the mailbox of {user}"
        )
    return passed(
        "graph",
        f"app {app} got a token and read the directory; none of its first {len(users)} "
        "user(s) has a mailbox to try mail access on",
    )


def check_graph_mailbox(client: GraphClient, mailbox: str, folder: str) -> CheckResult:
    """Read the user, then find or create the items' folder: proof the app may write items."""
    name = f"graph {mailbox}"
    try:
        client.get(user_path(mailbox), mailbox=mailbox, params={"$select": "id"})
    except GraphPermissionError:
        return failed(
            name,
            f"Graph refused to read user {mailbox}: grant User.Read.All (application) with "
            "admin consent",
        )
    except MailboxNotFoundError:
        return failed(
            name,
            f"no user {mailbox} in tenant {client.settings.tenant_id}: check the address "
            "(--mailbox or the first row of the mapping CSV)",
        )
    except GraphError as exc:
        return failed(name, str(exc))
    try:
        ensure_folder(client, mailbox, folder)
    except GraphPermissionError:
        return failed(
            name,
            f"Graph refused the app creating folder {folder!r} in {mailbox}: grant "
            "Mail.ReadWrite (application) with admin consent, and check that any application "
            "access policy covers this mailbox",
        )
    except GraphError as exc:
        return failed(name, str(exc))
    return passed(name, f"user found; folder {folder!r} is there (found or created)")


def check_ledger(url: str) -> CheckResult:
    """Connect to the ledger and compare its schema version with this icechat's (an older
    one is fine: opening it upgrades it)."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return failed(
            "ledger",
            "connection icechat_ledger does not give a database URL: set its type to postgres "
            "with host, port, login, password and schema (the database)",
        )
    where = parsed.render_as_string(hide_password=True)
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and not Path(database).exists():
        return passed("ledger", f"SQLite file {database} is created by the first run")
    try:
        found = stored_schema_version(url)
    except IceChatError as exc:
        return failed("ledger", str(exc))
    if found is None:
        return passed("ledger", f"{where} reachable; the first run creates its tables")
    if found < SCHEMA_VERSION:
        return passed(
            "ledger",
            f"{where} reachable, schema version {found}; the next run upgrades it to "
            f"{SCHEMA_VERSION}",
        )
    if found > SCHEMA_VERSION:
        return failed(
            "ledger",
            f"{where} has schema version {found}, this icechat writes {SCHEMA_VERSION}: "
            "upgrade icechat or point icechat_ledger at a new database",
        )
    return passed("ledger", f"{where} reachable, schema version {found}")
