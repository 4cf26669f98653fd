"""Every connection id, hook and settings loader: Airflow connections and variables as core values.

- ``icechat_sftp``: ICE's site as a :class:`icechat.ice.fetch.Transport`, through the SFTP
  provider's hook. The ``host_key`` extra is required and pinned: a server presenting another
  key is refused with both fingerprints, and there is no way to switch the check off. The firm
  code the files carry is the login, or the ``firm_code`` extra when ICE's file names use
  another.
- ``icechat_pgp``: the firm's secret key (:class:`IceChatPgpHook`; "Test" proves the
  passphrase opens it).
- ``icechat_graph``: core :class:`GraphSettings`, secrets masked in task logs
  (:class:`IceChatGraphHook`; "Test" gets a token, reads directory users as the mapping does
  and one of their mailboxes as the import does).
- ``icechat_ledger``: the ledger's SQLAlchemy URL; absent, SQLite in the data directory.
- The ``icechat_*`` Variables as checked :class:`Settings`, the data directory (a local folder
  or an object store through ``ObjectStoragePath``) and the mapping file.

The DAG file imports this module (through the sensor), so what only a hook's "Test" or the
mapping file needs is imported where it is used.
"""

from __future__ import annotations

import logging
import re
import stat
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import paramiko
from airflow.providers.sftp.hooks.sftp import SFTPHook
from airflow.sdk import BaseHook, Variable
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret

from icechat.exceptions import (
    GraphSettingsError,
    HostKeyError,
    IceChatError,
    PgpKeyError,
    SettingsError,
    SftpConnectError,
    SftpSettingsError,
)
from icechat.graph.retry import RetryPolicy
from icechat.graph.settings import GRAPH_URL, MICROSOFT_AUTHORITY_HOST, GraphSettings
from icechat.ice.delivery import RemoteFile
from icechat.ice.pgp import PgpKey
from icechat.mapping.csvfile import MappingTable, parse_mapping
from icechat.settings import Settings, storage_path_url
from icechat.store import DataStore, LocalStore, object_store

log = logging.getLogger(__name__)

SFTP_CONN_ID = "icechat_sftp"
PGP_CONN_ID = "icechat_pgp"
GRAPH_CONN_ID = "icechat_graph"
LEDGER_CONN_ID = "icechat_ledger"
FIRM_CODE_EXTRA = "firm_code"
_FIRM_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# A connection test answers within seconds; the import's ten-minute retry budget would not.
TEST_POLICY = RetryPolicy(budget=20.0)


# Variables, the data directory, the ledger and the mapping file


def load_settings() -> Settings:
    """The connector's Airflow Variables, checked."""
    return Settings.from_lookup(lambda name: Variable.get(name, default=None))


def data_store(settings: Settings) -> DataStore:
    """The data directory as a store: the local folder, or the object-storage prefix.

    An object store is reached through Airflow's ``ObjectStoragePath``: the connection named in
    the URL (``s3://conn_id@bucket/prefix``, ``abfs://conn_id@container/prefix``), else the
    provider's default (S3: ``aws_default``; Azure: adlfs's environment variables).
    An object store without the ledger connection, and with ``icechat_raw_retention`` set a
    store that cannot lock originals, are refused here, before anything is fetched.
    """
    if settings.data_url is None:
        store: DataStore = LocalStore(data_dir(settings))
    else:
        from airflow.sdk import ObjectStoragePath

        ledger_url(settings)  # SQLite in the data directory cannot be: say so now
        path = ObjectStoragePath(storage_path_url(settings.data_url))
        store = object_store(path.fs, path.path, settings.data_url)
    if settings.raw_retention is not None:
        store.check_locking()
    return store


def data_dir(settings: Settings) -> Path:
    """The local data directory, created owner-only on first use."""
    if settings.data_url is not None:
        raise SettingsError(
            f"variable icechat_data_dir is {settings.data_url!r}, object storage; this step "
            "needs a local data directory"
        )
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise SettingsError(
            f"variable icechat_data_dir is {str(path)!r}, which cannot be created "
            f"({exc.strerror}); point it at a writable directory shared by the workers"
        ) from exc
    return path


