"""The docker-compose deployment: compose file, Dockerfile and .env.example agree."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from icechat import settings
from tests.support.airflow_stack import CELERY, service_env
from tests.support.paths import REPO

COMPOSE = REPO / "docker-compose.yaml"
REQUIREMENTS = REPO / "requirements.txt"
COMPOSE_S3 = REPO / "docker-compose.s3.yaml"
DOCKERFILE = REPO / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"

DATA_DIR = "/opt/airflow/icechat"
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
}
# The connection ids and variable names the connector's contract fixes.
CONTRACT_CONNECTIONS = {"icechat_sftp", "icechat_pgp", "icechat_graph", "icechat_ledger"}
# The S3 data directory's connection: its id is the deployment's choice, named in the URL.
STORE_CONNECTIONS = {"icechat_s3"}
CONTRACT_VARIABLES = {
    "icechat_remote_dir",
    "icechat_data_dir",
    "icechat_mapping_csv",
    "icechat_auto_mapping",
    "icechat_folder_name",
    "icechat_item_mode",
}
ENV_LINE = re.compile(r"^(#\s*)?([A-Z_][A-Z0-9_]*)=(.*)$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def env_entries(*, include_commented: bool) -> dict[str, str]:
    """NAME -> value (outer single quotes removed) of .env.example's assignments."""
    entries = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = ENV_LINE.match(line)
        if match and (include_commented or not match.group(1)):
            value = match.group(3)
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            entries[match.group(2)] = value
    return entries


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment must be a mapping"
    return env


def test_compose_has_the_celery_stack(compose: dict[str, Any]) -> None:
    services = set(compose["services"])
    assert AIRFLOW_SERVICES | {"postgres", "redis"} <= services
    assert compose["services"]["airflow-apiserver"]["command"] == "api-server"
    assert any(p.endswith(":8080") for p in compose["services"]["airflow-apiserver"]["ports"])
    assert compose["services"]["airflow-worker"]["command"] == "celery worker"


@pytest.mark.parametrize("name", sorted(AIRFLOW_SERVICES))
def test_airflow_service_shares_data_volume_and_executor(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    assert f"icechat-data:{DATA_DIR}" in service["volumes"]
    env = environment(service)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        "http://airflow-apiserver:8080/execution/"
    )
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["AIRFLOW_VAR_ICECHAT_DATA_DIR"].endswith(f":-{DATA_DIR}}}")
    assert service["env_file"] == ["${ICECHAT_ENV_FILE:-.env}"]
    assert service["build"] == "."
    assert "icechat-data" in compose["volumes"]


def test_compose_configures_celery_as_the_celery_system_test_runs_it(
    compose: dict[str, Any],
) -> None:
    tested = service_env({}, "airflow", 8080, executor=CELERY)
    env = environment(compose["services"]["airflow-worker"])
    names = {n for n in tested if n.startswith("AIRFLOW__CELERY__")}
    assert names == {"AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND"}
    assert names <= set(env)
    assert env["AIRFLOW__CORE__EXECUTOR"] == tested["AIRFLOW__CORE__EXECUTOR"] == CELERY
    for url in (env, tested):
        assert url["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert url["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")


def test_image_pins_the_celery_stack_the_test_runs() -> None:
    """The Dockerfile installs requirements.txt over the image's own Celery: the same pins.

    celery 5.7 removed ``celery.backends.database.retry``, which the provider imports.
    """
    pins = dict(
        line.split("==", 1)
        for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["apache-airflow-providers-celery"] == "3.26.0"
    assert pins["celery[redis]"].startswith("5.6.")


def test_init_creates_the_graph_pool_the_tasks_are_told_to_use_and_admin(
    compose: dict[str, Any],
) -> None:
    init = compose["services"]["airflow-init"]
    script = "\n".join(init["command"])
    env = environment(init)
    pool = env["AIRFLOW_VAR_ICECHAT_GRAPH_POOL"]
    assert re.search(rf"airflow pools set {pool} \S+ ", script)
    assert env["_AIRFLOW_DB_MIGRATE"] == "true"
    assert env["_AIRFLOW_WWW_USER_CREATE"] == "true"


def test_ledger_database_exists_where_the_example_points(compose: dict[str, Any]) -> None:
    mounts = compose["services"]["postgres"]["volumes"]
    init_dir = next(m.split(":")[0] for m in mounts if "/docker-entrypoint-initdb.d" in m)
    sql = "".join(p.read_text() for p in sorted((REPO / init_dir).glob("*.sql")))
    assert re.search(r"CREATE DATABASE icechat_ledger\b", sql)
    ledger = env_entries(include_commented=False)["AIRFLOW_CONN_ICECHAT_LEDGER"]
    assert re.fullmatch(r"postgresql://airflow:[^@]+@postgres:5432/icechat_ledger", ledger)


def test_env_example_names_the_connectors_connections_and_variables() -> None:
    names = set(env_entries(include_commented=True))
    connections = {n.removeprefix("AIRFLOW_CONN_").lower() for n in names if "_CONN_" in n}
    variables = {n.removeprefix("AIRFLOW_VAR_").lower() for n in names if "_VAR_" in n}
    assert connections == CONTRACT_CONNECTIONS | STORE_CONNECTIONS
    assert variables >= CONTRACT_VARIABLES, "every contract variable is documented"
    assert variables <= set(settings.ALL), "every variable is one the connector reads"


def test_env_example_connections_are_valid_json() -> None:
    entries = env_entries(include_commented=False)
    expected_types = {"SFTP": "sftp", "PGP": "generic", "GRAPH": "generic"}
    for suffix, conn_type in expected_types.items():
        conn = json.loads(entries[f"AIRFLOW_CONN_ICECHAT_{suffix}"])
        assert conn["conn_type"] == conn_type
    sftp = json.loads(entries["AIRFLOW_CONN_ICECHAT_SFTP"])
    assert {"private_key", "host_key"} <= set(sftp["extra"])
    graph = json.loads(entries["AIRFLOW_CONN_ICECHAT_GRAPH"])
    assert "tenant_id" in graph["extra"]


def test_env_example_defines_every_required_compose_value() -> None:
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text(encoding="utf-8")))
    assert required, "the compose file should insist on its secrets"
    assert required <= set(env_entries(include_commented=False))


