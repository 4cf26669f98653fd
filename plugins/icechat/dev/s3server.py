"""An S3-compatible server on loopback for tests, the demo and the bench: moto's standalone
server in its own process, with versioning and Object Lock as S3 has them.

It keeps objects in its own process (large ones spooled to disk), so a test that measures
the connector's memory measures the connector's only. Credentials are moto's dummy ones.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from icechat.dev.loopback import LoopbackServer

log = logging.getLogger(__name__)

ACCESS_KEY, SECRET_KEY, REGION = "testing", "testing", "us-east-1"


class LocalS3Server(LoopbackServer):
    """``python -m moto.server`` on a free port of 127.0.0.1."""

    name = "the S3 server"
    exit_hint = " (is moto[server] installed? pip install -r requirements-dev.txt)"

    @property
    def endpoint(self) -> str:
        """The server's URL, as boto3's ``endpoint_url``."""
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]

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