def ledger_url(settings: Settings, data: Path | None = None) -> str:
    """The ``icechat_ledger`` connection as a SQLAlchemy URL; absent: SQLite in the data dir.

    ``data`` is the data directory when the caller must not create it (the UI reads only).
    """
    try:
        conn = BaseHook.get_connection(LEDGER_CONN_ID)
    except AirflowNotFoundException:
        if settings.data_url is not None:
            raise SettingsError(
                f"variable icechat_data_dir is {settings.data_url!r}, object storage, and there "
                f"is no connection {LEDGER_CONN_ID}: the ledger's default, SQLite in the data "
                "directory, cannot live in a bucket (workers on several hosts share it). Create "
                f"the connection {LEDGER_CONN_ID} (type postgres) to a database every worker "
                "reaches"
            ) from None
        return f"sqlite:///{(data or data_dir(settings)) / 'ledger.sqlite'}"
    if conn.password:
        mask_secret(conn.password)
    if conn.conn_type in ("postgres", "postgresql"):
        return f"postgresql://{conn.get_uri().partition('://')[2]}"
    url = conn.extra_dejson.get("url") or conn.host or ""
    if "://" not in url:
        raise SettingsError(
            f"connection {LEDGER_CONN_ID} is of type {conn.conn_type!r} without a SQLAlchemy URL: "
            "make it a postgres connection, or put the URL in its host or its extra 'url'"
        )
    return str(url)


def mapping_table(settings: Settings) -> MappingTable | None:
    """The custom mapping file (path or object-storage URL), refused when it has problems."""
    from airflow.sdk import ObjectStoragePath

    if not settings.mapping_csv:
        return None
    source = settings.mapping_csv
    try:
        data = (
            ObjectStoragePath(storage_path_url(source)).read_bytes()
            if "://" in source
            else Path(source).read_bytes()
        )
    except OSError as exc:
        raise SettingsError(
            f"variable icechat_mapping_csv is {source!r}, which cannot be read ({exc}); "
            "fix the path or delete the variable"
        ) from exc
    table = parse_mapping(data, source)
    table.raise_if_invalid()
    log.info("mapping file %s: %d ImIds", source, len(table.entries))
    return table


# icechat_sftp


def sftp_hook(conn_id: str = SFTP_CONN_ID, *, connect_attempts: int = 3) -> SFTPHook:
    """The provider's SFTPHook for ``conn_id``, refusing a connection without a pinned key."""
    try:
        hook = SFTPHook(ssh_conn_id=conn_id, conn_retry_attempts=connect_attempts)
    except ValueError as exc:  # the hook's own refusal of host_key + no_host_key_check
        raise HostKeyError(f"connection {conn_id}: {exc}; remove no_host_key_check") from exc
    if hook.host_key is None or hook.no_host_key_check:
        raise HostKeyError(
            f"connection {conn_id} has no host_key extra: pin the server's public key line "
            f"(from ICE, or `ssh-keyscan -p {hook.port} {hook.remote_host}` checked with ICE) "
            "in the extra field host_key; host key checking cannot be switched off"
        )
    return hook


def firm_code(hook: SFTPHook, conn_id: str = SFTP_CONN_ID) -> str:
    """The firm code to look for in file names: the ``firm_code`` extra, else the login."""
    given = hook.get_connection(conn_id).extra_dejson.get(FIRM_CODE_EXTRA)
    if given is None or given == "":
        return str(hook.username)
    if not isinstance(given, str) or not _FIRM_CODE.fullmatch(given.strip()):
        raise SftpSettingsError(
            f"connection {conn_id}: extra {FIRM_CODE_EXTRA} is {given!r}; give the firm code "
            "as ICE's file names carry it (letters, digits, '.', '_', '-'; e.g. ACME01 for "
            f"ACME01_ICECHAT_20261126.xml.pgp), or remove it to use the login"
        )
    return given.strip()


