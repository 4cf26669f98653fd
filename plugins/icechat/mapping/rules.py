"""The spec's mapping rule, per participant, with the reason kept for every copy not imported.

Custom mapping file's ImId first; if that gives no valid Microsoft 365 user and automatic
mapping is on, the participant's SenderEmail / RecipientEmail; otherwise not imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from icechat.mapping.csvfile import MappingTable
from icechat.mapping.directory import Directory, DirectoryEntry, Verdict
from icechat.render.addresses import is_address


class Reason(StrEnum):
    """Why a copy goes where it goes (``mapped_*``) or nowhere (the rest)."""

    MAPPED_CUSTOM = "mapped_custom"
    MAPPED_AUTO = "mapped_auto"
    NOT_IN_TENANT = "not_in_tenant"
    DISABLED = "disabled"
    NO_MAILBOX = "no_mailbox"
    NO_ADDRESS = "no_address"
    AUTO_MAPPING_OFF = "auto_mapping_off"


_FROM_VERDICT = {
    Verdict.NOT_IN_TENANT: Reason.NOT_IN_TENANT,
    Verdict.DISABLED: Reason.DISABLED,
    Verdict.NO_MAILBOX: Reason.NO_MAILBOX,
}

# What a reason means and what to do, for the report and the README.
REASON_HELP: Mapping[str, str] = {
    Reason.NOT_IN_TENANT: "address is not a user of this tenant (usually an external "
    "participant: expected); map the ImId in the mapping file if it is one of yours",
    Reason.DISABLED: "the user's account is disabled; map the ImId to an active mailbox",
    Reason.NO_MAILBOX: "the user has no Exchange Online mailbox; license one or map the ImId "
    "to another mailbox",
    Reason.NO_ADDRESS: "the export gives no email for this participant and the mapping file "
    "has no row for the ImId; add one if the participant is yours",
    Reason.AUTO_MAPPING_OFF: "ImId not in the mapping file and automatic mapping is off; add "
    "a row or set icechat_auto_mapping=true",
}


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where one participant's copy goes: a mailbox (user id + UPN) or a reason it does not."""

    reason: Reason
    user_id: str | None = None
    upn: str | None = None
    address: str | None = None


class Resolver:
    """Applies the rule with directory verdicts fetched in advance (see :meth:`prefetch`)."""

    def __init__(
        self, table: MappingTable | None, directory: Directory, *, auto_mapping: bool = True
    ) -> None:
        self._table = table
        self._directory = directory
        self._auto = auto_mapping
        self._verdicts: dict[str, DirectoryEntry] = {}
        self._cache: dict[tuple[str, str | None], Resolution] = {}

    def addresses_for(self, im_id: str, email: str | None) -> list[str]:
        """Every address the rule may need to look up for this participant."""
        wanted = []
        custom = self._table.mailbox_for(im_id) if self._table else None
        if custom:
            wanted.append(custom)
        if self._auto and email and is_address(email.strip()):
            wanted.append(email.strip().lower())
        return wanted

    def prefetch(self, addresses: Iterable[str]) -> None:
        """Look up, in as few directory calls as possible, every address not yet known."""
        todo = sorted({a.lower() for a in addresses} - self._verdicts.keys())
        if todo:
            self._verdicts.update(self._directory.lookup(todo))

    def resolve(self, im_id: str, email: str | None) -> Resolution:
        key = (im_id, email)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._resolve(im_id, email)
        return hit

    def _entry(self, address: str) -> DirectoryEntry:
        address = address.lower()
        if address not in self._verdicts:
            self.prefetch([address])
        return self._verdicts[address]

    def _resolve(self, im_id: str, email: str | None) -> Resolution:
        failure: Resolution | None = None
        custom = self._table.mailbox_for(im_id) if self._table else None
        if custom:
            entry = self._entry(custom)
            if entry.verdict is Verdict.VALID:
                return Resolution(Reason.MAPPED_CUSTOM, entry.user_id, entry.upn, custom)
            failure = Resolution(_FROM_VERDICT[entry.verdict], address=custom)
        if not self._auto:
            return failure or Resolution(Reason.AUTO_MAPPING_OFF)
        address = (email or "").strip().lower()
        if not is_address(address):
            return failure or Resolution(Reason.NO_ADDRESS)
        entry = self._entry(address)
        if entry.verdict is Verdict.VALID:
            return Resolution(Reason.MAPPED_AUTO, entry.user_id, entry.upn, address)
        # A failed custom row is the more actionable reason: it names a mailbox of ours.
        return failure or Resolution(_FROM_VERDICT[entry.verdict], address=address)
