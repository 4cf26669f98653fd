"""A small Microsoft Graph client on ``requests``: timeouts, retries, typed errors, ``$batch``.

Every call has a timeout. Connection errors, 429, 500, 502, 503 and 504 are retried within
the policy's time budget, obeying ``Retry-After`` for the whole mailbox (every thread waits,
not just the one that was told). At most ``per_mailbox`` requests are in flight per mailbox,
as Exchange allows, and each mailbox is paced to its request rate (:class:`RequestWindow`)
so the client waits its turn instead of bursting into 429s. A POST is retried only through
``recover``: before re-sending, the caller gets to look up whether the first attempt took
effect (Graph can answer 429 to a request it carried out).

Every request, and every part of a ``$batch``, carries ``Prefer: IdType="ImmutableId"``:
the header applies only to the request it is on, and a batch part is a request of its own.

Batch shape. Graph runs a batch only if it is fully parallel, fully sequential, or every
part depends on the first; it dispatches up to 4 parts of a parallel batch at once, each
counting against the mailbox's 4 concurrent requests, while a sequential batch holds one.
A parallel batch is the fastest within that limit: its parts run 4 at a time in one
round trip, and a failed part does not hold back the others (in a sequential batch every
part after a failure comes back 424 and must be sent again). So a batch is parallel and
holds 4 of its mailbox's slots (fewer if it has fewer parts) for its whole round trip; only
when ``per_mailbox`` is below 4 is it sequential, holding one slot.

Pacing. Outlook admits 10,000 requests per 10 minutes per application and mailbox, each
``$batch`` part counted on its own (https://learn.microsoft.com/graph/throttling-limits
#outlook-service-limits). Microsoft does not say how the window is measured, so the client
keeps the strictest reading: in any ``window`` seconds at most ``requests`` turns reach a
mailbox. It counts a request from when it is sent until ``window`` seconds after its answer
came back (the server counted it somewhere in between), so no stretch of ``window`` seconds
on the server's clock can see more. The token goes on a request only once it may be sent,
so a long wait for the pace or a ``Retry-After`` never sends an expired token.

The 4 MB limit is on the bytes sent: bodies go out as UTF-8 JSON (:func:`encoded`), and a
batch is measured the same way (:func:`batch_bytes`) before it is sent.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import requests

from icechat.exceptions import (
    GraphError,
    GraphPermissionError,
    GraphRequestError,
    GraphUnavailableError,
    MailboxNotFoundError,
)
from icechat.graph.auth import access_token
from icechat.graph.retry import RetryPolicy, parse_retry_after
from icechat.graph.settings import MAILBOX_REQUESTS, MAILBOX_WINDOW, GraphSettings
from icechat.graph.tls import VerifyingSession

log = logging.getLogger(__name__)

MAX_BATCH = 20
PER_MAILBOX = 4
BATCH_PARALLELISM = 4  # parts of a parallel $batch Graph runs at once against a mailbox
REQUEST_LIMIT = 4 * 1024 * 1024  # largest request body Graph accepts (bytes)
IMMUTABLE_IDS = 'IdType="ImmutableId"'
TIMEOUT = (10.0, 120.0)  # connect, read (seconds)
NOT_EXECUTED = 424  # a $batch sub-request skipped because the one it depended on failed
# A 404 with one of these on a user's mail means no mailbox; Graph answers an account
# without one with MailboxNotEnabledForRESTAPI or with ResourceNotFound ("Resource could not
# be discovered.", microsoft-graph-docs-contrib#7160, microsoft-graph-docs#10481).
MAILBOX_MISSING_CODES = frozenset(
    {
        "MailboxNotEnabledForRESTAPI",
        "MailboxNotSupportedForRESTAPI",
        "ResourceNotFound",
        "ErrorInvalidUser",
    }
)
USER_MISSING_CODES = frozenset({"Request_ResourceNotFound", "ErrorInvalidUser"})


def encoded(body: Mapping[str, Any]) -> bytes:
    """A JSON body as the client sends it: UTF-8, non-ASCII text as is (what Graph counts)."""
    return json.dumps(body, ensure_ascii=False).encode()


def user_path(mailbox: str) -> str:
    """``/users/{id}`` for a UPN or object id, safely quoted."""
    return f"/users/{quote(mailbox, safe='@')}"


@dataclass(frozen=True)
class GraphRequest:
    """One Graph call: method, path under the version root (with query), JSON body."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None

    @classmethod
    def get(cls, path: str, params: Mapping[str, str]) -> GraphRequest:
        """A GET with OData query options (encoded here so batch and direct calls agree)."""
        return cls("GET", f"{path}?{urlencode(params, quote_via=quote, safe='$@')}")


