"""The Graph emulator against the real MSAL and requests: auth, directory, folders, messages."""

from __future__ import annotations

from tests.fixtures.graph_emulator import ALICE, GraphEmulatorHandle


def test_secret_token_reaches_graph(graph_emulator: GraphEmulatorHandle) -> None:
    response = graph_emulator.graph("GET", f"/users/{ALICE}")
    assert response.status_code == 200
    assert response.json()["userPrincipalName"] == ALICE
