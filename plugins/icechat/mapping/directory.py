"""What the tenant's directory says about an address: the verdicts the mapping rules use."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Verdict(StrEnum):
    """Whether an address is a valid Microsoft 365 user, and if not, why."""

    VALID = "valid"
    NOT_IN_TENANT = "not_in_tenant"
    DISABLED = "disabled"
    NO_MAILBOX = "no_mailbox"


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """One look-up's answer; ``user_id`` and ``upn`` are set when the user exists."""

    address: str
    verdict: Verdict
    user_id: str | None = None
    upn: str | None = None


class Directory(Protocol):
    """Answers for many addresses at once (one look-up per distinct address, batched)."""

    def lookup(self, addresses: Iterable[str]) -> Mapping[str, DirectoryEntry]:
        """Verdicts keyed by the lower-cased address, for every address asked."""