@dataclass(frozen=True)
class GraphResponse:
    """A Graph answer (whole or a ``$batch`` part): status, JSON body, lower-cased headers."""

    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether Graph carried the request out."""
        return self.status < 400

    @property
    def request_id(self) -> str | None:
        """Graph's ``request-id``, which Microsoft support asks for."""
        return self.headers.get("request-id")

    @property
    def error_code(self) -> str | None:
        """The ``error.code`` Graph gave, if any."""
        error = self.body.get("error")
        return str(error.get("code")) if isinstance(error, Mapping) else None

    @property
    def error_message(self) -> str:
        """The ``error.message`` Graph gave, if any."""
        error = self.body.get("error")
        return str(error.get("message", "")) if isinstance(error, Mapping) else ""

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked us to wait, if it did."""
        return parse_retry_after(self.headers.get("retry-after"))


# What to do before re-sending a request whose outcome is unknown: the response it would
# have had if it took effect (so it is not sent again), or None to send it again.
Recover = Callable[[GraphRequest], GraphResponse | None]
Outcome = GraphResponse | GraphError


def error_for(
    response: GraphResponse, request: GraphRequest, mailbox: str, scope: str = ""
) -> GraphError:
    """The typed error for a Graph failure status: the one place statuses map to types.

    ``scope`` is what the token was asked for, named when Graph does not accept the token.
    """
    status, code = response.status, response.error_code
    where = f"{request.method} {request.path.split('?')[0]}"
    kind: type[GraphError]
    if status == 401:
        kind, message = (
            GraphPermissionError,
            f"Graph did not accept the app's token on {where} "
            f"({response.error_message or 'no message'}): the token was asked for scope "
            f"{scope or 'unknown'}; it must be the .default scope of the Graph that graph_url "
            "reaches: correct or clear the extra scope of the Graph connection (if it is "
            "right, check that the app's application permissions have admin consent)",
        )
    elif status == 403:
        kind, message = (
            GraphPermissionError,
            f"Graph refused the app on {where}: grant it Mail.ReadWrite (application) with "
            "admin consent, and check any application access policy covers this mailbox",
        )
    elif status == 404 and (
        code in MAILBOX_MISSING_CODES
        or (code in USER_MISSING_CODES and request.path.count("/") <= 2)
    ):
        kind, message = (
            MailboxNotFoundError,
            f"no Exchange Online mailbox for {mailbox}: check the user mapping and that the "
            "user is licensed for Exchange Online",
        )
    elif status in (429, 500, 502, 503, 504):
        kind, message = (
            GraphUnavailableError,
            f"Graph kept refusing {where} ({response.error_message or 'throttled'}); "
            "the retry budget ran out: re-run the task later",
        )
    else:
        kind, message = (
            GraphRequestError,
            f"Graph rejected {where}: {response.error_message or 'no message'}",
        )
    return kind(message, status=status, code=code, request_id=response.request_id, mailbox=mailbox)


class RequestWindow:
    """A mailbox's request budget: at most ``requests`` turns in any ``seconds``.

    Not thread-safe on its own: :class:`MailboxGate` calls it under its lock. A turn counts
    from :meth:`reserve` (sent) until ``seconds`` after :meth:`answered`; one entry per
    request (a ``$batch`` is one entry of as many turns as parts) keeps it small.
    """

    def __init__(self, requests: int, seconds: float) -> None:
        self.requests = requests
        self.seconds = seconds
        self._answered: deque[tuple[float, int]] = deque()
        self._counted = 0  # turns answered within the last ``seconds``
        self._in_flight = 0

    def _expire(self, now: float) -> None:
        while self._answered and self._answered[0][0] <= now - self.seconds:
            self._counted -= self._answered.popleft()[1]

    def reserve(self, turns: int, now: float) -> float | None:
        """Take ``turns`` now and answer 0, or say how long until they may be taken.

        ``None``: only answers to requests still in flight can free enough turns.
        """
        turns = min(turns, self.requests)
        self._expire(now)
        free = self.requests - self._counted - self._in_flight
        if turns <= free:
            self._in_flight += turns
            return 0.0
        need = turns - free
        for when, n in self._answered:
            need -= n
            if need <= 0:
                return when + self.seconds - now
        return None

    def answered(self, turns: int, now: float) -> None:
        """Turns taken by :meth:`reserve` got their answer at ``now``."""
        turns = min(turns, self.requests)
        self._in_flight -= turns
        self._answered.append((now, turns))
        self._counted += turns


class MailboxGate:
    """One mailbox's limits on our side: requests in flight, the request rate, ``Retry-After``.

    A request first takes ``cost`` of the ``limit`` slots, then waits while a ``Retry-After``
    runs or the :class:`RequestWindow` has no turns for it; only then does it go.
    """

    def __init__(
        self,
        limit: int,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        window: RequestWindow | None = None,
    ) -> None:
        self.limit = limit
        self.window = window or RequestWindow(MAILBOX_REQUESTS, MAILBOX_WINDOW)
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()
        self._in_flight = 0
        self._not_before = 0.0

    @contextmanager
    def slot(self, cost: int = 1, turns: int = 1) -> Iterator[None]:
        """Hold ``cost`` slots and ``turns`` of the rate for one request, once it may go."""
        cost = min(cost, self.limit)
        with self._cond:
            while self._in_flight + cost > self.limit:
                self._cond.wait()
            self._in_flight += cost
        try:
            self._await_turns(turns)
            try:
                yield
            finally:
                with self._cond:
                    self.window.answered(turns, self._clock())
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._in_flight -= cost
                self._cond.notify_all()

    def _await_turns(self, turns: int) -> None:
        """Wait out any ``Retry-After``, then until the window has ``turns`` free; take them."""
        while True:
            with self._cond:
                now = self._clock()
                wait: float | None = self._not_before - now
                if wait is not None and wait <= 0:
                    wait = self.window.reserve(turns, now)
                    if wait is not None and wait <= 0:
                        return
                if wait is None:
                    self._cond.wait()  # an answer in flight will free turns
                    continue
            self._sleep(wait)

    def wait_left(self) -> float:
        """Seconds until the mailbox may be called again (``Retry-After``)."""
        with self._cond:
            return self._not_before - self._clock()

    def hold(self, seconds: float) -> None:
        """Make every request for the mailbox wait ``seconds`` from now (``Retry-After``)."""
        with self._cond:
            self._not_before = max(self._not_before, self._clock() + seconds)


class Throttling:
    """How often a mailbox was held for Graph's ``Retry-After``, and for how long in all.

    Read by the import's progress line, so a slow import says it is being throttled.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.waits = 0
        self.seconds = 0.0

    def add(self, seconds: float) -> None:
        """Count one hold of ``seconds``."""
        with self._lock:
            self.waits += 1
            self.seconds += seconds


