"""A local Microsoft Graph and Entra ID for tests and the demo (``icechat graph-emulator``).

HTTPS with a self-signed certificate; the OpenID discovery and token endpoints MSAL needs
(client secret or certificate); users, mail folders and messages with Exchange's rules;
``$filter``, ``$batch``, real-shaped errors; switchable throttling and faults; a request log
that flags retries made before the ``Retry-After`` given; state on disk in ``--state``.
"""

from icechat.dev.graph_emulator.faults import FaultConfig
from icechat.dev.graph_emulator.server import MAX_REQUEST_BYTES, GraphEmulator
from icechat.dev.graph_emulator.tls import AppCertificate, make_app_certificate

__all__ = [
    "MAX_REQUEST_BYTES",
    "AppCertificate",
    "FaultConfig",
    "GraphEmulator",
    "make_app_certificate",
]
