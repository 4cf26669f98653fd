"""Azure Blob Storage on loopback for tests: Azurite's blob service (from npm) in its own process.

Azurite keeps blobs in memory (``--inMemoryPersistence``), sends no telemetry, and accepts the
SDK's newer API versions (``--skipApiVersionCheck``). It has no version-level immutability (its
handlers for it are stubs), which is what lets tests see a container without it refused.
The account and key are Azurite's well-known development ones, not secrets.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from icechat.dev.sftpd import HOST, free_port
from icechat.exceptions import DevServerError

ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
#: Where ``make azurite`` (and so CI) installs it; ``ICECHAT_AZURITE`` or the PATH may name another.
INSTALLED = Path(__file__).resolve().parents[3] / ".ci/azurite/node_modules/.bin/azurite-blob"
_START_TIMEOUT_S = 30.0


def azurite_command() -> str:
    """The ``azurite-blob`` program to start, or :class:`DevServerError` saying how to get it."""
    found = os.environ.get("ICECHAT_AZURITE") or shutil.which("azurite-blob")
    if found:
        return found
    if INSTALLED.is_file():
        return str(INSTALLED)
    raise DevServerError(
        "azurite-blob not found: run `make azurite` (npm install of .ci/azurite, Node 20), or "
        "set ICECHAT_AZURITE to the azurite-blob program"
    )


class LocalAzurite:
    """``azurite-blob`` on a free port of 127.0.0.1; ``start()``/``stop()`` or use as a
    context manager. Its output goes to ``log_path``."""

    def __init__(self, log_path: Path, port: int = 0) -> None:
        self.log_path = log_path
        self.host = HOST
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The account's blob endpoint (Azurite puts the account name in the path)."""
        return f"http://{self.host}:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        """The account as Azure's SDKs and adlfs take it."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.endpoint};"
        )

    def start(self) -> LocalAzurite:
        """Start the server and wait until it answers."""
        command = azurite_command()
        self.port = self.port or free_port(self.host)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    command,
                    "--blobHost",
                    self.host,
                    "--blobPort",
                    str(self.port),
                    "--inMemoryPersistence",
                    "--disableTelemetry",
                    "--skipApiVersionCheck",
                    "--silent",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.log_path.parent,  # where Azurite leaves its debug and lock files
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DevServerError(
                    f"Azurite exited with {self.process.returncode}; see {self.log_path}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise DevServerError(f"Azurite did not answer on {self.endpoint}; see {self.log_path}")

    def stop(self) -> None:
        """Stop the server (its blobs are gone)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> LocalAzurite:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def service(self) -> Any:
        """A (synchronous) ``BlobServiceClient`` for this account, for tests to look behind."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def make_container(self, name: str) -> str:
        """Create the container ``name``."""
        self.service().create_container(name)
        return name

    def connection(self) -> dict[str, Any]:
        """An Airflow ``wasb`` connection to this account (``AIRFLOW_CONN_...`` as JSON).

        A connection string, as adlfs builds an ``http://`` endpoint on loopback from nothing
        else (``account_name`` with ``account_host`` would be ``https://``)."""
        return {"conn_type": "wasb", "extra": {"connection_string": self.connection_string}}

    def connection_env(self) -> str:
        """:meth:`connection` as the value of an ``AIRFLOW_CONN_...`` variable."""
        return json.dumps(self.connection())