@dataclass
class _Pending:
    index: int
    request: GraphRequest
    uncertain: bool = False  # may have taken effect: look it up before sending again


class GraphClient:
    """Calls Graph for one app; share one client between the threads of a process."""

    def __init__(
        self,
        settings: GraphSettings,
        *,
        policy: RetryPolicy | None = None,
        per_mailbox: int = PER_MAILBOX,
        timeout: tuple[float, float] = TIMEOUT,
        pool_size: int = 64,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.policy = policy or RetryPolicy()
        self.per_mailbox = per_mailbox
        self._timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self._base = settings.graph_url.rstrip("/")
        self._session = VerifyingSession(settings.ca_bundle or True, timeout, pool_size)
        self._gates: dict[str, MailboxGate] = {}
        self._gates_lock = threading.Lock()
        self.throttling = Throttling()

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def gate(self, mailbox: str) -> MailboxGate:
        """The in-flight cap and ``Retry-After`` hold shared by every call to ``mailbox``."""
        key = mailbox.casefold()
        with self._gates_lock:
            gate = self._gates.get(key)
            if gate is None:
                window = RequestWindow(
                    self.settings.mailbox_requests, self.settings.mailbox_window_seconds
                )
                gate = self._gates[key] = MailboxGate(
                    self.per_mailbox, self._clock, self._sleep, window
                )
        return gate

    # Public calls

    def send(
        self, request: GraphRequest, *, mailbox: str, recover: Recover | None = None
    ) -> GraphResponse:
        """One request, retried as the policy allows; a permanent failure is raised."""
        (outcome,) = self._run([request], mailbox, recover, batched=False)
        if isinstance(outcome, GraphError):
            raise outcome
        return outcome

    def get(self, path: str, *, mailbox: str, params: Mapping[str, str]) -> Mapping[str, Any]:
        """The JSON body of a GET with OData query options."""
        return self.send(GraphRequest.get(path, params), mailbox=mailbox).body

    def batch(
        self, requests_: Sequence[GraphRequest], *, mailbox: str, recover: Recover | None = None
    ) -> list[Outcome]:
        """Up to 20 requests for one mailbox in one ``$batch``; an outcome per request.

        Transient failures of single parts are retried (again in a batch); permanent ones
        come back as GraphError values so the caller can record them per item.
        """
        if not 0 < len(requests_) <= MAX_BATCH:
            raise ValueError(f"a $batch holds 1 to {MAX_BATCH} requests, not {len(requests_)}")
        return self._run(list(requests_), mailbox, recover, batched=True)

    # The retry loop

    def _run(
        self,
        requests_: list[GraphRequest],
        mailbox: str,
        recover: Recover | None,
        *,
        batched: bool,
    ) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(requests_)
        pending = [_Pending(i, r) for i, r in enumerate(requests_)]
        started = self._clock()
        attempt = 0
        while pending:
            if recover is not None:
                pending = self._recover(pending, recover, outcomes)
                if not pending:
                    break
            transmitted = (
                self._transmit_batch([p.request for p in pending], mailbox)
                if batched
                else [self._transmit(pending[0].request, mailbox)]
            )
            retry: list[_Pending] = []
            skipped_only = True
            waits: list[float] = []
            for item, answer in zip(pending, transmitted, strict=True):
                if isinstance(answer, GraphResponse) and (
                    answer.ok or not self._transient(answer.status)
                ):
                    outcomes[item.index] = (
                        answer
                        if answer.ok
                        else error_for(answer, item.request, mailbox, self.settings.token_scope)
                    )
                    continue
                retry.append(
                    _Pending(
                        item.index, item.request, item.uncertain or _may_have_run(item, answer)
                    )
                )
                skipped_only = skipped_only and _skipped(answer)
                if isinstance(answer, GraphResponse) and answer.retry_after is not None:
                    waits.append(answer.retry_after)
            if not retry:
                break
            if skipped_only:
                # Only parts a failed batch neighbour kept from running: send them again now.
                pending = retry
                continue
            attempt += 1
            delay = self.policy.delay(attempt, max(waits) if waits else None, self._jitter())
            if not self.policy.allows(self._clock() - started, delay):
                for item, answer in zip(pending, transmitted, strict=True):
                    if outcomes[item.index] is None:
                        outcomes[item.index] = self._exhausted(answer, item.request, mailbox)
                break
            if waits:
                self.gate(mailbox).hold(delay)
                self.throttling.add(delay)
            else:
                self._sleep(delay)
            pending = retry
        return [o for o in outcomes if o is not None]

    def _transient(self, status: int) -> bool:
        return self.policy.is_transient(status) or status == NOT_EXECUTED

    def _recover(
        self, pending: list[_Pending], recover: Recover, outcomes: list[Outcome | None]
    ) -> list[_Pending]:
        still: list[_Pending] = []
        for item in pending:
            found = recover(item.request) if item.uncertain else None
            if found is None:
                still.append(item)
            else:
                outcomes[item.index] = found
        return still

    def _exhausted(
        self, answer: GraphResponse | Exception, request: GraphRequest, mailbox: str
    ) -> GraphError:
        if isinstance(answer, GraphResponse):
            return error_for(answer, request, mailbox, self.settings.token_scope)
        return GraphUnavailableError(
            f"Graph unreachable for {request.method} {request.path.split('?')[0]} "
            f"({type(answer).__name__}); the retry budget ran out: re-run the task later",
            mailbox=mailbox,
        )

    # One HTTP exchange

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {access_token(self.settings)}",
            "Prefer": IMMUTABLE_IDS,
            "client-request-id": str(uuid.uuid4()),
            "Accept": "application/json",
        }

    def _http(
        self,
        method: str,
        path: str,
        data: bytes | None,
        mailbox: str,
        cost: int,
        *,
        turns: int = 1,
        batch: bool = False,
    ) -> GraphResponse | requests.RequestException:
        gate = self.gate(mailbox)
        with gate.slot(cost, turns):
            # The token is taken now that the request may go, not before its wait.
            headers = self._headers()
            if data is not None:
                headers["Content-Type"] = "application/json"
            try:
                raw = self._session.request(
                    method, self._base + path, data=data, headers=headers, timeout=self._timeout
                )
            except requests.RequestException as exc:
                log.info("Graph %s %s for %s failed: %s", method, path, mailbox, type(exc).__name__)
                return exc
            response = GraphResponse(
                raw.status_code,
                _json(raw.content),
                {k.lower(): v for k, v in raw.headers.items()},
            )
            wait = _longest_wait(response, batch)
            if wait is not None:
                # Hold the other threads at once, before they send into the wait.
                gate.hold(wait)
        if response.ok:
            log.debug("Graph %s %s -> %s", method, path, response.status)
        else:
            log.info(
                "Graph %s %s for %s -> %s %s (request-id %s, retry-after %s)",
                method,
                path.split("?")[0],
                mailbox,
                response.status,
                response.error_code,
                response.request_id,
                response.headers.get("retry-after"),
            )
        return response

    def _transmit(
        self, request: GraphRequest, mailbox: str
    ) -> GraphResponse | requests.RequestException:
        data = None if request.body is None else encoded(request.body)
        return self._http(request.method, request.path, data, mailbox, cost=1)

    def _transmit_batch(
        self, requests_: list[GraphRequest], mailbox: str
    ) -> list[GraphResponse | requests.RequestException]:
        parallel = self.per_mailbox >= BATCH_PARALLELISM or len(requests_) <= self.per_mailbox
        data = encoded(_batch_body(requests_, sequential=not parallel))
        if len(data) > REQUEST_LIMIT:
            raise ValueError(
                f"a $batch of {len(requests_)} requests for {mailbox} is {len(data)} bytes; "
                f"Graph accepts {REQUEST_LIMIT}: size groups with batch_bytes()"
            )
        cost = min(len(requests_), BATCH_PARALLELISM) if parallel else 1
        answer = self._http(
            "POST", "/$batch", data, mailbox, cost, turns=len(requests_), batch=True
        )
        if isinstance(answer, Exception) or not answer.ok:
            return [answer] * len(requests_)
        by_id: dict[str, GraphResponse] = {}
        for item in answer.body.get("responses", []):
            headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
            body = item.get("body")
            by_id[str(item.get("id"))] = GraphResponse(
                int(item.get("status", 500)),
                body if isinstance(body, Mapping) else {},
                headers,
            )
        missing = GraphResponse(503, {"error": {"code": "MissingBatchResponse"}}, {})
        return [by_id.get(str(n), missing) for n in range(len(requests_))]


