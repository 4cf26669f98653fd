"""A test server in a process of its own on a free port of 127.0.0.1 (moto's S3, Azurite).

Subclasses say what to run (:meth:`LoopbackServer.command`); this class starts it with its
output in a log file, waits until the port answers, and stops it (its data goes with it).
"""

from __future__ import annotations

import socket
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self

from icechat.dev.sftpd import HOST, free_port
from icechat.exceptions import DevServerError

START_TIMEOUT_S = 30.0


class LoopbackServer(ABC):
    """``start()``/``stop()``, or use as a context manager. Output goes to ``log_path``."""

    #: The server's name in messages.
    name: str
    #: What to do when it exits at start, said after the log's path.
    exit_hint = ""

    def __init__(self, log_path: Path, port: int = 0) -> None:
        self.log_path = log_path
        self.host = HOST
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    @abstractmethod
    def endpoint(self) -> str:
        """The URL clients are given."""

    @abstractmethod
    def command(self) -> list[str]:
        """The program and its arguments, serving on ``self.host``:``self.port``."""

    def start(self) -> Self:
        """Start the server and wait until it answers."""
        self.port = self.port or free_port(self.host)
        command = self.command()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.log_path.parent,  # where a server leaves files of its own
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DevServerError(
                    f"{self.name} exited with {self.process.returncode}; see {self.log_path}"
                    f"{self.exit_hint}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise DevServerError(f"{self.name} did not answer on {self.endpoint}; see {self.log_path}")

    def stop(self) -> None:
        """Stop the server (what it held is gone)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
