"""A whole day through the DAG's tasks: wall time and peak resident memory of each task.

Run: ``python bench/pipeline_day.py [MESSAGES ...]`` (default 100000; the memory target is
for 1000000: every task under 300 MB, and within 1.5x of its value at 100000). Add
``--rows`` for the JSON rows ``bench/run.py`` prints as one table, ``--shards K`` to import
only the K smallest shards (``--largest``: the K largest, those with the most copies, the
import's worst case for memory) and ``--import-seconds S`` to stop each import after S seconds
(when the whole import would not finish in the time there is; the row says how many shards
and copies were imported; reconcile then reports the rest missing, and is measured all the
same), ``--at-once K`` to import K shards side by side (default: all of them, as the DAG's
mapped import tasks run given enough pool slots and workers; ``--at-once 1``: one after
another), ``--keep`` to leave the run's work directory (the rendered day, the plan, the ledger)
for a closer look. Each task's ``VmHWM`` is sampled every 15 s and printed on stderr, so a
stopped import still shows whether its memory had levelled off; each reading carries the
1-minute load average as the task ended (the machine may be shared).

Each task is the DAG's own task function (``icechat.glue.tasks``: fetch, decrypt,
parse_render, map_participants, one import_shard per shard, reconcile) run in a fresh
process, so its peak RSS is its own: its ``VmHWM`` (:mod:`icechat.dev.memory`; its
``ru_maxrss`` would include this bench's own peak), not counting what it starts (gpg).
Around them, as in production: the real sshd serving the encrypted day
(``icechat.dev.sftpd``), real gpg, the Graph emulator with no latency, a SQLite ledger.
The emulator keeps Graph's per-mailbox limits and the client paces itself to them (10,000
requests per 10 minutes a mailbox), so at 1,000,000 items the import takes at least its
heaviest mailbox's copies at 16.7 a second, as it would against Graph: shards one after
another would take hours, side by side about as long as the heaviest shard.

The day (a sample day: zip parts with attachments, PGP-encrypted, with its marker) is
written once and kept under the bench cache (``$ICECHAT_BENCH_CACHE``, default
``bench/.cache``): a 1,000,000-item day takes minutes to generate.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from rows import Row, bench_cache, emit_rows, print_table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

DAY = date(2026, 11, 26)
SEED = 7
FIRM = "BENCH01"
CLIENT_ID = "0d3e6a1c-5a11-4c0e-9d3e-00000000be0c"
RUN_ID = "bench__pipeline"
RSS_LIMIT_MB = 300
GROWTH_LIMIT = 1.5
SAMPLE_SECONDS = 15.0


def parts_for(messages: int) -> int:
    """Parts per day as ICE splits a large day: about one per 250,000 items."""
    return max(1, messages // 250_000)


# -- the cached day ------------------------------------------------------------------------


def prepare_day(messages: int) -> Path:
    """The encrypted day and its keys under the bench cache, written on the first use."""
    from icechat.dev.sample import marker_name, own_people, write_day
    from icechat.ice.keys import make_pgp_keypair, new_passphrase

    home = bench_cache() / f"day-{messages}"
    site = home / "site"
    if (site / marker_name(FIRM, DAY)).exists() and (home / "people.json").exists():
        return home
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    passphrase = new_passphrase()
    pair = make_pgp_keypair("bench", "bench@bench01.example", passphrase, algo="ed25519")
    (home / "public.asc").write_text(pair.public_armored)
    (home / "secret.asc").write_text(pair.secret_armored)
    (home / "passphrase").write_text(passphrase)
    began = time.monotonic()
    write_day(
        site,
        FIRM,
        DAY,
        messages,
        SEED,
        parts=parts_for(messages),
        packaging="zip",
        encrypt_to=home / "public.asc",
        marker=True,
    )
    print(f"day of {messages} items written in {time.monotonic() - began:.0f} s", file=sys.stderr)
    (home / "people.json").write_text(json.dumps(own_people(FIRM, [DAY], messages, SEED)))
    return home


# -- one task in its own process ------------------------------------------------------------


def _task(name: str, args: dict[str, Any]) -> Any:
    from icechat.glue import tasks

    day = DAY
    context = {"run_id": RUN_ID, "dag_run": None}
    steps: dict[str, Callable[[], Any]] = {
        "fetch": lambda: tasks.fetch(day),
        "decrypt": lambda: tasks.decrypt_and_unpack(day, args["fetched"]),
        "parse_render": lambda: tasks.parse_and_render(day, args["parts"]),
        "map_participants": lambda: tasks.plan(day, args["rendered"], context),
        "import_shard": lambda: tasks.import_shard(day, args["shard"], context),
        "reconcile": lambda: tasks.reconcile(day, args["upstream"], args["shards"], context),
    }
    return steps[name]()


def task_main(name: str, args_file: str) -> None:
    """In the task's process: run it, then print its result and peak RSS as JSON."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        result = _task(name, json.loads(Path(args_file).read_text()))
    except AirflowFailException as exc:  # reconcile after a partial import: measured anyway
        result = {"task_failed": str(exc)}  # not "failed": reconcile's outcome counts those
    from icechat.dev.memory import own_peak_bytes

    print(json.dumps({"result": result, "peak_mb": own_peak_bytes() / 2**20}))


