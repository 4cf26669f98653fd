"""icechat registers its connection types with Airflow, as the UI and ProvidersManager load them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import airflow
import jsonschema

from icechat.glue.connections import IceChatGraphHook, IceChatPgpHook
from icechat.glue.provider import get_provider_info
from tests.support.paths import REPO

# Every extra the icechat_graph connection reads (see the README's connection table).
GRAPH_EXTRAS = {
    "tenant_id",
    "certificate",
    "thumbprint",
    "authority_host",
    "graph_url",
    "ca_bundle",
    "scope",
}


def test_provider_info_follows_airflows_schema():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_entry_point_in_pyproject_names_the_function():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    target = project["entry-points"]["apache_airflow_provider"]["provider_info"]
    assert target == "icechat.glue.provider:get_provider_info"
    assert get_provider_info()["package-name"] == project["name"]


def test_connection_types_match_their_hooks_and_fields():
    types = {t["connection-type"]: t for t in get_provider_info()["connection-types"]}
    for hook in (IceChatGraphHook, IceChatPgpHook):
        entry = types[hook.conn_type]
        assert entry["hook-class-name"] == f"{hook.__module__}.{hook.__name__}"
        assert entry["hook-name"] == hook.hook_name
        assert hook.default_conn_name == hook.conn_type
    graph, pgp = types["icechat_graph"], types["icechat_pgp"]
    assert set(graph["conn-fields"]) == GRAPH_EXTRAS
    assert graph["conn-fields"]["certificate"]["schema"]["format"] == "password"
    assert graph["ui-field-behaviour"]["relabeling"]["login"] == "Application (client) ID"
    assert set(pgp["conn-fields"]) == {"private_key"}
    assert pgp["conn-fields"]["private_key"]["schema"]["format"] == "multiline"
    assert pgp["ui-field-behaviour"]["relabeling"] == {"password": "Passphrase"}


# Runs in a fresh interpreter that sees this worktree as an installed distribution (a
# dist-info with the entry point), the way `pip install -e .` would register it.
AS_AIRFLOW_DOES = textwrap.dedent(
    """
    import json, os, sys, warnings
    warnings.simplefilter("ignore")
    from airflow.models.connection import Connection
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    out = {
        "hooks": {t: pm.hooks[t].hook_class_name for t in ("icechat_graph", "icechat_pgp")},
        "widgets": sorted(k for k in pm.connection_form_widgets if "icechat" in k),
        "behaviour": pm.field_behaviours["icechat_pgp"],
        "tests": [],
    }
    # What the API server's POST /connections/test does with the form's values.
    for n, fields in enumerate(json.loads(sys.argv[1])):
        conn = Connection(conn_id=f"transient{n}", **fields)
        os.environ[f"AIRFLOW_CONN_TRANSIENT{n}"] = conn.get_uri()
        out["tests"].append(conn.test_connection())
    print(json.dumps(out))
    """
)


def test_providers_manager_loads_the_types_and_their_test_works(
    tmp_path, graph_emulator, pgp_keypair
):
    dist = tmp_path / "site" / "icechat_archiver-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: icechat-archiver\nVersion: 0.1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[apache_airflow_provider]\nprovider_info = icechat.glue.provider:get_provider_info\n"
    )
    emu = graph_emulator
    graph_extra = {
        "tenant_id": emu.tenant_id,
        "authority_host": emu.authority_host,
        "graph_url": emu.graph_url,
        "ca_bundle": emu.ca_bundle,
    }
    forms = [
        {
            "conn_type": "icechat_graph",
            "login": emu.client_id,
            "password": emu.client_secret,
            "extra": json.dumps(graph_extra),
        },
        {
            "conn_type": "icechat_pgp",
            "password": "wrong-passphrase-31",
            "extra": json.dumps({"private_key": pgp_keypair.secret_armored}),
        },
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), str(REPO / "plugins")]),
        AIRFLOW_HOME=str(tmp_path / "airflow"),
    )
    done = subprocess.run(
        [sys.executable, "-c", AS_AIRFLOW_DOES, json.dumps(forms)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["hooks"] == {
        "icechat_graph": "icechat.glue.connections.IceChatGraphHook",
        "icechat_pgp": "icechat.glue.connections.IceChatPgpHook",
    }
    assert out["widgets"] == sorted(
        [f"extra__icechat_graph__{f}" for f in GRAPH_EXTRAS] + ["extra__icechat_pgp__private_key"]
    )
    assert out["behaviour"]["relabeling"] == {"password": "Passphrase"}
    (graph_ok, graph_message), (pgp_ok, pgp_message) = out["tests"]
    assert graph_ok, graph_message
    assert not pgp_ok and "passphrase does not unlock" in pgp_message
    assert "wrong-passphrase-31" not in done.stdout + done.stderr
    assert emu.client_secret not in done.stdout + done.stderr
