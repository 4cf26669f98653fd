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
from pathlib import Path
from typing import Any

from icechat.dev.loopback import LoopbackServer
from icechat.exceptions import DevServerError

ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
#: Where ``make azurite`` (and so CI) installs it; ``ICECHAT_AZURITE`` or the PATH may name another.
INSTALLED = Path(__file__).resolve().parents[3] / ".ci/azurite/node_modules/.bin/azurite-blob"


def azurite_command() -> str:
    """The ``azurite-blob`` program to start, or :class:`DevServerError` saying how to get it."""
    named = os.environ.get("ICECHAT_AZURITE")
    if named:
        if not os.access(named, os.X_OK) or not Path(named).is_file():
            raise DevServerError(
                f"ICECHAT_AZURITE is {named!r}, which is not a program: give the path of "
                "azurite-blob (make azurite installs it in .ci/azurite/node_modules/.bin/), or "
                "unset it"
            )
        return named
    found = shutil.which("azurite-blob")
    if found:
        return found
    if INSTALLED.is_file():
        return str(INSTALLED)
    raise DevServerError(
        "azurite-blob not found: run `make azurite` (npm install of .ci/azurite, Node 20), or "
        "set ICECHAT_AZURITE to the azurite-blob program"
    )


class LocalAzurite(LoopbackServer):
    """``azurite-blob`` on a free port of 127.0.0.1."""

    name = "Azurite"

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

    def command(self) -> list[str]:
        return [
            azurite_command(),
            "--blobHost",
            self.host,
            "--blobPort",
            str(self.port),
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--silent",
        ]

    def service(self) -> Any:
        """A (synchronous) ``BlobServiceClient`` for this account, for tests to look behind.
        It holds an HTTP session: use it as a context manager (``with ... as svc:``)."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def make_container(self, name: str) -> str:
        """Create the container ``name``."""
        with self.service() as service:
            service.create_container(name)
        return name

    def connection(self) -> dict[str, Any]:
        """An Airflow ``wasb`` connection to this account (``AIRFLOW_CONN_...`` as JSON).

        A connection string, as adlfs builds an ``http://`` endpoint on loopback from nothing
        else (``account_name`` with ``account_host`` would be ``https://``)."""
        return {"conn_type": "wasb", "extra": {"connection_string": self.connection_string}}

    def connection_env(self) -> str:
        """:meth:`connection` as the value of an ``AIRFLOW_CONN_...`` variable."""
        return json.dumps(self.connection())