def test_dockerfile_installs_gpg_and_the_package() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "apache/airflow:3.3.2-python3.11" in text
    apt = re.search(r"apt-get install[^\n]*", text)
    assert apt and "gnupg" in apt.group(0).split()
    assert re.search(r"pip install --no-cache-dir .*\n?.*-r \S*requirements\.txt", text)
    assert re.search(r"pip install --no-cache-dir --no-deps /opt/icechat-src\b", text)
    assert "/opt/airflow/dags" in text


def test_secrets_stay_out_of_git_and_the_image() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO, check=False)
    assert ignored.returncode == 0, ".env must be gitignored"
    dockerignore = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in dockerignore


@pytest.mark.parametrize("files", [[COMPOSE], [COMPOSE, COMPOSE_S3]], ids=["volume", "s3"])
def test_docker_compose_accepts_the_file(files) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("docker client has no compose plugin")
    chosen = [arg for f in files for arg in ("-f", str(f))]
    result = subprocess.run(
        [docker, "compose", *chosen, "--env-file", str(ENV_EXAMPLE), "config", "-q"],
        cwd=REPO,
        env={
            **os.environ,
            "ICECHAT_ENV_FILE": str(ENV_EXAMPLE),
            "ICECHAT_S3_DATA_DIR": "s3://icechat_s3@bucket/icechat",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


class ComposeLoader(yaml.SafeLoader):
    """YAML with compose's merge tags: ``!override`` replaces the base file's value."""


ComposeLoader.add_constructor("!override", ComposeLoader.construct_sequence)


def test_the_s3_override_puts_the_data_directory_in_a_bucket_not_a_volume(
    compose: dict[str, Any],
) -> None:
    override = yaml.load(COMPOSE_S3.read_text(encoding="utf-8"), Loader=ComposeLoader)
    assert set(override["services"]) == AIRFLOW_SERVICES | {"airflow-cli"}
    for name, service in override["services"].items():
        assert compose["services"][name].get("volumes"), name
        assert not any("icechat-data" in v for v in service["volumes"]), name
        data_dir = service["environment"]["AIRFLOW_VAR_ICECHAT_DATA_DIR"]
        assert data_dir.startswith("${ICECHAT_S3_DATA_DIR:?")
    entries = env_entries(include_commented=True)
    url = entries["ICECHAT_S3_DATA_DIR"]
    assert settings.Settings.from_lookup({"icechat_data_dir": url}.get).data_url == url
    conn_id = url.removeprefix("s3://").partition("@")[0]
    conn = json.loads(entries[f"AIRFLOW_CONN_{conn_id.upper()}"])
    assert conn["conn_type"] == "aws"
    assert "AIRFLOW_VAR_ICECHAT_RAW_RETENTION" in entries
