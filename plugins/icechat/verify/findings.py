"""What a verification can find wrong, each kind with what it means and what to do.

A finding names its subject (a file of the raw store, a mailbox, the report or the ledger)
and, for a copy, its item key, so an operator can act on exactly that thing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MAX_LISTED = 1000  # findings of one kind listed in a report (all are counted)


class Kind(StrEnum):
    """A kind of difference between the record and what is there."""

    # The originals in raw/{day}/
    NOT_ARCHIVED = "not_archived"
    RAW_MISSING = "raw_missing"
    RAW_CHANGED = "raw_changed"
    RAW_UNRECORDED = "raw_unrecorded"
    RAW_LOCK_WEAKENED = "raw_lock_weakened"
    RECORD_MISMATCH = "record_mismatch"
    UNREADABLE = "unreadable"
    # The copies in the mailboxes
    MISSING_ITEM = "missing_item"
    DELETED_ITEM = "deleted_item"
    UNKNOWN_ITEM = "unknown_item"
    DUPLICATE_ITEM = "duplicate_item"
    WRONG_TIME = "wrong_time"
    MAILBOX_ERROR = "mailbox_error"
    # Every copy accounted for
    UNACCOUNTED = "unaccounted"
    FAILED_COPY = "failed_copy"
    NO_REASON = "no_reason"
    LEDGER_EXTRA = "ledger_extra"
    COUNT_MISMATCH = "count_mismatch"


# Kind -> (what it means, what to do): for the report page, the README and the logs.
KIND_HELP: Mapping[Kind, tuple[str, str]] = {
    Kind.NOT_ARCHIVED: (
        "the day has no report or no run recorded in the ledger: it was never archived",
        "run icechat_archive for the day (trigger it with the day param, or backfill)",
    ),
    Kind.RAW_MISSING: (
        "an original the run read is no longer in raw/{day}/",
        "restore the file from backup (its SHA-256 is in the report), or ask ICE to resend it",
    ),
    Kind.RAW_CHANGED: (
        "an original's bytes no longer hash to the SHA-256 recorded when it was fetched",
        "treat as tampering or storage corruption: restore the original from backup or ICE, "
        "and investigate who could write to the raw store",
    ),
    Kind.RAW_UNRECORDED: (
        "a file in raw/{day}/ that the raw store's manifest does not record",
        "find out who put it there; the connector never writes files outside its manifest",
    ),
    Kind.RAW_LOCK_WEAKENED: (
        "an original's retention lock is weaker than the one recorded at fetch: removed, "
        "shortened, or compliance turned into governance",
        "find out who changed it (a governance lock yields to s3:BypassGovernanceRetention or "
        "an Azure policy delete); lock the original again until the recorded date",
    ),
    Kind.RECORD_MISMATCH: (
        "the report, the ledger's run row and the raw store's manifest name different files "
        "or hashes",
        "re-run icechat_archive for the day so the record is made again from the originals",
    ),
    Kind.UNREADABLE: (
        "the originals cannot be decrypted or parsed now, so the copies cannot be checked "
        "against them",
        "check the icechat_pgp connection still holds the key ICE encrypts to",
    ),
    Kind.MISSING_ITEM: (
        "the ledger says the copy was imported, but the mailbox holds no item with its dedupe "
        "key or Graph id (purged, or never there)",
        "run icechat verify --repair for the day to import exactly the missing copies again",
    ),
    Kind.DELETED_ITEM: (
        "the copy is no longer in the archive folder: it was moved or deleted to another "
        "folder (named in the detail)",
        "move it back, or run icechat verify --repair to import it again; find out who deleted it",
    ),
    Kind.UNKNOWN_ITEM: (
        "an item in the archive folder carries the connector's dedupe key for this day, but "
        "the ledger does not record it as imported into this mailbox",
        "find out who created it (the connector's app, or another one); nothing is deleted "
        "automatically",
    ),
    Kind.DUPLICATE_ITEM: (
        "the archive folder holds the same copy more than once",
        "keep the one whose Graph id the ledger records and delete the others after review",
    ),
    Kind.WRONG_TIME: (
        "the item's received time is not the chat time of the original",
        "re-import it: delete the item, then run icechat verify --repair",
    ),
    Kind.MAILBOX_ERROR: (
        "the mailbox could not be read (no mailbox, no permission, Graph unavailable)",
        "fix the cause named in the detail and verify the day again",
    ),
    Kind.UNACCOUNTED: (
        "a copy is neither done, nor not mapped, nor failed (the import stopped half way), "
        "or an item of the originals has no copy at all in the ledger",
        "re-run icechat_archive for the day (clear its import and reconcile tasks)",
    ),
    Kind.FAILED_COPY: (
        "the import of this copy failed and it is not in the mailbox",
        "fix the cause named in the detail, then re-run the day's import",
    ),
    Kind.NO_REASON: (
        "a copy recorded as not mapped or failed has no reason",
        "re-run icechat_archive for the day so the reason is recorded",
    ),
    Kind.LEDGER_EXTRA: (
        "the ledger records a copy of an item the originals of the day do not hold",
        "compare the day's files with ICE; the ledger may describe files no longer in raw/",
    ),
    Kind.COUNT_MISMATCH: (
        "the counts of the report, the ledger and the originals disagree",
        "re-run icechat_archive for the day; if the counts still differ, report it as a bug",
    ),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One difference: its kind, what it is about, the copy's item key if any, the detail."""

    kind: Kind
    subject: str
    detail: str
    key: str = ""

    @property
    def action(self) -> str:
        """What to do about it."""
        return KIND_HELP[self.kind][1]

    def to_json(self) -> dict[str, str]:
        return {
            "kind": self.kind.value,
            "subject": self.subject,
            "key": self.key,
            "detail": self.detail,
            "action": self.action,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Finding:
        return cls(Kind(data["kind"]), data["subject"], data["detail"], data.get("key", ""))


def by_kind(findings: Iterable[Finding]) -> dict[str, int]:
    """How many findings of each kind, in the order of :class:`Kind`."""
    counts = Counter(f.kind for f in findings)
    return {kind.value: counts[kind] for kind in Kind if counts[kind]}


def listed(findings: Iterable[Finding]) -> list[Finding]:
    """The findings a report lists: every kind, at most MAX_LISTED of each."""
    shown: Counter[Kind] = Counter()
    out: list[Finding] = []
    for finding in findings:
        shown[finding.kind] += 1
        if shown[finding.kind] <= MAX_LISTED:
            out.append(finding)
    return out
