"""A ``requests`` session that verifies TLS with the configured CA bundle, always.

``requests`` lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` from the environment override
``Session.verify``; a connection's ``ca_bundle`` must win, while proxy settings from the
environment still apply.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter


class VerifyingSession(requests.Session):
    """Every request verifies against ``verify`` (a CA bundle path, or True for the system)

    and has a timeout (``timeout`` unless the call gives one).
    """

    def __init__(
        self, verify: str | bool, timeout: float | tuple[float, float], pool_size: int = 10
    ) -> None:
        super().__init__()
        self.verify = verify
        self.timeout = timeout
        self.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=pool_size))

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        """As ``requests.Session.request``, with our ``verify`` and timeout as defaults."""
        if kwargs.get("verify") is None:
            kwargs["verify"] = self.verify
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)
