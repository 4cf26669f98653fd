"""A day archived in-process with the DAG's own stages, against the Graph emulator.

What ``icechat_archive`` does for a day, without Airflow: the parts are stored in the raw
store as fetch stores them, rendered, mapped (the directory is the emulator's), the plan
recorded in the ledger (not-mapped copies, routes, MessageIDs), imported, reported and
recorded as a run; then the plaintext is removed.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from icechat.dev.sample import write_day
from icechat.graph.client import GraphClient
from icechat.ice.parser import read_part
from icechat.ice.rawstore import RawStore, raw_day_dir
from icechat.importer import Copy, Importer
from icechat.ledger import FileRecord, Ledger
from icechat.mapping.graph_directory import GraphDirectory
from icechat.mapping.plan import plan_day, read_shard, record_plan
from icechat.mapping.rules import Resolver
from icechat.render.day import render_day
from icechat.render.itemsfile import StoredPayloads
from icechat.report import ImportCounts, build_report, reports_dir, write_report
from icechat.store import LocalStore
from tests.support.graph_import_helpers import emulator_settings

DAY = date(2026, 11, 26)
FIRM = "ACME01"
RUN = "manual__2026-11-27T00:00:00+00:00"


@dataclass
class ArchivedDay:
    """Where the day's state is, who has a mailbox (UPN -> user id), and its report."""

    day: date
    data_dir: Path
    ledger_url: str
    mailboxes: dict[str, str]
    report: dict[str, Any]

    def ledger(self) -> Ledger:
        return Ledger(self.ledger_url)


def store_raw(data_dir: Path, day: date, parts: list[Path]) -> list[FileRecord]:
    """Put the parts into ``raw/{day}/`` as the fetch does (read-only, in the manifest)."""
    store = RawStore(raw_day_dir(data_dir, day))
    records = []
    for path in parts:
        data = path.read_bytes()
        with store.receive(path.name) as (out, digest):
            out.write(data)
            digest.update(data)
        stored = store.commit(path.name, len(data), digest.hexdigest(), 0)
        records.append(FileRecord(stored.name, stored.size, stored.sha256))
    return records


def busiest(parts: list[Path], firm: str, n: int) -> list[str]:
    """The ``n`` insiders (emails at the firm's sample domain) in the most chat items."""
    seen: Counter[str] = Counter()
    for path in parts:
        with read_part(path) as part:
            for item in part.items():
                seen.update(
                    {
                        p.email
                        for p in item.participants
                        if p.email and p.email.endswith(f"@{firm.lower()}.example")
                    }
                )
    return [email for email, _ in seen.most_common(n)]


def archive(
    emulator: Any,
    tmp_path: Path,
    *,
    parts: list[Path],
    day: date = DAY,
    firm: str = FIRM,
    mailboxes: int = 3,
    delivered: list[Path] | None = None,
) -> ArchivedDay:
    """Archive ``parts`` (plain XML) for ``day``; the ``mailboxes`` busiest insiders get one.

    ``delivered`` are the files as ICE sent them (e.g. encrypted), stored in the raw store
    in place of ``parts``, in the same order.
    """
    people = busiest(parts, firm, mailboxes)
    emulator.add_users([{"userPrincipalName": e} for e in people])
    data = tmp_path / "data"
    files = store_raw(data, day, delivered or parts)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    work = tmp_path / "archive-work"
    rendered = render_day(
        [{"name": f.name, "xml": str(p), "raw": f.name} for f, p in zip(files, parts, strict=True)],
        work / "items",
    )
    with GraphClient(emulator_settings(emulator)) as client, Ledger(url) as ledger:
        resolver = Resolver(None, GraphDirectory(client))
        part_dirs = [Path(p) for p in rendered["part_dirs"]]
        plan = plan_day(part_dirs, resolver, work / "plan")
        record_plan(ledger, day, work / "plan", part_dirs, RUN)
        planned = [c for shard in plan.shards for c in read_shard(Path(shard))]
        stored = StoredPayloads(LocalStore(work), "items")
        payloads = stored.read([(c.part, c.offset, c.length, c.key) for c in planned])
        copies = [Copy(c.user_id, c.key, p, day) for c, p in zip(planned, payloads, strict=True)]
        result = Importer(client, ledger, run_id=RUN).run(copies)
        imports = ImportCounts()
        imports.add({k: result.counts[k] for k in ("imported", "already_present", "failed")})
        report = build_report(
            day=day.isoformat(),
            firm=firm,
            files=[{"name": f.name, "size": f.size, "sha256": f.sha256} for f in files],
            render=rendered,
            plan=plan.to_json(),
            imports=imports,
            item_mode="message",
        )
        write_report(report, reports_dir(data))
        ledger.start_run(RUN, day, files)
        ledger.finish_run(RUN, {"copies": report["copies"]}, {})
        ids = {c.upn: c.user_id for c in planned}
    shutil.rmtree(work)
    assert report["balanced"] and report["failed"] == 0 and report["imported"] > 0
    return ArchivedDay(day, data, url, ids, report)


def sample_parts(tmp_path: Path, messages: int = 30, day: date = DAY) -> list[Path]:
    """A sample day of two plain XML parts, as ICE would deliver it unencrypted."""
    written = write_day(tmp_path / "site", FIRM, day, messages, parts=2)
    return [p.path for p in written.parts]