def _mismatch(conn_id: str, site: str, got: paramiko.PKey, pinned: paramiko.PKey) -> HostKeyError:
    return HostKeyError(
        f"{site} presented host key {got.get_name()} {got.fingerprint}, but connection "
        f"{conn_id} pins {pinned.get_name()} {pinned.fingerprint}. Not connecting: if ICE "
        "announced a new host key, put it in the host_key extra; otherwise treat this as a "
        "possible man-in-the-middle"
    )


class _Reader:
    """A remote file whose network errors surface as ``ConnectionError``."""

    def __init__(self, fh: paramiko.SFTPFile, path: str) -> None:
        self._fh = fh
        self._path = path

    def read(self, size: int, /) -> bytes:
        try:
            data: bytes = self._fh.read(size)
        except paramiko.SSHException as exc:
            raise ConnectionError(f"{self._path}: {exc}") from exc
        return data

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        # A dropped connection fails the close too; the download has already reported it.
        with suppress(paramiko.SSHException, OSError, EOFError):
            self._fh.close()


class SftpTransport:
    """Read-only access to the ICE site over one open SFTP session."""

    def __init__(self, hook: SFTPHook, client: paramiko.SFTPClient, firm: str) -> None:
        self._client = client
        self.site = f"sftp://{hook.remote_host}:{hook.port}"
        #: The firm code the day's files carry (matched in any case).
        self.firm = firm

    def listdir(self, path: str) -> list[RemoteFile]:
        try:
            entries = self._client.listdir_attr(path)
        except paramiko.SSHException as exc:
            raise ConnectionError(f"{self.site}:{path}: {exc}") from exc
        return [
            RemoteFile(e.filename, int(e.st_size or 0), int(e.st_mtime or 0))
            for e in entries
            if e.st_mode is not None and stat.S_ISREG(e.st_mode)
        ]

    def stat(self, path: str) -> RemoteFile:
        try:
            attrs = self._client.stat(path)
        except paramiko.SSHException as exc:
            raise ConnectionError(f"{self.site}:{path}: {exc}") from exc
        return RemoteFile(
            path.rsplit("/", 1)[-1], int(attrs.st_size or 0), int(attrs.st_mtime or 0)
        )

    def open(self, path: str) -> _Reader:
        try:
            fh = self._client.open(path, "rb")
            fh.prefetch()
        except paramiko.SSHException as exc:
            raise ConnectionError(f"{self.site}:{path}: {exc}") from exc
        return _Reader(fh, path)


@contextmanager
def open_site(conn_id: str = SFTP_CONN_ID, *, connect_attempts: int = 3) -> Iterator[SftpTransport]:
    """Connect with the provider's hook, check the pinned host key, and always disconnect."""
    hook = sftp_hook(conn_id, connect_attempts=connect_attempts)
    firm = firm_code(hook, conn_id)
    site = f"sftp://{hook.remote_host}:{hook.port}"
    with ExitStack() as stack:
        try:
            client: Any = stack.enter_context(hook.get_managed_conn())
        except paramiko.BadHostKeyException as exc:
            raise _mismatch(conn_id, site, exc.key, exc.expected_key) from exc
        except paramiko.AuthenticationException as exc:
            raise SftpConnectError(
                f"{site}: login as {hook.username!r} refused ({exc}); check the password or "
                f"private_key of connection {conn_id}, and that ICE holds its public key"
            ) from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SftpConnectError(
                f"{site}: cannot connect ({exc}); check host and port of connection {conn_id} "
                "and that this machine may reach it"
            ) from exc
        # The system known_hosts would win over the pin inside paramiko: check the pin again.
        got = client.get_channel().get_transport().get_remote_server_key()
        if got != hook.host_key:
            raise _mismatch(conn_id, site, got, hook.host_key)
        yield SftpTransport(hook, client, firm)


# icechat_pgp