def _part(n: int, request: GraphRequest, *, sequential: bool) -> dict[str, Any]:
    """One ``$batch`` part; it carries its own headers (the POST's do not reach it)."""
    headers = {"Prefer": IMMUTABLE_IDS}
    part: dict[str, Any] = {"id": str(n), "method": request.method, "url": request.path}
    if sequential and n:
        part["dependsOn"] = [str(n - 1)]
    if request.body is not None:
        part["body"] = request.body
        headers["Content-Type"] = "application/json"
    part["headers"] = headers
    return part


def _batch_body(requests_: Sequence[GraphRequest], *, sequential: bool) -> dict[str, Any]:
    return {"requests": [_part(n, r, sequential=sequential) for n, r in enumerate(requests_)]}


BATCH_ENVELOPE = len(encoded({"requests": []}))


def part_bytes(request: GraphRequest) -> int:
    """At most how many bytes ``request`` adds to a ``$batch`` body (separator included)."""
    return len(encoded(_part(MAX_BATCH - 1, request, sequential=True))) + len(", ")


def batch_bytes(requests_: Sequence[GraphRequest]) -> int:
    """At most how many bytes the ``$batch`` of ``requests_`` is (Graph's 4 MB counts these)."""
    return BATCH_ENVELOPE + sum(part_bytes(r) for r in requests_)


def _longest_wait(response: GraphResponse, batch: bool) -> float | None:
    """The longest ``Retry-After`` an answer carries, on itself or (a batch) on its parts."""
    waits = [response.retry_after]
    if batch:
        for item in response.body.get("responses") or ():
            headers = item.get("headers") if isinstance(item, Mapping) else None
            if isinstance(headers, Mapping):
                lowered = {str(k).lower(): str(v) for k, v in headers.items()}
                waits.append(parse_retry_after(lowered.get("retry-after")))
    found = [w for w in waits if w is not None]
    return max(found) if found else None


def _skipped(answer: GraphResponse | Exception) -> bool:
    """Whether a batch part was not run because the part it depended on failed."""
    return isinstance(answer, GraphResponse) and answer.status == NOT_EXECUTED


def _may_have_run(item: _Pending, answer: GraphResponse | Exception) -> bool:
    """Whether a failed non-GET could still have taken effect (all but a skipped batch part)."""
    return item.request.method != "GET" and not _skipped(answer)


def _json(content: bytes) -> Mapping[str, Any]:
    if not content:
        return {}
    try:
        value = json.loads(content)
    except ValueError:
        return {}
    return value if isinstance(value, Mapping) else {}
