"""Import one shard of copies into their mailboxes, exactly once, with the ledger as memory.

Protocol per copy (see ARCHITECTURE.md): skip it if the ledger says done; mark it sent;
create it in Graph carrying its dedupe key; mark it done with the Graph id. A copy found
"sent" (a crash or a lost answer in between) is looked up in Graph by its dedupe key before
it is created again, and so is a create that failed in a way that may hide a success (429,
5xx, a dropped connection). Killing the process between any two steps loses nothing and
duplicates nothing.

Mailboxes run in parallel on a thread pool, a mailbox's lanes (up to 100 copies each) one
after another on one thread (:mod:`icechat.lanes`); a lane sends its copies in groups of up
to 20 whose ``$batch`` stays within Graph's 4 MB (measured in bytes of the UTF-8 JSON
sent), as one ``$batch`` or as single requests, and the client keeps at most 4 requests in
flight per mailbox and paces it to its request rate. A mailbox's lease
(:mod:`icechat.leases`) is taken by its first lane and kept while more of its lanes are
queued, so another day's import never sends to that mailbox at the same time and a busy
mailbox never waits to take it again; a lane whose mailbox is leased elsewhere waits while
the other mailboxes go ahead. An item whose JSON alone is over the limit fails with that
reason without being sent.

The day ends when its heaviest mailbox does (each mailbox has its own rate), so
:func:`import_shard` feeds the copies so that the heaviest mailboxes' lanes come first and
every mailbox's lanes keep coming at its share of the stream (:func:`by_weight`), and sizes
the pool from the shard (:func:`workers_for`).

Each copy is credited to the run attempt that created it: ``imported`` only when the
ledger's done row is this run's and this attempt's (a task retry inside the attempt finds
its own copies), else ``already_present``.

:func:`import_shard` is one import task: a planned shard's copies, their payloads read by
byte range from the day's items files (only those the shard names), counted per mailbox for
the report.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from icechat.chunks import chunks
from icechat.exceptions import GraphError
from icechat.graph.attachments import ITEM_LIMIT, fit_attachments
from icechat.graph.client import (
    BATCH_ENVELOPE,
    MAX_BATCH,
    REQUEST_LIMIT,
    GraphClient,
    GraphRequest,
    GraphResponse,
    Outcome,
    Recover,
    part_bytes,
)
from icechat.graph.mailbox import (
    create_request,
    dedupe_key,
    ensure_folder,
    find_item,
    found_id,
    lookup_request,
)
from icechat.lanes import LaneRunner
from icechat.leases import MailboxLeases
from icechat.ledger import CopyRecord, CopyState, Ledger, Mark
from icechat.mapping.plan import PlannedCopy, ShardIndex, index_shard
from icechat.progress import EVERY, Progress
from icechat.render.itemsfile import StoredPayloads, payload_windows
from icechat.settings import DEFAULT_FOLDER

log = logging.getLogger(__name__)

LANE_SIZE = 100  # copies a mailbox lane takes at a time (bounds memory per mailbox)
MAX_WORKERS = 64  # threads of one import task: mailboxes worked on at once, at most
MIN_WORKERS = 8
FAILURES_LOGGED = 20  # failed copies named in the task log
# Failed copies an import task keeps and returns with their reasons: a day where a mailbox,
# or Graph, refuses everything must not grow the task, its XCom and the report by each
# copy. The rest are counted (per mailbox too), and the ledger holds each with its reason.
FAILURES_KEPT = 1000
LEASE_RETRY = 2.0  # seconds before a lane whose mailbox is leased elsewhere tries again
WAIT_LOGGED_EVERY = 60.0  # seconds between log lines about one mailbox still being waited for
RETRY_ACTION = "see the reason; clear this import task to try the copy again"
TICK = 5.0  # real seconds between looks at the progress clock while lanes run


@dataclass(frozen=True)
class Copy:
    """One item for one mailbox: the rendered Graph message JSON and its UTC day.

    ``payload`` carries the dedupe key in ``singleValueExtendedProperties``;
    ``attachment_sources`` maps attachment names to where the raw store keeps the file
    (named in the notice when a file is too large to go with the item).
    """

    mailbox: str
    key: str
    payload: Mapping[str, Any]
    day: date
    attachment_sources: Mapping[str, str] = field(default_factory=dict)


class Status(StrEnum):
    """How a copy ended."""

    IMPORTED = "imported"
    IMPORTED_WITH_NOTICE = "imported_with_notice"
    ALREADY_PRESENT = "already_present"
    FAILED = "failed"


Credit = tuple[str | None, int | None]  # (run id, attempt) that created a copy


@dataclass(frozen=True)
class CopyOutcome:
    """What happened to one copy; ``credit`` names who created one already present."""

    mailbox: str
    key: str
    status: Status
    graph_id: str | None = None
    reason: str | None = None
    credit: Credit | None = None


@dataclass
class ImportResult:
    """Counts for a shard, the failures with reasons, and the time it took.

    ``counts`` has ``imported`` (including those with a notice), ``imported_with_notice``,
    ``already_present`` and ``failed``; the first, third and fourth add up to the copies.
    ``failures`` holds the first failed copies, :data:`FAILURES_KEPT` at most by default.
    ``by_mailbox`` counts each mailbox's outcomes by status (an item imported with a notice
    only as ``imported_with_notice``). ``outcomes`` holds every copy's outcome only when the
    importer was asked to keep them (a repair of a few copies; a day's shard does not).
    ``present_from`` counts the ``already_present`` copies by the (run id, attempt) the
    ledger credits with creating them.
    """

    counts: Counter[str] = field(default_factory=Counter)
    failures: list[CopyOutcome] = field(default_factory=list)
    seconds: float = 0.0
    by_mailbox: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    outcomes: list[CopyOutcome] = field(default_factory=list)
    present_from: Counter[Credit] = field(default_factory=Counter)

    @property
    def copies(self) -> int:
        """Copies accounted for."""
        return (
            self.counts[Status.IMPORTED]
            + self.counts[Status.ALREADY_PRESENT]
            + (self.counts[Status.FAILED])
        )


@dataclass
class _Work:
    copy: Copy
    dedupe: str
    payload: Mapping[str, Any]
    notices: tuple[str, ...]


class Importer:
    """Imports copies for many mailboxes; one instance per shard run.

    ``workers`` mailboxes are worked on at once; ``batch`` sends groups as ``$batch``.
    ``failures_kept`` bounds the failed copies the result lists (all are counted).
    ``attempt`` is the run's attempt (Airflow's clear number); ``leases`` the mailbox
    leases it works under (by default its own set in the ledger's database), and
    ``lease_retry`` how long a lane whose mailbox is leased elsewhere waits to try again.
    A progress line is logged every ``progress_every`` seconds of ``clock``.
    """

    def __init__(
        self,
        client: GraphClient,
        ledger: Ledger,
        *,
        run_id: str,
        attempt: int | None = None,
        folder_name: str = DEFAULT_FOLDER,
        workers: int = 16,
        batch: bool = True,
        keep_outcomes: bool = False,
        failures_kept: int = FAILURES_KEPT,
        leases: MailboxLeases | None = None,
        lease_retry: float = LEASE_RETRY,
        clock: Callable[[], float] = time.monotonic,
        progress_every: float = EVERY,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.run_id = run_id
        self.attempt = attempt
        self.folder_name = folder_name
        self.workers = workers
        self.batch = batch
        self.keep_outcomes = keep_outcomes
        self.failures_kept = failures_kept
        self.leases = leases or MailboxLeases(ledger, f"import {run_id} attempt {attempt}")
        self.lease_retry = lease_retry
        self._clock = clock
        self._progress_every = progress_every
        self._progress: Progress | None = None
        self._folders: dict[str, str] = {}
        self._lock = threading.Lock()
        self._result = ImportResult()
        self._singles: ThreadPoolExecutor | None = None  # while run() runs, unbatched only
        self._waits_logged: dict[str, float] = {}

    @property
    def credit(self) -> Credit:
        """The (run id, attempt) this importer credits the copies it creates to."""
        return (self.run_id, self.attempt)

    # Driving the shard

    def run(self, copies: Iterable[Copy], *, total: int | None = None) -> ImportResult:
        """Import every copy; returns the counts (every copy ends in exactly one of them).

        ``total`` (the number of copies, if known) gives progress lines a share and time left.
        """
        started = self._clock()
        self._result = ImportResult()
        throttling = self.client.throttling
        progress = self._progress = Progress(
            log,
            "import",
            "copies",
            total=total,
            clock=self._clock,
            throttled=lambda: (throttling.waits, throttling.seconds),
            every=self._progress_every,
        )
        buffers: dict[str, list[Copy]] = defaultdict(list)
        self._singles = None
        with ExitStack() as stack:
            # Closed in reverse: lanes stop, running ones finish, then the leases go.
            stack.enter_context(self.leases.renewing())
            if not self.batch:
                self._singles = stack.enter_context(
                    ThreadPoolExecutor(
                        self.workers * self.client.per_mailbox, thread_name_prefix="icechat-send"
                    )
                )
            pool = stack.enter_context(
                ThreadPoolExecutor(self.workers, thread_name_prefix="icechat-import")
            )
            lanes: LaneRunner[Copy] = LaneRunner(
                pool,
                self._lane,
                limit=self.workers * 2,
                retry=self.lease_retry,
                idle=self._let_go,
            )
            stack.callback(lanes.stop)
            for copy in copies:
                buffer = buffers[copy.mailbox]
                buffer.append(copy)
                if len(buffer) >= LANE_SIZE:
                    lanes.submit(copy.mailbox, buffers.pop(copy.mailbox))
            for mailbox, lane in buffers.items():
                lanes.submit(mailbox, lane)
            # A lane stuck behind Retry-After or a lease records nothing: look at the clock anyway.
            lanes.join(tick=progress.tick, every=TICK)
        self._singles = None
        self._result.seconds = self._clock() - started
        log.info(
            "imported %s copies in %.1fs: %s; Graph asked to wait %s time(s)",
            self._result.copies,
            self._result.seconds,
            dict(self._result.counts),
            throttling.waits,
        )
        return self._result

    def _record(self, outcome: CopyOutcome) -> None:
        with self._lock:
            self._result.counts[outcome.status] += 1
            if outcome.status is Status.IMPORTED_WITH_NOTICE:
                self._result.counts[Status.IMPORTED] += 1
            if outcome.status is Status.FAILED and len(self._result.failures) < self.failures_kept:
                self._result.failures.append(outcome)
            self._result.by_mailbox[outcome.mailbox][outcome.status] += 1
            if outcome.status is Status.ALREADY_PRESENT and outcome.credit is not None:
                self._result.present_from[outcome.credit] += 1
            if self.keep_outcomes:
                self._result.outcomes.append(outcome)
        if self._progress is not None:
            self._progress.done()

    # One mailbox lane

    def _lane(self, mailbox: str, copies: list[Copy]) -> bool:
        """Import one lane under its mailbox's lease; ``False`` when another process holds it.

        The lease stays held after the lane: the runner calls :meth:`_let_go` when the
        mailbox has no more lanes queued.
        """
        settled: dict[str, CopyOutcome] = {}
        if not self.leases.holds(mailbox) and not self.leases.acquire([mailbox]):
            self._log_wait(mailbox)
            return False
        try:
            self._import_lane(mailbox, copies, settled)
        except GraphError as exc:
            self._fail_rest(mailbox, copies, settled, str(exc))
        first: set[str] = set()
        for copy in copies:
            outcome = settled[copy.key]
            if copy.key in first:
                # Another participant's copy of the same item in the same mailbox.
                failed = outcome.status is Status.FAILED
                outcome = CopyOutcome(
                    mailbox,
                    copy.key,
                    Status.FAILED if failed else Status.ALREADY_PRESENT,
                    outcome.graph_id,
                    outcome.reason,
                    None if failed else outcome.credit or self.credit,
                )
            first.add(copy.key)
            self._record(outcome)
        return True

    def _let_go(self, mailbox: str) -> None:
        """The mailbox has no lane left here: give its lease up for other runs."""
        self.leases.release([mailbox])

    def _log_wait(self, mailbox: str) -> None:
        """Say who holds the mailbox we wait for (once a minute per mailbox)."""
        now = self._clock()
        with self._lock:
            if now - self._waits_logged.get(mailbox, -WAIT_LOGGED_EVERY) < WAIT_LOGGED_EVERY:
                return
            self._waits_logged[mailbox] = now
        lease = self.leases.holders([mailbox]).get(mailbox.casefold())
        holder = f"{lease.holder} until {lease.expires_at:%H:%M:%S} UTC" if lease else "another"
        log.info(
            "mailbox %s is being imported by %s; working on other mailboxes, trying it again "
            "every %.0fs (Graph allows 4 requests at a time per mailbox across all runs)",
            mailbox,
            holder,
            self.lease_retry,
        )

    def _fail_rest(
        self, mailbox: str, copies: Sequence[Copy], settled: dict[str, CopyOutcome], reason: str
    ) -> None:
        """Copies a lane-wide error (no mailbox, no permission) left unsettled fail with it."""
        rest = {c.key: c for c in copies if c.key not in settled}
        self.ledger.mark_failed(
            mailbox,
            [Mark(c.key, c.day, reason=reason) for c in rest.values()],
            self.run_id,
            attempt=self.attempt,
        )
        for key in rest:
            settled[key] = CopyOutcome(mailbox, key, Status.FAILED, reason=reason)

    def _import_lane(
        self,
        mailbox: str,
        copies: list[Copy],
        settled: dict[str, CopyOutcome],
    ) -> None:
        known = self.ledger.lookup(mailbox, [c.key for c in copies])
        todo: list[Copy] = []
        unique: dict[str, Copy] = {}
        for copy in copies:
            unique.setdefault(copy.key, copy)
        for copy in unique.values():
            row = known.get(copy.key)
            if row is not None and row.state is CopyState.DONE:
                settled[copy.key] = self._present(mailbox, row)
            else:
                todo.append(copy)
        work, invalid = self._prepare(todo)
        if invalid:
            self.ledger.mark_failed(
                mailbox,
                [Mark(c.key, c.day, reason=r) for c, r in invalid],
                self.run_id,
                attempt=self.attempt,
            )
            for copy, reason in invalid:
                settled[copy.key] = CopyOutcome(mailbox, copy.key, Status.FAILED, reason=reason)
        if not work:
            return
        folder = self._folder(mailbox)
        # A copy last seen sent or failed may be in Graph already: look before creating.
        uncertain = [w for w in work if w.copy.key in known]
        found = self._look_up(mailbox, folder, uncertain)
        # Each found copy stays credited to the attempt that sent it.
        by_sender: dict[Credit, list[Mark]] = defaultdict(list)
        for w in uncertain:
            if w.copy.key in found:
                row = known[w.copy.key]
                by_sender[(row.run_id, row.attempt)].append(
                    Mark(w.copy.key, w.copy.day, found[w.copy.key])
                )
        for (run_id, attempt), marks in by_sender.items():
            self.ledger.mark_done(mailbox, marks, run_id or self.run_id, attempt=attempt)
            for mark in marks:
                settled[mark.item_key] = self._present(mailbox, known[mark.item_key], mark.graph_id)
        to_create = [
            (w, create_request(mailbox, folder, w.payload)) for w in work if w.copy.key not in found
        ]
        for group in _groups(to_create):
            for outcome in self._create(mailbox, folder, group):
                settled[outcome.key] = outcome

    def _present(self, mailbox: str, row: CopyRecord, graph_id: str | None = None) -> CopyOutcome:
        """A copy the mailbox holds: imported if this run attempt sent it, else already present
        (credited to the run attempt that did)."""
        credit = (row.run_id, row.attempt)
        if credit == self.credit:
            return CopyOutcome(mailbox, row.item_key, Status.IMPORTED, graph_id or row.graph_id)
        return CopyOutcome(
            mailbox, row.item_key, Status.ALREADY_PRESENT, graph_id or row.graph_id, credit=credit
        )

    def _prepare(self, copies: Sequence[Copy]) -> tuple[list[_Work], list[tuple[Copy, str]]]:
        work: list[_Work] = []
        invalid: list[tuple[Copy, str]] = []
        for copy in copies:
            key = dedupe_key(copy.payload)
            if key is None:
                invalid.append((copy, "the rendered item carries no dedupe key property"))
                continue
            fitted = fit_attachments(copy.payload, copy.attachment_sources)
            if fitted.size > ITEM_LIMIT:
                invalid.append(
                    (
                        copy,
                        f"the item is {fitted.size} bytes of JSON without its attachments; "
                        f"Graph takes at most {REQUEST_LIMIT} bytes per request, so it cannot "
                        "be archived as one item: its text is in the day's raw export files",
                    )
                )
                continue
            work.append(_Work(copy, key, fitted.payload, fitted.notices))
        return work, invalid

    def _folder(self, mailbox: str) -> str:
        folder = self._folders.get(mailbox.casefold())
        if folder is None:
            folder = ensure_folder(self.client, mailbox, self.folder_name)
            self._folders[mailbox.casefold()] = folder
        return folder

    # Graph calls for a lane

    def _look_up(self, mailbox: str, folder: str, work: Sequence[_Work]) -> dict[str, str]:
        """Graph ids of the copies (last seen "sent") that Graph already holds."""
        found: dict[str, str] = {}
        for group in chunks(work, MAX_BATCH):
            requests_ = [lookup_request(mailbox, folder, w.dedupe) for w in group]
            outcomes = self._send_all(requests_, mailbox)
            for w, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, GraphError):
                    raise outcome
                graph_id = found_id(outcome)
                if graph_id is not None:
                    found[w.copy.key] = graph_id
        log.info("%s: %s of %s copies sent earlier were in Graph", mailbox, len(found), len(work))
        return found

    def _create(
        self, mailbox: str, folder: str, group: Sequence[tuple[_Work, GraphRequest]]
    ) -> list[CopyOutcome]:
        def recover(request: GraphRequest) -> GraphResponse | None:
            key = dedupe_key(request.body or {})
            graph_id = find_item(self.client, mailbox, folder, key) if key else None
            return None if graph_id is None else GraphResponse(201, {"id": graph_id})

        self.ledger.mark_sent(
            mailbox,
            [Mark(w.copy.key, w.copy.day) for w, _ in group],
            self.run_id,
            attempt=self.attempt,
        )
        outcomes = self._send_all([r for _, r in group], mailbox, recover)
        done: list[Mark] = []
        failed: list[Mark] = []
        results: list[CopyOutcome] = []
        for (w, _), outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, GraphError):
                failed.append(Mark(w.copy.key, w.copy.day, reason=str(outcome)))
                results.append(CopyOutcome(mailbox, w.copy.key, Status.FAILED, reason=str(outcome)))
                continue
            graph_id = str(outcome.body.get("id"))
            done.append(Mark(w.copy.key, w.copy.day, graph_id=graph_id))
            if w.notices:
                log.warning(
                    "%s: item %s imported with a notice: %s",
                    mailbox,
                    w.copy.key,
                    " ".join(w.notices),
                )
            status = Status.IMPORTED_WITH_NOTICE if w.notices else Status.IMPORTED
            results.append(CopyOutcome(mailbox, w.copy.key, status, graph_id))
        self.ledger.mark_done(mailbox, done, self.run_id, attempt=self.attempt)
        self.ledger.mark_failed(mailbox, failed, self.run_id, attempt=self.attempt)
        return results

    def _send_all(
        self, requests_: Sequence[GraphRequest], mailbox: str, recover: Recover | None = None
    ) -> list[Outcome]:
        """Up to 20 requests for one mailbox: one ``$batch``, or singles side by side."""
        if self._singles is None:
            return self.client.batch(requests_, mailbox=mailbox, recover=recover)

        def one(request: GraphRequest) -> Outcome:
            try:
                return self.client.send(request, mailbox=mailbox, recover=recover)
            except GraphError as exc:
                return exc

        # At most per_mailbox of this lane's requests take pool threads, so no thread sits
        # waiting for a mailbox slot while other mailboxes' requests queue behind it.
        lane_slots = threading.Semaphore(self.client.per_mailbox)
        futures: list[Future[Outcome]] = []
        for request in requests_:
            lane_slots.acquire()
            future = self._singles.submit(one, request)
            future.add_done_callback(lambda _f: lane_slots.release())
            futures.append(future)
        return [f.result() for f in futures]


def _groups(
    work: Sequence[tuple[_Work, GraphRequest]],
) -> Iterator[list[tuple[_Work, GraphRequest]]]:
    """Consecutive groups of at most 20 creates whose ``$batch`` fits one Graph request."""
    group: list[tuple[_Work, GraphRequest]] = []
    size = BATCH_ENVELOPE
    for item in work:
        part = part_bytes(item[1])
        if group and (len(group) == MAX_BATCH or size + part > REQUEST_LIMIT):
            yield group
            group, size = [], BATCH_ENVELOPE
        group.append(item)
        size += part
    if group:
        yield group


@dataclass(frozen=True)
class ShardSummary:
    """One import task's result, as :meth:`icechat.report.ImportCounts.add` folds it in.

    ``per_mailbox`` and ``failures`` name mailboxes by the UPN the plan gave them; ``credit``
    is the (run id, attempt) the task ran in.
    """

    result: ImportResult
    per_mailbox: dict[str, dict[str, int]]
    failures: list[dict[str, str]]
    credit: Credit = (None, None)

    def to_json(self) -> dict[str, Any]:
        """The task's XCom: counts, who ran it and who created the copies already present,
        per-mailbox counts, failure rows and seconds."""
        counts = self.result.counts
        run_id, attempt = self.credit
        return {
            "imported": counts[Status.IMPORTED],
            "already_present": counts[Status.ALREADY_PRESENT],
            "failed": counts[Status.FAILED],
            "imported_with_notice": counts[Status.IMPORTED_WITH_NOTICE],
            "run_id": run_id,
            "attempt": attempt,
            "present_from": [
                {"run_id": r, "attempt": a, "copies": n}
                for (r, a), n in sorted(
                    self.result.present_from.items(), key=lambda e: (str(e[0][0]), e[0][1] or 0)
                )
            ],
            "per_mailbox": self.per_mailbox,
            "failures": self.failures,
            "seconds": self.result.seconds,
        }


def import_shard(
    client: GraphClient,
    ledger: Ledger,
    shard: Path,
    payloads: StoredPayloads,
    day: date,
    *,
    run_id: str,
    attempt: int | None = None,
    folder_name: str = DEFAULT_FOLDER,
    failures_kept: int = FAILURES_KEPT,
) -> ShardSummary:
    """Import one planned shard, each copy's line and payload read as its turn comes.

    Only the shard's index (:func:`icechat.mapping.plan.index_shard`, 8 bytes per copy)
    stays in memory, so the task's memory does not grow with its shard; of the day's items
    only the byte ranges of the shard's payloads are read (``payloads``, wherever the data
    directory is). ``attempt`` is the run's attempt (Airflow's clear number), credited with
    what it creates. The summary lists the first ``failures_kept`` failed copies.
    """
    index = index_shard(shard)
    upn_of: dict[str, str] = {}
    importer = Importer(
        client,
        ledger,
        run_id=run_id,
        attempt=attempt,
        folder_name=folder_name,
        workers=workers_for(index.weights()),
        failures_kept=failures_kept,
    )
    with closing(_planned_copies(index, payloads, day, upn_of)) as stream:
        result = importer.run(stream, total=len(index))
    failures = [
        {
            "mailbox": upn_of.get(f.mailbox, f.mailbox),
            "key": f.key,
            "reason": f.reason or "",
            "action": RETRY_ACTION,
        }
        for f in result.failures
    ]
    for failure in failures[:FAILURES_LOGGED]:
        log.error(
            "copy %s for %s failed: %s", failure["key"], failure["mailbox"], failure["reason"]
        )
    log.info("shard %s: %s", shard.name, dict(result.counts))
    per_mailbox = {
        upn_of.get(mailbox, mailbox): {str(status): n for status, n in counts.items()}
        for mailbox, counts in result.by_mailbox.items()
    }
    return ShardSummary(result, per_mailbox, failures, importer.credit)


def workers_for(weights: Mapping[str, int]) -> int:
    """Threads for a shard: enough that the heaviest mailboxes keep one each from start to end
    while the others take turns on the rest, and no more (every thread started at once is
    CPU the heaviest mailbox's requests wait behind).

    The day lasts as long as its heaviest mailbox; the copies of all of them are ``total /
    heaviest`` times that, so four times as many threads leave the light mailboxes room to
    finish well within it. A day of equal mailboxes gets a thread per mailbox.
    """
    if not weights:
        return 1
    heaviest = max(weights.values())
    wanted = 4 * -(-sum(weights.values()) // heaviest)
    return max(1, min(len(weights), MAX_WORKERS, max(MIN_WORKERS, wanted)))


T = TypeVar("T")


def by_weight(by_mailbox: Mapping[str, Sequence[T]]) -> Iterator[tuple[str, T]]:
    """Each mailbox's entries, as (mailbox, entry), in the order that keeps the heaviest
    mailboxes busy from start to end.

    Each mailbox's entries keep their order and are spread evenly over the stream (its n-th
    of N at n/N of the way), the heavier mailbox first where two meet: the heaviest mailbox
    fills its first lane first, and every mailbox's lanes keep coming at its share, so none
    runs dry while the stream waits for lanes to finish.
    """

    def spread(mailbox: str, own: Sequence[T]) -> Iterator[tuple[float, int, str, T]]:
        return ((n / len(own), -len(own), mailbox, entry) for n, entry in enumerate(own))

    # A lazy merge, not a sort of keyed copies: a shard may hold millions (memory stays flat).
    # Two mailboxes never tie on (share, weight, name), so entries are never compared.
    merged = heapq.merge(*(spread(m, own) for m, own in by_mailbox.items()))
    return ((mailbox, entry) for _, _, mailbox, entry in merged)


def _planned_copies(
    index: ShardIndex, payloads: StoredPayloads, day: date, upn_of: dict[str, str]
) -> Generator[Copy, None, None]:
    """The shard's copies heaviest first (:func:`by_weight`), each line read from the shard
    file as its turn comes and the payloads of a window of copies read together
    (:func:`~icechat.render.itemsfile.payload_windows`); fills ``upn_of`` (user id -> UPN) on
    the way."""
    with index.path.open("rb") as shard:

        def planned() -> Iterator[PlannedCopy]:
            for _, offset in by_weight(index.offsets):
                c = index.copy_at(shard, offset)
                upn_of.setdefault(c.user_id, c.upn)
                yield c

        for window in payload_windows(planned(), lambda c: c.length):
            yield from _with_payloads(window, payloads, day)


def _with_payloads(
    window: Sequence[PlannedCopy], payloads: StoredPayloads, day: date
) -> Iterator[Copy]:
    """The copies of ``window`` with their payloads, each distinct payload read once."""
    places = list(dict.fromkeys((c.part, c.offset, c.length, c.key) for c in window))
    read = dict(zip(places, payloads.read(places), strict=True))
    for c in window:
        yield Copy(
            mailbox=c.user_id,
            key=c.key,
            payload=read[(c.part, c.offset, c.length, c.key)],
            day=day,
            attachment_sources=payloads.sources(c.part).get(c.key, {}),
        )
