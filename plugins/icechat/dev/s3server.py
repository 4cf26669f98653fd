"""An S3-compatible server on loopback for tests, the demo and the bench: moto's standalone
server in its own process, with versioning and Object Lock as S3 has them.

It keeps objects in its own process (large ones spooled to disk), so a test that measures
the connector's memory measures the connector's only. Credentials are moto's dummy ones.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from icechat.dev.sftpd import HOST, free_port
from icechat.exceptions import DevServerError

log = logging.getLogger(__name__)

ACCESS_KEY, SECRET_KEY, REGION = "testing", "testing", "us-east-1"
_START_TIMEOUT_S = 30.0


class LocalS3Server:
    """``python -m moto.server`` on a free port of 127.0.0.1; ``start()``/``stop()`` or
    use as a context manager. Its output goes to ``log_path``."""

    def __init__(self, log_path: Path, port: int = 0) -> None:
        self.log_path = log_path
        self.host = HOST
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The server's URL, as boto3's ``endpoint_url``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalS3Server:
        """Start the server and wait until it answers."""
        self.port = self.port or free_port(self.host)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DevServerError(
                    f"the S3 server exited with {self.process.returncode}; see {self.log_path}"
                    " (is moto[server] installed? pip install -r requirements-dev.txt)"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise DevServerError(
            f"the S3 server did not answer on {self.endpoint}; see {self.log_path}"
        )

    def stop(self) -> None:
        """Stop the server (its objects are gone)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> LocalS3Server:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def make_bucket(self, name: str, *, object_lock: bool = True) -> str:
        """Create ``name`` (Object Lock enabled, hence versioned, unless told otherwise)."""
        self.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
        return name

    def connection(self) -> dict[str, Any]:
        """An Airflow ``aws`` connection to this server (``AIRFLOW_CONN_...`` as JSON)."""
        return {
            "conn_type": "aws",
            "login": ACCESS_KEY,
            "password": SECRET_KEY,
            "extra": {"endpoint_url": self.endpoint, "region_name": REGION},
        }

    def connection_env(self) -> str:
        """:meth:`connection` as the value of an ``AIRFLOW_CONN_...`` variable."""
        return json.dumps(self.connection())
