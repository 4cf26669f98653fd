"""The ``icechat_sftp`` connection as a :class:`icechat.ice.fetch.Transport`, through SFTPHook.

The connection's ``host_key`` extra is required and pinned: a server presenting another key
is refused with both fingerprints, and there is no way to switch the check off.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Any

import paramiko
from airflow.providers.sftp.hooks.sftp import SFTPHook

from icechat.exceptions import HostKeyError, SftpConnectError
from icechat.ice.delivery import RemoteFile

CONN_ID = "icechat_sftp"


def sftp_hook(conn_id: str = CONN_ID, *, connect_attempts: int = 3) -> SFTPHook:
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

    def __init__(self, hook: SFTPHook, client: paramiko.SFTPClient) -> None:
        self._client = client
        self.site = f"sftp://{hook.remote_host}:{hook.port}"
        self.login: str = hook.username

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
def open_site(conn_id: str = CONN_ID, *, connect_attempts: int = 3) -> Iterator[SftpTransport]:
    """Connect with the provider's hook, check the pinned host key, and always disconnect."""
    hook = sftp_hook(conn_id, connect_attempts=connect_attempts)
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
        yield SftpTransport(hook, client)
