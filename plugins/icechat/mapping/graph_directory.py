"""The tenant's directory through Microsoft Graph: user, alias, account state, mailbox.

An address is a valid Microsoft 365 user when a user has it as userPrincipalName, mail or
one of its proxyAddresses, the account is enabled, and Exchange Online answers for its
mailbox. Look-ups go in ``$batch`` calls: several addresses per ``$filter`` query, twenty
queries per batch, then one mailbox probe per user found. A probe is a request to that
mailbox, which counts against its 4 concurrent requests: given the mailbox leases, it is
sent only under the mailbox's lease, after any other day's import there (see
:mod:`icechat.leases`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from icechat.chunks import chunks
from icechat.exceptions import GraphError, MailboxNotFoundError
from icechat.graph.client import MAX_BATCH, GraphClient, GraphRequest, GraphResponse
from icechat.graph.properties import ROOT_FOLDER
from icechat.leases import MailboxLeases
from icechat.mapping.directory import DirectoryEntry, Verdict

log = logging.getLogger(__name__)

# Graph allows at most 15 clauses in a directory $filter; each address takes three.
ADDRESSES_PER_QUERY = 5
USER_FIELDS = "id,userPrincipalName,mail,proxyAddresses,accountEnabled"
DIRECTORY_LANE = "(directory)"  # the client's per-mailbox gate key for directory calls
LEASE_RETRY = 2.0  # seconds before probing mailboxes another process was importing into


def _quoted(address: str) -> str:
    return address.replace("'", "''")


def _query(addresses: Sequence[str]) -> GraphRequest:
    clauses = []
    for address in addresses:
        a = _quoted(address)
        clauses += [
            f"userPrincipalName eq '{a}'",
            f"mail eq '{a}'",
            f"proxyAddresses/any(p:p eq 'smtp:{a}')",
        ]
    return GraphRequest.get("/users", {"$filter": " or ".join(clauses), "$select": USER_FIELDS})


def _addresses_of(user: Mapping[str, Any]) -> set[str]:
    found = {str(user.get("userPrincipalName") or "").lower(), str(user.get("mail") or "").lower()}
    for proxy in user.get("proxyAddresses") or ():
        kind, _, value = str(proxy).partition(":")
        if kind.lower() == "smtp":
            found.add(value.lower())
    found.discard("")
    return found


class GraphDirectory:
    """A :class:`icechat.mapping.directory.Directory` answered by Graph, cached per run.

    With ``leases``, each mailbox probe waits for its mailbox's lease (tried again every
    ``lease_retry`` seconds).
    """

    def __init__(
        self,
        client: GraphClient,
        leases: MailboxLeases | None = None,
        *,
        lease_retry: float = LEASE_RETRY,
    ) -> None:
        self._client = client
        self._leases = leases
        self._lease_retry = lease_retry

    def lookup(self, addresses: Iterable[str]) -> dict[str, DirectoryEntry]:
        wanted = sorted({a.lower() for a in addresses})
        users = self._find_users(wanted)
        mailboxes = self._has_mailbox(sorted({u["id"] for u in users.values()}))
        answers = {}
        for address in wanted:
            user = users.get(address)
            if user is None:
                answers[address] = DirectoryEntry(address, Verdict.NOT_IN_TENANT)
                continue
            upn = str(user.get("userPrincipalName") or address).lower()
            if user.get("accountEnabled") is False:
                verdict = Verdict.DISABLED
            elif not mailboxes[user["id"]]:
                verdict = Verdict.NO_MAILBOX
            else:
                verdict = Verdict.VALID
            answers[address] = DirectoryEntry(address, verdict, str(user["id"]), upn)
        log.info(
            "directory: %d addresses looked up, %d valid users",
            len(wanted),
            sum(1 for e in answers.values() if e.verdict is Verdict.VALID),
        )
        return answers

    def _batches(self, requests: list[GraphRequest]) -> Iterator[tuple[GraphRequest, Any]]:
        for group in chunks(requests, MAX_BATCH):
            yield from zip(group, self._client.batch(group, mailbox=DIRECTORY_LANE), strict=True)

    def _find_users(self, addresses: list[str]) -> dict[str, Mapping[str, Any]]:
        """Address -> user, for every address some user owns."""
        queries = [_query(chunk) for chunk in chunks(addresses, ADDRESSES_PER_QUERY)]
        owners: dict[str, Mapping[str, Any]] = {}
        wanted = set(addresses)
        for _, outcome in self._batches(queries):
            if isinstance(outcome, GraphError):
                raise outcome
            for user in outcome.body.get("value", ()):
                for address in _addresses_of(user) & wanted:
                    owners[address] = user
        return owners

    def _has_mailbox(self, user_ids: list[str]) -> dict[str, bool]:
        """Whether each user has a mailbox: probed under the mailboxes' leases when given."""
        if self._leases is None:
            return self._probe(user_ids)
        result: dict[str, bool] = {}
        pending = user_ids
        with self._leases.renewing():
            while True:
                busy: list[str] = []
                for group in chunks(pending, MAX_BATCH):
                    held = self._leases.acquire(group)
                    busy += [uid for uid in group if uid not in held]
                    try:
                        result.update(self._probe([uid for uid in group if uid in held]))
                    finally:
                        self._leases.release(held)
                if not busy:
                    return result
                lease = self._leases.holders(busy[:1]).get(busy[0].casefold())
                log.info(
                    "directory: %d mailbox(es) in use by another run (%s held by %s); probing "
                    "them again in %.0fs",
                    len(busy),
                    busy[0],
                    lease.holder if lease else "another",
                    self._lease_retry,
                )
                time.sleep(self._lease_retry)
                pending = busy

    def _probe(self, user_ids: list[str]) -> dict[str, bool]:
        probes = [
            GraphRequest.get(f"/users/{uid}/mailFolders/{ROOT_FOLDER}", {"$select": "id"})
            for uid in user_ids
        ]
        result = {}
        for uid, (_, outcome) in zip(user_ids, self._batches(probes), strict=True):
            if isinstance(outcome, MailboxNotFoundError):
                result[uid] = False
            elif isinstance(outcome, GraphResponse):
                result[uid] = True
            else:
                raise outcome
        return result