def run_task(
    name: str,
    args: dict[str, Any],
    env: dict[str, str],
    work: Path,
    *,
    stop_after: float | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """Run one task in a fresh process; its result, wall seconds, peak RSS and the load.

    ``label`` names its files in ``work`` (the task's name by default; tasks that run side
    by side need one each).

    Its ``VmHWM`` (peak RSS so far) is sampled every :data:`SAMPLE_SECONDS`, so a task
    stopped after ``stop_after`` seconds (its result then ``None``) still shows whether its
    memory had levelled off.
    """
    label = label or name
    args_file = work / f"{label}.args.json"
    args_file.write_text(json.dumps(args))
    began = time.monotonic()
    samples: list[tuple[float, float]] = []
    with (work / f"{label}.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--task", name, str(args_file)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        while True:
            wait = SAMPLE_SECONDS
            if stop_after is not None:
                wait = max(0.1, min(wait, stop_after - (time.monotonic() - began)))
            try:
                stdout, _ = proc.communicate(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                # sampled last just before a stop, so a stopped task's peak is not stale
                samples.append((time.monotonic() - began, _hwm_mb(proc.pid)))
                if stop_after is not None and time.monotonic() - began >= stop_after:
                    proc.terminate()
                    proc.communicate()
                    stop = {"result": None, "peak_mb": samples[-1][1]}
                    return {
                        **stop,
                        "seconds": samples[-1][0],
                        "stopped": True,
                        "samples": samples,
                        "load": os.getloadavg()[0],
                    }
    seconds = time.monotonic() - began
    if proc.returncode != 0:
        tail = "\n".join((work / f"{label}.log").read_text().strip().splitlines()[-15:])
        raise SystemExit(f"task {name} failed (exit {proc.returncode}):\n{tail}")
    out = json.loads(stdout.strip().splitlines()[-1])
    return {**out, "seconds": seconds, "samples": samples, "load": os.getloadavg()[0]}


def _hwm_mb(pid: int) -> float:
    """The process's peak resident set so far (``VmHWM``), 0 once it has gone."""
    from icechat.dev.memory import own_peak_bytes

    try:
        return own_peak_bytes(pid) / 2**20
    except OSError:
        return 0.0


# -- the servers and the run ----------------------------------------------------------------


@contextmanager
def servers(home: Path, work: Path) -> Iterator[dict[str, str]]:
    """sshd serving the cached day and the Graph emulator; the tasks' environment."""
    from icechat.dev.airflow import airflow_env
    from icechat.dev.graph_emulator import GraphEmulator
    from icechat.dev.sample.population import directory_users
    from icechat.dev.sftpd import LocalSftpServer
    from icechat.ice.keys import pgp_connection

    secret = "bench-secret-value"
    directory = {
        "users": directory_users(json.loads((home / "people.json").read_text())),
        "apps": [
            {
                "client_id": CLIENT_ID,
                "secret": secret,
                "permissions": ["Mail.ReadWrite", "User.Read.All"],
            }
        ],
    }
    sftpd = LocalSftpServer(work / "sftp", served=home / "site")
    sftpd.start()
    emulator = GraphEmulator(work / "graph", directory=directory).start()
    try:
        connections = {
            "icechat_sftp": sftpd.connection(firm_code=FIRM),
            "icechat_pgp": pgp_connection(
                passphrase=(home / "passphrase").read_text(),
                secret_armored=(home / "secret.asc").read_text(),
            ),
            "icechat_graph": emulator.connection(CLIENT_ID, secret),
        }
        variables = {
            "icechat_data_dir": str(work / "data"),
            "icechat_remote_dir": sftpd.remote_dir,
        }
        yield airflow_env(work / "airflow", ROOT, connections, variables)
    finally:
        emulator.stop()
        sftpd.stop()


@dataclass(frozen=True)
class Options:
    """How much of the day to run: ``shards`` smallest shards (all when None; the largest
    with ``largest``), each import stopped after ``import_seconds`` (never when None);
    ``at_once`` shards imported side by side (all when None); ``keep`` leaves the work
    directory."""

    shards: int | None = None
    largest: bool = False
    import_seconds: float | None = None
    at_once: int | None = None
    keep: bool = False


def run_day(messages: int, options: Options) -> list[dict[str, Any]]:
    """Every task of one day in DAG order; one measurement per task (the import as one)."""
    home = prepare_day(messages)
    work = Path(tempfile.mkdtemp(prefix=f"run-{messages}-", dir=bench_cache()))
    measured: list[dict[str, Any]] = []
    printing = threading.Lock()

    def step(
        name: str, args: dict[str, Any], stop_after: float | None = None, label: str | None = None
    ) -> Any:
        out = run_task(name, args, env, work, stop_after=stop_after, label=label)
        measured.append({"task": name, **{k: v for k, v in out.items() if k != "result"}})
        hwm = ", ".join(f"{t:.0f} s {mb:.0f}" for t, mb in out["samples"][-40:])
        with printing:
            print(
                f"  {messages} {label or name}: {out['seconds']:.1f} s, "
                f"{out['peak_mb']:.0f} MB, load {out['load']:.1f}"
                + (" (stopped)" if out.get("stopped") else "")
                + (f"; VmHWM MB at: {hwm}" if hwm else ""),
                file=sys.stderr,
                flush=True,
            )
        return out["result"]

    try:
        with servers(home, work) as env:
            fetched = step("fetch", {})
            parts = step("decrypt", {"fetched": fetched})
            rendered = step("parse_render", {"parts": parts})
            planned = step("map_participants", {"rendered": rendered})
            shards = smallest(planned["shards"])
            if options.shards is None:
                chosen = shards
            elif options.largest:
                chosen = shards[len(shards) - options.shards :]
            else:
                chosen = shards[: options.shards]
            copies = sum(_lines(Path(s)) for s in chosen)
            at_once = min(options.at_once or len(chosen), len(chosen))
            began = time.monotonic()
            with ThreadPoolExecutor(max_workers=at_once) as pool:
                results = list(
                    pool.map(
                        lambda s: step(
                            "import_shard",
                            {"shard": s},
                            options.import_seconds,
                            label=f"import_{Path(s).stem}",
                        ),
                        chosen,
                    )
                )
            import_wall = time.monotonic() - began
            imported = _done_copies(work)
            upstream = {
                "wait_for_export": {},
                "fetch": fetched,
                "decrypt": parts,
                "parse_render": rendered,
                "map_participants": planned,
            }
            outcome = step("reconcile", {"upstream": upstream, "shards": results})
            if len(chosen) == len(shards) and None not in results and "task_failed" in outcome:
                raise SystemExit(f"reconcile failed: {outcome['task_failed']}")
    finally:
        if options.keep:
            print(f"work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return [
        *[m for m in measured if m["task"] != "import_shard"],
        *_imports(measured, len(shards), copies, imported, at_once, import_wall),
    ]


def smallest(shards: list[str]) -> list[str]:
    """The plan's shard files, smallest first (the fewest copies)."""
    return sorted(shards, key=lambda s: Path(s).stat().st_size)


def _lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


def _done_copies(work: Path) -> int:
    """Copies the imports put in mailboxes, as the (SQLite) ledger records them."""
    with closing(sqlite3.connect(work / "data" / "ledger.sqlite")) as db:
        return int(
            db.execute("SELECT count(*) FROM icechat_copies WHERE state='done'").fetchone()[0]
        )


def _imports(
    measured: list[dict[str, Any]],
    total: int,
    copies: int,
    imported: int,
    at_once: int,
    wall: float,
) -> list[Any]:
    """The import as one row: its wall time from the first shard's start to the last one's
    end, the largest peak of any shard."""
    runs = [m for m in measured if m["task"] == "import_shard"]
    if not runs:
        return []
    stopped = sum(1 for m in runs if m.get("stopped"))
    what = (
        f"{len(runs)} of {total} shards, {at_once} at a time, {copies:,} copies, "
        f"{imported:,} imported"
    )
    if stopped:
        what += f", {stopped} stopped after {max(m['seconds'] for m in runs):.0f} s"
    return [
        {
            "task": f"import_shard ({what})",
            "seconds": wall,
            "peak_mb": max(m["peak_mb"] for m in runs),
            "load": max(m["load"] for m in runs),
            "samples": max(runs, key=lambda m: m["peak_mb"])["samples"],
        }
    ]


def rows_of(results: dict[int, list[dict[str, Any]]]) -> list[Row]:
    """One row per task and size; the memory targets where the largest size is 1M."""
    sizes = sorted(results)
    out: list[Row] = []
    for n in sizes:
        base = results[sizes[0]]
        for m in results[n]:
            name = m["task"].split(" (")[0]
            first = next((b for b in base if b["task"].split(" (")[0] == name), None)
            growth = m["peak_mb"] / first["peak_mb"] if first and n != sizes[0] else None
            met = m["peak_mb"] < RSS_LIMIT_MB and (growth is None or growth <= GROWTH_LIMIT)
            note = f"x{growth:.2f} of {sizes[0]:,}" if growth is not None else ""
            out.append(
                Row(
                    bench="pipeline_day",
                    measure=f"{m['task']}, {n:,} items",
                    reading=f"{m['seconds']:.0f} s wall, {m['peak_mb']:.0f} MB peak"
                    + (f" ({note})" if note else "")
                    + f", load {m['load']:.1f}",
                    target=f"< {RSS_LIMIT_MB} MB, <= {GROWTH_LIMIT}x of 100,000",
                    met=met,
                )
            )
    return out


def _option(argv: list[str], name: str) -> str | None:
    """The value after ``name`` in ``argv``, both taken out of it; None when absent."""
    if name not in argv:
        return None
    at = argv.index(name)
    if at + 1 == len(argv):
        raise SystemExit(f"{name} needs a value, e.g. {name} 360")
    value = argv[at + 1]
    del argv[at : at + 2]
    return value


def main(argv: list[str]) -> None:
    if argv[:1] == ["--task"]:
        task_main(argv[1], argv[2])
        return
    if argv[:1] == ["--prepare"]:
        for n in argv[1:]:
            print(prepare_day(int(n)))
        return
    as_rows = "--rows" in argv
    shards = _option(argv, "--shards")
    seconds = _option(argv, "--import-seconds")
    at_once = _option(argv, "--at-once")
    options = Options(
        shards=None if shards is None else int(shards),
        import_seconds=None if seconds is None else float(seconds),
        at_once=None if at_once is None else int(at_once),
        keep="--keep" in argv,
        largest="--largest" in argv,
    )
    sizes = [int(a) for a in argv if not a.startswith("--")] or [100_000]
    results = {n: run_day(n, options) for n in sizes}
    rows = rows_of(results)
    emit_rows(rows) if as_rows else print_table(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
