"""A loopback server for a fixture (moto's S3, Azurite): started, or the test fails saying why;
always stopped."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest

from icechat.dev.loopback import LoopbackServer
from icechat.exceptions import DevServerError

Server = TypeVar("Server", bound=LoopbackServer)


@contextmanager
def serving(server: Server) -> Iterator[Server]:
    """``server`` running for the block, stopped when it ends.

    A server that does not start fails the test with its own message (where its log is, what
    to install) instead of a traceback.
    """
    try:
        server.start()
    except DevServerError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()
