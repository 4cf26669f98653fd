"""Ports for the loopback servers the tests and the demo start."""

from __future__ import annotations

import socket
from pathlib import Path

from icechat.dev.sftpd import HOST, free_port


def test_a_free_port_is_one_outgoing_connections_are_never_given() -> None:
    """The server binds the port later: one from the ephemeral range could be taken by any
    outgoing connection meanwhile (a busy test machine saw it), one below it only by a listener."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(port < low for port in ports)
    assert len(ports) > 1  # spread, so two test workers seldom pick the same one
    for port in ports:
        with socket.socket() as sock:
            sock.bind((HOST, port))  # free: a server can listen on it
