"""Import of a skewed day against Graph's per-mailbox limits, scaled to this machine.

What bounds a day's import in production is Outlook's limit per application and mailbox:
4 requests in flight and 10,000 requests per 10 minutes, each ``$batch`` part counted
(https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits). A mailbox
cannot take its copies faster than its request rate, so the day takes at least as long as
its heaviest mailbox:

    bound = max over mailboxes of (requests that mailbox needs / its request rate)
            + the time to parse and plan (0 here: the items are made beforehand)

A sliding window lets a mailbox's first ``N`` requests go as fast as 4 in flight allow, so
a client can come in a little under that bound; the bench also prints the window floor,
``(ceil(requests / N) - 1)`` whole windows, which no client can beat.

The bench keeps that shape and scales it to fit two shared cores: the emulator (in its own
process, as Graph is) admits 4 requests in flight and ``--window-requests`` per
``--window-seconds`` per mailbox (a sliding window, 429 with ``Retry-After`` beyond), and
answers after 100-300 ms. The day is shaped like a trading floor: copies spread over the
mailboxes by Zipf's law (the mailbox of rank k gets ``heaviest / k ** zipf``), so a few
mailboxes hold most copies. One import task (``icechat.importer.import_shard``, the DAG's
import path: items file, shard, SQLite ledger, leases) imports them all.

It prints achieved / bound, the 429s Graph (the emulator) answered, the ``Retry-After``
violations, CPU per copy of the importer and of the emulator (psutil ``cpu_times`` of each
process), and whether the run was CPU-bound (the two processes' CPU over the wall time,
against the cores). The machine is shared: the load average is printed with the figures.

Run: ``python bench/graph_import.py [--mailboxes 300] [--heaviest 2000] [--zipf 1.0]
[--window-requests 600] [--window-seconds 60] [--rows]``; ``--quick`` is a small day for a
smoke run; ``--rows`` prints the readings as JSON rows for ``bench/run.py`` (``make bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))

from rows import Row, emit_rows  # noqa: E402

from icechat.dev.graph_payloads import DAY, archived_message  # noqa: E402
from icechat.graph.client import GraphClient  # noqa: E402
from icechat.graph.settings import GraphSettings  # noqa: E402
from icechat.importer import import_shard  # noqa: E402
from icechat.ledger import Ledger  # noqa: E402
from icechat.mapping.plan import PlannedCopy  # noqa: E402
from icechat.render.itemsfile import ItemsWriter, StoredPayloads, read_index  # noqa: E402
from icechat.store import LocalStore  # noqa: E402

CLIENT_ID = "6b3c0f7e-0000-4000-8000-00000000be0c"
SECRET = "bench-secret-value"
PER_MAILBOX_LIMIT = 4
FOLDER_REQUESTS = 2  # per mailbox: look the folder up, create it


def zipf_day(mailboxes: int, heaviest: int, zipf: float) -> dict[str, int]:
    """Copies per mailbox: rank k gets ``heaviest / k ** zipf`` (at least one)."""
    return {
        f"trader{k:03d}@contoso.example": max(1, round(heaviest / k**zipf))
        for k in range(1, mailboxes + 1)
    }


def write_day(work: Path, day: dict[str, int]) -> tuple[Path, Path]:
    """The day's items file and its one shard (every copy planned for its mailbox)."""
    items = work / "items"
    lines: list[str] = []
    with ItemsWriter(items / "001") as writer:
        for mailbox, count in day.items():
            for n in range(count):
                key = f"{mailbox.split('@')[0]}-{n:05d}"
                writer.add(key, [(key, mailbox)], json.dumps(archived_message(key, n)))
    for entry in read_index(items / "001"):
        ((_, mailbox),) = entry.participants
        copy = PlannedCopy(mailbox, mailbox, entry.key, "001", entry.offset, entry.length)
        lines.append(copy.to_line())
    shard = work / "shard-000.jsonl"
    shard.write_text("".join(lines), encoding="utf-8")
    return items, shard


