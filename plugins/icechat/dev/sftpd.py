"""A real OpenSSH ``sshd`` on loopback serving one directory over SFTP, without root.

The server gets its own host key, config and ``authorized_keys`` under a directory, listens
on a free (or given) port of 127.0.0.1 and chroots nobody: ``ForceCommand internal-sftp -d``
starts every session in the served directory. An sshd run by a normal user can log in only
that user, so the SFTP login (the firm code) is the current user's name; as root (CI) it is
``root``. Keys are made once and kept, so a restarted server has the same host key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import random
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from icechat.exceptions import DevServerError
from icechat.files import PRIVATE, write_atomic
from icechat.ice.keys import make_ssh_keypair

log = logging.getLogger(__name__)

SSHD = "/usr/sbin/sshd"
HOST = "127.0.0.1"
_START_TIMEOUT_S = 10.0
_PORT_ATTEMPTS = 5
_PORT_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
_EPHEMERAL_LOW = 32768  # Linux's default
_FIRST_PORT = 10000  # above the well-known and most registered services' ports
_PORT_TRIES = 50


def _ephemeral_low() -> int:
    """The first port the kernel hands out for outgoing connections (Linux: from /proc)."""
    try:
        return int(Path(_PORT_RANGE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _EPHEMERAL_LOW


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now, below the ephemeral range.

    The server that gets it binds later; a port the kernel picked (``bind(0)``) is one it
    also gives to outgoing connections, and a busy machine's can take it in between (seen
    under a benchmark's many connections). Below the range only a listener can take it.
    """
    below = range(_FIRST_PORT, _ephemeral_low())
    for port in random.sample(below, min(_PORT_TRIES, len(below))):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # every port tried is taken: let the kernel choose
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ensure_ssh_key(path: Path, comment: str) -> Path:
    """An ed25519 key at ``path`` (OpenSSH format, ``.pub`` beside it), made on first use."""
    if not (path.exists() and path.with_suffix(".pub").exists()):
        path.parent.mkdir(parents=True, exist_ok=True)
        pair = make_ssh_keypair("ed25519", comment)
        write_atomic(path, pair.private_openssh, PRIVATE)
        path.with_suffix(".pub").write_text(pair.public_line + "\n")
    return path


class LocalSftpServer:
    """``sshd -D -e`` for one directory; ``start()`` / ``stop()`` or use as a context manager.

    Under ``directory``: ``sshd/`` (host key, config, ``authorized_keys``, pid file),
    ``client/id_ed25519`` (the client key, unless ``client_key`` is given), ``sshd.log``,
    and ``site/`` (the served directory, unless ``served`` is given).
    """

    def __init__(
        self,
        directory: Path,
        *,
        served: Path | None = None,
        client_key: Path | None = None,
        port: int = 0,
        sshd: str = SSHD,
    ) -> None:
        self.directory = Path(directory).resolve()  # sshd re-executes itself from /
        self.etc = self.directory / "sshd"
        self.served = Path(served).resolve() if served else self.directory / "site"
        self.private_key_path = (client_key or self.directory / "client" / "id_ed25519").resolve()
        self.log_path = self.directory / "sshd.log"
        self.host = HOST
        self.port = port
        self.username = pwd.getpwuid(os.getuid()).pw_name
        self.sshd = sshd
        self.host_public_key = ""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def remote_dir(self) -> str:
        """The served directory as the SFTP client sees it (``internal-sftp -d`` starts there)."""
        return str(self.served)

    @property
    def private_key(self) -> str:
        """The client's OpenSSH private key text."""
        return self.private_key_path.read_text()

    def connection(self, **extra: Any) -> dict[str, Any]:
        """The ``icechat_sftp`` connection (JSON form); ``extra`` overrides extras (None drops)."""
        extras: dict[str, Any] = {
            "private_key": self.private_key,
            "host_key": self.host_public_key,
            "look_for_keys": "false",
        }
        extras.update(extra)
        return {
            "conn_type": "sftp",
            "host": self.host,
            "port": self.port,
            "login": self.username,
            "extra": {k: v for k, v in extras.items() if v is not None},
        }

    def authorize(self, public_line: str) -> None:
        """Let another client key log in (as ICE does with the key a firm sends)."""
        with (self.etc / "authorized_keys").open("a") as out:
            out.write(public_line.strip() + "\n")

    def log(self) -> str:
        """What sshd wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _prepare(self) -> Path:
        if not os.access(self.sshd, os.X_OK):
            raise DevServerError(
                f"{self.sshd} is missing: install OpenSSH's server (apt-get install"
                " openssh-server); it is only run as a local process, never as a service"
            )
        self.etc.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.served.mkdir(parents=True, exist_ok=True)
        host_key = ensure_ssh_key(self.etc / "ssh_host_ed25519_key", "icechat-local-sftpd")
        self.host_public_key = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
        client = ensure_ssh_key(self.private_key_path, "icechat-local-client")
        authorized = self.etc / "authorized_keys"
        line = client.with_suffix(".pub").read_text().strip()
        if line not in (authorized.read_text().splitlines() if authorized.exists() else []):
            self.authorize(line)
        with contextlib.suppress(OSError):  # sshd's privilege-separation dir; root can make it
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        return host_key

    def _config(self, host_key: Path, port: int) -> Path:
        config = self.etc / "sshd_config"
        config.write_text(
            f"Port {port}\n"
            f"ListenAddress {self.host}\n"
            f"HostKey {host_key}\n"
            f"PidFile {self.etc / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.etc / 'authorized_keys'}\n"
            "PermitRootLogin yes\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication yes\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "AllowTcpForwarding no\n"
            "X11Forwarding no\n"
            "LogLevel VERBOSE\n"
            "MaxStartups 100\n"
            f"Subsystem sftp internal-sftp -d {self.served}\n"
            f"ForceCommand internal-sftp -d {self.served}\n"
        )
        return config

    def _wait_listening(self, port: int, proc: subprocess.Popen[bytes]) -> bool:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def start(self) -> LocalSftpServer:
        """Start sshd and wait until it listens; raise DevServerError with its log if not."""
        host_key = self._prepare()
        for _ in range(_PORT_ATTEMPTS if self.port == 0 else 1):
            port = self.port or free_port(self.host)
            config = self._config(host_key, port)
            with self.log_path.open("ab") as err:
                proc = subprocess.Popen(
                    [self.sshd, "-D", "-e", "-f", str(config)], stdout=err, stderr=err
                )
            if self._wait_listening(port, proc):
                self.port, self.process = port, proc
                log.info("sshd serves %s over SFTP on %s:%s", self.served, self.host, port)
                return self
            _end(proc)
            if "Address already in use" not in self.log():
                break
        hint = (
            "\n/run/sshd is missing and only root can make it: sudo mkdir -m 755 /run/sshd"
            if "privilege separation directory" in self.log()
            else ""
        )
        raise DevServerError(
            f"sshd did not start on {self.host} (config {self.etc / 'sshd_config'}); its log"
            f" {self.log_path} says:\n{self.log()[-2000:]}{hint}"
        )

    def stop(self) -> None:
        """Stop the listening sshd (sessions end when their clients disconnect)."""
        if self.process is not None:
            _end(self.process)
            self.process = None

    def __enter__(self) -> LocalSftpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