def pgp_key(conn_id: str = PGP_CONN_ID) -> PgpKey | None:
    """The firm's secret key and passphrase; ``None`` when the connection does not exist."""
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    secret = conn.extra_dejson.get("private_key")
    if not secret:
        raise PgpKeyError(
            f"connection {conn_id} has no private_key extra: put the ASCII-armoured secret key "
            "there (and the passphrase in its password)"
        )
    return PgpKey(secret_armored=secret, passphrase=conn.password or "")


class IceChatPgpHook(BaseHook):
    """The firm's secret key for ICE's encrypted parts (fields: see the provider info)."""

    conn_name_attr = "icechat_pgp_conn_id"
    default_conn_name = PGP_CONN_ID
    conn_type = "icechat_pgp"
    hook_name = "ICE Chat: PGP key"

    def __init__(self, icechat_pgp_conn_id: str = PGP_CONN_ID) -> None:
        super().__init__()
        self.icechat_pgp_conn_id = icechat_pgp_conn_id

    def get_conn(self) -> PgpKey | None:
        """The key and passphrase of the connection."""
        return pgp_key(self.icechat_pgp_conn_id)

    def test_connection(self) -> tuple[bool, str]:
        """Import the key into a throwaway keyring and open it with the passphrase."""
        from icechat.checks import check_pgp

        try:
            key = self.get_conn()
        except IceChatError as exc:
            return False, str(exc)
        if key is None:
            return False, f"connection {self.icechat_pgp_conn_id} does not exist"
        result = check_pgp(key)
        return result.ok, result.detail


# icechat_graph


def graph_settings(conn_id: str = GRAPH_CONN_ID) -> GraphSettings:
    """Settings from the connection: login = client id, password = secret, extras for the rest."""
    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson
    secret = conn.password or None
    certificate = extra.get("certificate") or None
    for value in (secret, certificate):
        if value:
            mask_secret(value)
    return GraphSettings(
        client_id=conn.login or "",
        tenant_id=str(extra.get("tenant_id") or ""),
        client_secret=secret,
        certificate_pem=certificate,
        thumbprint=extra.get("thumbprint") or None,
        authority_host=extra.get("authority_host") or MICROSOFT_AUTHORITY_HOST,
        graph_url=extra.get("graph_url") or GRAPH_URL,
        ca_bundle=extra.get("ca_bundle") or None,
        scope=extra.get("scope") or None,
        **_mailbox_rate(conn_id, extra),
    )


def _mailbox_rate(conn_id: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The extras ``mailbox_requests`` and ``mailbox_window_seconds``, when given."""
    rate: dict[str, Any] = {}
    for name, kind in (("mailbox_requests", int), ("mailbox_window_seconds", float)):
        value = extra.get(name)
        if value is None or value == "":
            continue
        try:
            rate[name] = kind(value)
        except (TypeError, ValueError):
            raise GraphSettingsError(
                f"connection {conn_id}: extra {name} is {value!r}; give a number, or remove "
                "it for Outlook's limit (10000 requests per 600 seconds per mailbox)"
            ) from None
    return rate


class IceChatGraphHook(BaseHook):
    """The app registration the connector writes mailboxes with (fields: see the provider info)."""

    conn_name_attr = "icechat_graph_conn_id"
    default_conn_name = GRAPH_CONN_ID
    conn_type = "icechat_graph"
    hook_name = "ICE Chat: Microsoft Graph"

    def __init__(self, icechat_graph_conn_id: str = GRAPH_CONN_ID) -> None:
        super().__init__()
        self.icechat_graph_conn_id = icechat_graph_conn_id

    def get_conn(self) -> GraphSettings:
        """The connection as core settings."""
        return graph_settings(self.icechat_graph_conn_id)

    def test_connection(self) -> tuple[bool, str]:
        """Token, directory and one mailbox; the message says what to fix, never a secret."""
        from icechat.checks import check_graph_app
        from icechat.graph.client import GraphClient

        try:
            with GraphClient(self.get_conn(), policy=TEST_POLICY) as client:
                result = check_graph_app(client)
        except IceChatError as exc:
            return False, str(exc)
        return result.ok, result.detail
