"""The day's first four tasks with the data directory on local disk and in S3, side by side.

Run: ``python bench/object_store.py [MESSAGES] [local|s3 ...] [--rows]`` (default 200000,
both; ``--rows``: JSON rows for ``bench/run.py``).
Writes one encrypted sample day (2 zip parts, a marker) on a local sshd, starts the Graph
emulator (the firm's own people as its users) and moto's S3 server, then runs fetch ->
decrypt -> parse_render -> map_participants, each task's own glue function in a fresh
process (so its peak resident memory is its own), with ``icechat_data_dir`` a local folder
and/or an ``s3://`` bucket. Prints one row per store and task: wall seconds and peak RSS
(MB). Everything listens on 127.0.0.1; the S3 server is in its own process, so its memory
is not counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from rows import Row, emit_rows

REPO = Path(__file__).resolve().parents[1]
PLUGINS = REPO / "plugins"
sys.path.insert(0, str(PLUGINS))

DAY = date(2026, 11, 26)
SEED = 7
TASKS = ("fetch", "decrypt", "parse_render", "map_participants")


def run_task(task: str, state: Path) -> dict[str, Any]:
    """One task's glue function in this process; its result goes to ``state/{task}.json``."""
    from icechat.dev.memory import own_peak_bytes
    from icechat.glue import tasks

    results = {t: json.loads((state / f"{t}.json").read_text()) for t in TASKS[: TASKS.index(task)]}
    began = time.perf_counter()
    if task == "fetch":
        result: Any = tasks.fetch(DAY)
    elif task == "decrypt":
        result = tasks.decrypt_and_unpack(DAY, results["fetch"])
    elif task == "parse_render":
        result = tasks.parse_and_render(DAY, results["decrypt"])
    else:
        result = tasks.plan(DAY, results["parse_render"], {"run_id": f"bench__{os.getpid()}"})
    seconds = time.perf_counter() - began
    (state / f"{task}.json").write_text(json.dumps(result))
    peak = own_peak_bytes() / 2**20
    return {"seconds": seconds, "peak_mb": peak}


def servers(root: Path, messages: int) -> tuple[dict[str, str], Any]:
    """sshd with the day, the Graph emulator, the S3 server: the tasks' environment."""
    from contextlib import ExitStack

    from icechat.dev.graph_emulator.server import GraphEmulator
    from icechat.dev.s3server import LocalS3Server
    from icechat.dev.sample import own_people, write_day
    from icechat.dev.sample.population import directory_users
    from icechat.dev.sftpd import LocalSftpServer
    from icechat.ice.keys import make_pgp_keypair, pgp_connection

    stack = ExitStack()
    sftpd = LocalSftpServer(root / "sftp")
    firm = sftpd.username.upper()
    pair = make_pgp_keypair("Bench", "bench@bench.example", "bench-passphrase", algo="ed25519")
    public = root / "public.asc"
    public.write_text(pair.public_armored)
    began = time.perf_counter()
    write_day(
        sftpd.served,
        firm,
        DAY,
        messages,
        SEED,
        parts=2,
        packaging="zip",
        encrypt_to=public,
        marker=True,
    )
    size = sum(p.stat().st_size for p in sftpd.served.iterdir())
    print(
        f"# {messages} items, {size / 1e6:.0f} MB encrypted, written in "
        f"{time.perf_counter() - began:.0f} s",
        flush=True,
    )
    sftpd.start()
    stack.callback(sftpd.stop)
    secret = "bench-app-secret-0123456789"
    directory = {
        "users": directory_users(own_people(firm, [DAY], messages, SEED)),
        "apps": [
            {
                "client_id": "bench-app",
                "secret": secret,
                "permissions": ["Mail.ReadWrite", "User.Read.All"],
            }
        ],
    }
    emulator = GraphEmulator(root / "graph", directory=directory).start()
    stack.callback(emulator.stop)
    s3 = stack.enter_context(LocalS3Server(root / "moto.log"))
    s3.make_bucket("bench")
    conns = {
        "icechat_sftp": sftpd.connection(),
        "icechat_pgp": pgp_connection(
            passphrase="bench-passphrase", secret_armored=pair.secret_armored
        ),
        "icechat_graph": emulator.connection("bench-app", secret),
        "icechat_s3": s3.connection(),
    }
    env = {f"AIRFLOW_CONN_{k.upper()}": json.dumps(v) for k, v in conns.items()}
    env["AIRFLOW_VAR_ICECHAT_REMOTE_DIR"] = sftpd.remote_dir
    return env, stack


def main(argv: list[str]) -> None:
    if argv[:1] == ["--task"]:
        print(json.dumps(run_task(argv[1], Path(argv[2]))))
        return
    rows = "--rows" in argv
    argv = [a for a in argv if a != "--rows"]
    out = sys.stderr if rows else sys.stdout
    messages = int(argv[0]) if argv else 200_000
    stores = [a for a in argv[1:] if a in ("local", "s3")] or ["local", "s3"]
    readings: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="icechat-bench-", dir="/tmp") as tmp:
        root = Path(tmp)
        env, stack = servers(root, messages)
        with stack:
            print(
                f"{'store':>6} {'task':>17} {'seconds':>8} {'peak RSS MB':>11}",
                file=out,
                flush=True,
            )
            for store in stores:
                state = root / f"state-{store}"
                state.mkdir()
                ledger = f"sqlite:///{root / f'ledger-{store}.sqlite'}"
                data = str(root / "data") if store == "local" else "s3://icechat_s3@bench/icechat"
                task_env = {
                    **os.environ,
                    **env,
                    "AIRFLOW_HOME": str(root / "airflow"),
                    "AIRFLOW_VAR_ICECHAT_DATA_DIR": data,
                    "AIRFLOW_CONN_ICECHAT_LEDGER": json.dumps(
                        {"conn_type": "generic", "extra": {"url": ledger}}
                    ),
                    "PYTHONPATH": f"{PLUGINS}{os.pathsep}{REPO}",
                    "TMPDIR": "/tmp",
                }
                for task in TASKS:
                    done = subprocess.run(
                        [sys.executable, __file__, "--task", task, str(state)],
                        env=task_env,
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if done.returncode != 0:
                        raise SystemExit(f"{store} {task} failed:\n{done.stderr[-4000:]}")
                    r = json.loads(done.stdout.strip().splitlines()[-1])
                    print(
                        f"{store:>6} {task:>17} {r['seconds']:>8.1f} {r['peak_mb']:>11.0f}",
                        file=out,
                        flush=True,
                    )
                    shown = f"{store} {r['seconds']:.0f} s, {r['peak_mb']:.0f} MB"
                    readings.setdefault(task, {})[store] = shown
    if rows:
        emit_rows(
            [
                Row(
                    "object_store",
                    f"{task}, {messages:,} items: data directory on local disk vs in S3 "
                    "(moto on loopback), wall time and peak RSS",
                    "; ".join(by_store.values()),
                )
                for task, by_store in readings.items()
            ]
        )


if __name__ == "__main__":
    main(sys.argv[1:])
