"""Import throughput on the Graph emulator with Graph's limits on; prints a table.

Limits: 4 requests in flight per mailbox, 100 ms latency per request, 200 mailboxes.

The bound: Exchange admits 4 concurrent requests per mailbox and each create takes at
least the 100 ms latency, so a mailbox takes at most 4 / 0.1 s = 40 creates per second and
200 mailboxes at most 8000 copies per second. The bound is the same with ``$batch``: Graph
runs the parts of a parallel batch 4 at a time, each against the same per-mailbox limit,
and each part takes the latency (the batch's own round trip adds one more), so batched
runs stay under the bound too.

Run: ``python bench/graph_import.py [--mailboxes 200] [--per-mailbox 40]``. The emulator
runs in its own process (as Graph would), the importer in this one, with a SQLite ledger.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))

from icechat.dev.graph_payloads import DAY, archived_message  # noqa: E402
from icechat.graph.client import GraphClient  # noqa: E402
from icechat.graph.settings import GraphSettings  # noqa: E402
from icechat.importer import Copy, Importer  # noqa: E402
from icechat.ledger import Ledger  # noqa: E402

CLIENT_ID = "6b3c0f7e-0000-4000-8000-00000000be0c"
SECRET = "bench-secret-value"
LATENCY_MS = 100
PER_MAILBOX_LIMIT = 4


def start_emulator(
    work: Path, mailboxes: list[str]
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
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "icechat",
            "graph-emulator",
            "--port",
            "0",
            "--users",
            str(users),
            "--state",
            str(work / "state"),
            "--latency-ms",
            str(LATENCY_MS),
            "--max-concurrent",
            str(PER_MAILBOX_LIMIT),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


@dataclass(frozen=True)
class Measured:
    """Wall time, CPU seconds of the importer and of the emulator, outcome counts."""

    seconds: float
    client_cpu: float
    emulator_cpu: float
    counts: dict[str, int]


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def run(
    info: dict[str, Any],
    emulator: psutil.Process,
    work: Path,
    mailboxes: list[str],
    per_mailbox: int,
    batch: bool,
) -> Measured:
    settings = GraphSettings(
        client_id=CLIENT_ID,
        tenant_id=info["tenant_id"],
        client_secret=SECRET,
        authority_host=info["authority_host"],
        graph_url=info["graph_url"],
        ca_bundle=info["ca_bundle"],
    )
    mode = "batch" if batch else "single"
    workers = len(mailboxes)
    with (
        GraphClient(settings, pool_size=workers * PER_MAILBOX_LIMIT) as client,
        Ledger(f"sqlite:///{work / f'ledger-{mode}.db'}") as ledger,
    ):
        # Warm up: token, folders, connections (not timed).
        warm = [
            Copy(m, f"{mode}-warm", archived_message(f"{mode}-warm-{m}", 0), DAY) for m in mailboxes
        ]
        Importer(client, ledger, run_id="warm", workers=workers, batch=batch).run(warm)
        # Rendered beforehand: the renderer's work is not the importer's.
        copies = [
            Copy(m, f"{mode}-{n:05d}", archived_message(f"{mode}-{m}-{n:05d}", n), DAY)
            for n in range(per_mailbox)
            for m in mailboxes
        ]
        importer = Importer(client, ledger, run_id=mode, workers=workers, batch=batch)
        emulator_cpu = _cpu(emulator)
        started, cpu = time.perf_counter(), time.process_time()
        result = importer.run(copies)
        seconds = time.perf_counter() - started
        return Measured(
            seconds,
            time.process_time() - cpu,
            _cpu(emulator) - emulator_cpu,
            {str(k): v for k, v in result.counts.items()},
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mailboxes", type=int, nargs="+", default=[200, 20])
    parser.add_argument("--per-mailbox", type=int, default=40)
    parser.add_argument("--modes", default="batch,single")
    args = parser.parse_args()
    header = (
        f"{'mode':<7} {'mailboxes':>9} {'copies':>7} {'seconds':>8} {'copies/s':>9} "
        f"{'bound/s':>8} {'share':>6} {'importer CPU ms/copy':>21} {'emulator CPU ms/copy':>21}"
        "  outcomes"
    )
    lines = []
    for count in args.mailboxes:
        mailboxes = [f"user{i:03d}@contoso.example" for i in range(count)]
        bound = count * PER_MAILBOX_LIMIT / (LATENCY_MS / 1000)
        with tempfile.TemporaryDirectory() as tmp:
            proc, info = start_emulator(Path(tmp), mailboxes)
            try:
                for mode in args.modes.split(","):
                    m = run(
                        info,
                        psutil.Process(proc.pid),
                        Path(tmp),
                        mailboxes,
                        args.per_mailbox,
                        mode == "batch",
                    )
                    copies = count * args.per_mailbox
                    rate = copies / m.seconds
                    lines.append(
                        f"{mode:<7} {count:>9} {copies:>7} {m.seconds:>8.2f} {rate:>9.0f} "
                        f"{bound:>8.0f} {rate / bound:>6.0%} "
                        f"{1000 * m.client_cpu / copies:>21.2f} "
                        f"{1000 * m.emulator_cpu / copies:>21.2f}  {m.counts}"
                    )
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    print(
        f"limits: {PER_MAILBOX_LIMIT} requests in flight per mailbox, {LATENCY_MS} ms latency; "
        f"bound = mailboxes x {PER_MAILBOX_LIMIT} / {LATENCY_MS / 1000} s; "
        f"{os.cpu_count()} CPUs shared by importer and emulator"
    )
    print(header)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
