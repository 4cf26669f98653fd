"""Are the copies the ledger calls done in their mailboxes, once each, at the chat time?

Per mailbox, read-only: the archive folder's items received on the day are listed in pages
(``$filter`` on ``receivedDateTime``, ``$select`` of id and time, the dedupe key expanded,
``@odata.nextLink`` followed whole, as Graph asks). A done copy not in that window is looked
up by its dedupe key in the folder (found: its received time is wrong), then by the Graph
id the ledger holds (found: it was moved or deleted to another folder). Look-ups go in
``$batch`` requests of up to 20 parts, none depending on another: Graph runs such a batch's
parts 4 at a time, within Exchange's four requests in flight per mailbox.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from icechat.chunks import chunks
from icechat.exceptions import GraphError
from icechat.graph.client import MAX_BATCH, GraphClient, GraphRequest, user_path
from icechat.graph.mailbox import dedupe_key, find_folder, lookup_request
from icechat.graph.properties import DEDUPE_KEY
from icechat.ledger import CopyRecord, CopyState
from icechat.verify.expected import second
from icechat.verify.findings import Finding, Kind

log = logging.getLogger(__name__)

PAGE = 500  # items per listed page: Graph allows 1 to 1000; ids and times only


@dataclass(frozen=True, slots=True)
class Item:
    """An item found in a mailbox: its Graph id, dedupe key and received time."""

    id: str
    key: str
    received: str


@dataclass(frozen=True)
class MailboxResult:
    """One mailbox checked: its done copies, how many were found, what differs."""

    mailbox: str  # as the ledger names it (the user's object id)
    upn: str
    copies: int
    found: int
    findings: tuple[Finding, ...] = field(default=())
    transient: bool = False  # Graph was unavailable: checking again later may succeed

    @property
    def complete(self) -> bool:
        """Whether the mailbox could be read to the end (worth keeping in a checkpoint)."""
        return not any(f.kind is Kind.MAILBOX_ERROR for f in self.findings)

    def summary(self) -> dict[str, Any]:
        return {
            "mailbox": self.mailbox,
            "upn": self.upn,
            "copies": self.copies,
            "found": self.found,
            "differences": len(self.findings),
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.summary(), "findings": [f.to_json() for f in self.findings]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MailboxResult:
        return cls(
            data["mailbox"],
            data["upn"],
            data["copies"],
            data["found"],
            tuple(Finding.from_json(f) for f in data["findings"]),
        )


class MailboxChecker:
    """Checks mailboxes of one day against the ledger rows and the originals' chat times."""

    def __init__(
        self,
        client: GraphClient,
        *,
        folder_name: str,
        day: date,
        chat_times: Mapping[str, str],
        page: int = PAGE,
    ) -> None:
        self.client = client
        self.folder_name = folder_name
        self.day = day
        self.chat_times = chat_times
        self.page = page

    def check(self, mailbox: str, rows: Sequence[CopyRecord]) -> MailboxResult:
        """Check one mailbox; a Graph failure is a ``mailbox_error`` finding, not an exception."""
        done = {r.item_key: r for r in rows if r.state is CopyState.DONE}
        upn = mailbox
        try:
            upn = self._upn(mailbox)
            return self._check(mailbox, upn, done, {r.item_key: r for r in rows})
        except GraphError as exc:
            log.warning("mailbox %s could not be verified: %s", upn, exc)
            return MailboxResult(
                mailbox,
                upn,
                len(done),
                0,
                (Finding(Kind.MAILBOX_ERROR, upn, str(exc)),),
                transient=exc.transient,
            )

    def _check(
        self,
        mailbox: str,
        upn: str,
        done: Mapping[str, CopyRecord],
        known: Mapping[str, CopyRecord],
    ) -> MailboxResult:
        folder = find_folder(self.client, mailbox, self.folder_name)
        if folder is None:
            missing = tuple(
                Finding(
                    Kind.MISSING_ITEM,
                    upn,
                    f"the mailbox has no folder {self.folder_name!r} (Graph id on record: "
                    f"{row.graph_id})",
                    key,
                )
                for key, row in done.items()
            )
            return MailboxResult(mailbox, upn, len(done), 0, missing)
        found: dict[str, list[Item]] = defaultdict(list)
        for item in self._window(mailbox, folder):
            found[item.key].append(item)
        leftover = [key for key in done if key not in found]
        found.update(self._by_key(mailbox, folder, leftover))
        lost = [key for key in leftover if key not in found]
        elsewhere = self._elsewhere(mailbox, {key: done[key].graph_id for key in lost})
        findings: list[Finding] = []
        for key, items in found.items():
            findings.extend(self._judge(upn, key, items, done.get(key), known.get(key)))
        for key in lost:
            where = elsewhere.get(key)
            if where is None:
                findings.append(
                    Finding(
                        Kind.MISSING_ITEM,
                        upn,
                        f"no item with this dedupe key in {self.folder_name!r}, and Graph id "
                        f"{done[key].graph_id} is not in the mailbox",
                        key,
                    )
                )
            else:
                findings.append(
                    Finding(
                        Kind.DELETED_ITEM,
                        upn,
                        f"not in {self.folder_name!r}: Graph id {done[key].graph_id} is now in "
                        f"folder {where!r}",
                        key,
                    )
                )
        found_done = sum(1 for key in done if key in found)
        log.info(
            "%s: %d of %d done copies in %r, %d differences",
            upn,
            found_done,
            len(done),
            self.folder_name,
            len(findings),
        )
        return MailboxResult(mailbox, upn, len(done), found_done, tuple(findings))

    def _judge(
        self,
        upn: str,
        key: str,
        items: Sequence[Item],
        done: CopyRecord | None,
        known: CopyRecord | None,
    ) -> list[Finding]:
        ids = ", ".join(i.id for i in items)
        if done is None:
            record = (
                f"the ledger records it as {known.state} ({known.reason or 'no reason'})"
                if known is not None
                else "the ledger has no row for it"
            )
            return [Finding(Kind.UNKNOWN_ITEM, upn, f"Graph id(s) {ids}; {record}", key)]
        out = []
        if len(items) > 1:
            out.append(
                Finding(
                    Kind.DUPLICATE_ITEM,
                    upn,
                    f"{len(items)} items: {ids}; the ledger records {done.graph_id}",
                    key,
                )
            )
        chat_time = self.chat_times.get(key)
        for item in items:
            if chat_time and item.received != chat_time:
                out.append(
                    Finding(
                        Kind.WRONG_TIME,
                        upn,
                        f"Graph id {item.id} received {item.received}; chat time {chat_time}",
                        key,
                    )
                )
        return out

    # Graph reads

    def _upn(self, mailbox: str) -> str:
        body = self.client.get(
            user_path(mailbox), mailbox=mailbox, params={"$select": "id,userPrincipalName"}
        )
        return str(body.get("userPrincipalName") or mailbox)

    def _window(self, mailbox: str, folder: str) -> list[Item]:
        """The folder's items received on the day that carry a dedupe key, every page."""
        start = f"{self.day.isoformat()}T00:00:00Z"
        end = f"{(self.day + timedelta(days=1)).isoformat()}T00:00:00Z"
        request = GraphRequest.get(
            f"{user_path(mailbox)}/mailFolders/{folder}/messages",
            {
                "$filter": f"receivedDateTime ge {start} and receivedDateTime lt {end}",
                "$select": "id,receivedDateTime",
                "$expand": f"singleValueExtendedProperties($filter=id eq '{DEDUPE_KEY}')",
                "$top": str(self.page),
            },
        )
        items: list[Item] = []
        while True:
            body = self.client.send(request, mailbox=mailbox).body
            items.extend(_items(body))
            link = body.get("@odata.nextLink")
            if not link:
                return items
            request = GraphRequest("GET", self._relative(str(link), mailbox))

    def _relative(self, link: str, mailbox: str) -> str:
        base = self.client.settings.graph_url.rstrip("/")
        if not link.startswith(base + "/"):
            raise GraphError(
                f"Graph's next page link does not start with graph_url {base}: check the "
                "graph_url extra of the icechat_graph connection",
                mailbox=mailbox,
            )
        return link[len(base) :]

    def _batched(self, mailbox: str, requests_: Sequence[GraphRequest]) -> list[Any]:
        """Outcomes of GETs, in parallel ``$batch`` requests of up to 20."""
        outcomes: list[Any] = []
        for group in chunks(requests_, MAX_BATCH):
            outcomes.extend(self.client.batch(group, mailbox=mailbox))
        return outcomes

    def _by_key(self, mailbox: str, folder: str, keys: Sequence[str]) -> dict[str, list[Item]]:
        """Items of the folder with these dedupe keys, whatever their received time."""
        requests_ = [lookup_request(mailbox, folder, k, select="id,receivedDateTime") for k in keys]
        found: dict[str, list[Item]] = {}
        for key, outcome in zip(keys, self._batched(mailbox, requests_), strict=True):
            if isinstance(outcome, GraphError):
                raise outcome
            items = [Item(str(m["id"]), key, _received(m)) for m in outcome.body.get("value", [])]
            if items:
                found[key] = items
        return found

    def _elsewhere(self, mailbox: str, graph_ids: Mapping[str, str | None]) -> dict[str, str]:
        """Key -> name of the folder its Graph id is in now, for those the mailbox still has."""
        asked = [(k, g) for k, g in graph_ids.items() if g]
        requests_ = [
            GraphRequest.get(
                f"{user_path(mailbox)}/messages/{quote(graph_id, safe='')}",
                {"$select": "id,parentFolderId"},
            )
            for _, graph_id in asked
        ]
        folders: dict[str, str] = {}
        where: dict[str, str] = {}
        for (key, _), outcome in zip(asked, self._batched(mailbox, requests_), strict=True):
            if isinstance(outcome, GraphError):
                if outcome.status == 404:
                    continue
                raise outcome
            parent = str(outcome.body.get("parentFolderId"))
            if parent not in folders:
                folders[parent] = self._folder_name(mailbox, parent)
            where[key] = folders[parent]
        return where

    def _folder_name(self, mailbox: str, folder_id: str) -> str:
        body = self.client.get(
            f"{user_path(mailbox)}/mailFolders/{quote(folder_id, safe='')}",
            mailbox=mailbox,
            params={"$select": "id,displayName"},
        )
        return str(body.get("displayName") or folder_id)


def _received(message: Mapping[str, Any]) -> str:
    value = message.get("receivedDateTime")
    return second(str(value)) if value else ""


def _items(body: Mapping[str, Any]) -> list[Item]:
    items = []
    for message in body.get("value", []):
        key = dedupe_key(message)
        if key is not None:
            items.append(Item(str(message["id"]), key, _received(message)))
    return items