def start_emulator(
    work: Path, mailboxes: list[str], args: argparse.Namespace
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    users = work / "users.json"
    users.write_text(
        json.dumps(
            {
                "users": [{"userPrincipalName": m} for m in mailboxes],
                "apps": [
                    {"client_id": CLIENT_ID, "secret": SECRET, "permissions": ["Mail.ReadWrite"]}
                ],
            }
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    flags = {
        "--latency-ms": args.latency_min_ms,
        "--latency-max-ms": args.latency_max_ms,
        "--max-concurrent": PER_MAILBOX_LIMIT,
        "--window-requests": args.window_requests,
        "--window-seconds": args.window_seconds,
    }
    command = [sys.executable, "-m", "icechat", "graph-emulator", "--port", "0"]
    command += ["--users", str(users), "--state", str(work / "state")]
    for flag, value in flags.items():
        command += [flag, str(value)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def admin(info: dict[str, Any], what: str) -> Any:
    """An answer of the emulator's own API (``/_emulator/{what}``)."""
    with requests.Session() as session:
        session.trust_env = False
        answer = session.get(f"{info['admin']}/{what}", verify=info["ca_bundle"], timeout=60)
        answer.raise_for_status()
        return answer.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mailboxes", type=int, default=300)
    parser.add_argument("--heaviest", type=int, default=2000)
    parser.add_argument("--zipf", type=float, default=1.0)
    parser.add_argument("--window-requests", type=int, default=600)
    parser.add_argument("--window-seconds", type=float, default=60.0)
    parser.add_argument("--latency-min-ms", type=int, default=100)
    parser.add_argument("--latency-max-ms", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="a small day (smoke run)")
    parser.add_argument("--dump", type=Path, help="write the emulator's request log here")
    parser.add_argument("--rows", action="store_true", help="JSON rows for bench/run.py")
    args = parser.parse_args()
    out = sys.stderr if args.rows else sys.stdout
    if args.quick:
        args.mailboxes, args.heaviest, args.window_requests, args.window_seconds = 40, 200, 40, 4
    day = zipf_day(args.mailboxes, args.heaviest, args.zipf)
    copies = sum(day.values())
    rate = args.window_requests / args.window_seconds
    heaviest = max(day, key=lambda m: day[m])
    bound = (day[heaviest] + FOLDER_REQUESTS) / rate
    # The least any client could take: a sliding window lets its first N requests go at once,
    # so R requests need (ceil(R / N) - 1) whole windows before the last ones may go.
    floor = (
        -(-(day[heaviest] + FOLDER_REQUESTS) // args.window_requests) - 1
    ) * args.window_seconds
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        items, shard = write_day(work, day)
        proc, info = start_emulator(work, list(day), args)
        try:
            settings = GraphSettings(
                client_id=CLIENT_ID,
                tenant_id=info["tenant_id"],
                client_secret=SECRET,
                authority_host=info["authority_host"],
                graph_url=info["graph_url"],
                ca_bundle=info["ca_bundle"],
                mailbox_requests=args.window_requests,
                mailbox_window_seconds=args.window_seconds,
            )
            emulator = psutil.Process(proc.pid)
            importer = psutil.Process()
            load_before = os.getloadavg()[0]
            emulator_cpu, importer_cpu = _cpu(emulator), _cpu(importer)
            started, wall_start = time.perf_counter(), time.time()
            with GraphClient(settings) as client, Ledger(f"sqlite:///{work / 'l.db'}") as ledger:
                payloads = StoredPayloads(LocalStore(items.parent), items.name)
                summary = import_shard(client, ledger, shard, payloads, DAY, run_id="bench")
            seconds = time.perf_counter() - started
            importer_cpu = _cpu(importer) - importer_cpu
            emulator_cpu = _cpu(emulator) - emulator_cpu
            load_after = os.getloadavg()[0]
            records = admin(info, "requests")["requests"]
            violations = admin(info, "violations")["violations"]
            peaks = [c.get("peak", 0) for c in admin(info, "state")["concurrency"]]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    if args.dump:
        args.dump.write_text(json.dumps({"started": wall_start, "records": records}))
    mailbox_requests = [r for r in records if r.get("mailbox")]
    statuses = Counter(r["status"] for r in mailbox_requests)
    throttled = statuses.get(429, 0)
    busy = (importer_cpu + emulator_cpu) / seconds
    cores = psutil.cpu_count() or 1
    counts = summary.result.counts
    print(
        f"day: {copies} copies over {len(day)} mailboxes (Zipf {args.zipf}), heaviest "
        f"{day[heaviest]}; limits per mailbox: {PER_MAILBOX_LIMIT} in flight, "
        f"{args.window_requests} requests per {args.window_seconds:g} s ({rate:g}/s), "
        f"latency {args.latency_min_ms}-{args.latency_max_ms} ms; {cores} CPUs, load "
        f"{load_before:.1f} before, {load_after:.1f} after",
        file=out,
    )
    print(
        f"{'seconds':>8} {'bound s':>8} {'achieved/bound':>14} {'requests':>8} {'429s':>5} "
        f"{'429 %':>6} {'RA violations':>13} {'importer CPU ms/copy':>20} "
        f"{'emulator CPU ms/copy':>20} {'CPU busy':>8}  outcomes"
    )
    print(
        f"{seconds:>8.1f} {bound:>8.1f} {bound / seconds:>14.0%} {len(mailbox_requests):>8} "
        f"{throttled:>5} {throttled / max(1, len(mailbox_requests)):>6.2%} "
        f"{len(violations):>13} {1000 * importer_cpu / copies:>20.2f} "
        f"{1000 * emulator_cpu / copies:>20.2f} {busy:>4.2f}/{cores}  {dict(counts)}",
        file=out,
    )
    print(
        f"window floor (first window at once): {floor:.0f} s; achieved / floor "
        f"{floor / seconds:.0%}",
        file=out,
    )
    print(
        f"CPU-bound: {'yes' if busy > 0.8 * cores else 'no'} (importer + emulator used "
        f"{busy:.2f} of {cores} cores); peak in flight per mailbox: "
        f"{max(peaks, default=0)}",
        file=out,
    )
    print(
        f"| import, skewed day ({copies:,} copies, {len(day)} mailboxes, heaviest "
        f"{day[heaviest]:,}; {rate:g} req/s and 4 in flight per mailbox, 100-300 ms) | "
        f"{seconds:.0f} s vs bound {bound:.0f} s = {bound / seconds:.0%} (window floor "
        f"{floor:.0f} s: {floor / seconds:.0%}) | 429s {throttled} of "
        f"{len(mailbox_requests)} ({throttled / max(1, len(mailbox_requests)):.2%}), "
        f"Retry-After violations {len(violations)} | CPU/copy importer "
        f"{1000 * importer_cpu / copies:.2f} ms, emulator {1000 * emulator_cpu / copies:.2f} ms;"
        f" {'CPU-bound' if busy > 0.8 * cores else 'not CPU-bound'} ({busy:.2f} of {cores} "
        f"cores; load {load_before:.1f}) |",
        file=out,
    )
    if args.rows:
        share = throttled / max(1, len(mailbox_requests))
        emit_rows(
            [
                Row(
                    "graph_import",
                    f"import of a skewed day ({copies:,} copies, {len(day)} mailboxes, heaviest "
                    f"{day[heaviest]:,}) against the bound of the scaled per-mailbox limits",
                    f"{seconds:.0f} s vs bound {bound:.0f} s = {bound / seconds:.0%} (window "
                    f"floor {floor / seconds:.0%}); CPU/copy importer "
                    f"{1000 * importer_cpu / copies:.2f} ms, emulator "
                    f"{1000 * emulator_cpu / copies:.2f} ms; "
                    f"{'CPU-bound' if busy > 0.8 * cores else 'not CPU-bound'} (load "
                    f"{load_before:.1f})",
                    ">= 85% of the bound",
                    bound / seconds >= 0.85,
                ),
                Row(
                    "graph_import",
                    "429s received; Retry-After violations",
                    f"{throttled} of {len(mailbox_requests)} ({share:.2%}); {len(violations)}",
                    "< 1%; 0",
                    share < 0.01 and not violations,
                ),
            ]
        )


if __name__ == "__main__":
    main()
