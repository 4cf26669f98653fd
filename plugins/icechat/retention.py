"""How long the originals in ``raw/`` are kept unalterable: ``icechat_raw_retention``.

``7y`` or ``2555d``, optionally followed by the mode: ``compliance`` (the default: nobody,
not even the bucket's root account, can shorten it or delete the object before its date,
which is what SEC 17a-4(f) asks of a non-rewriteable, non-erasable record) or
``governance`` (users with ``s3:BypassGovernanceRetention`` can). Each original is locked
until its own write time plus the period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from icechat.exceptions import SettingsError
from icechat.store import COMPLIANCE, GOVERNANCE, Lock

_FORM = re.compile(r"(\d{1,5})\s*([yd])(?:\s+(compliance|governance))?", re.IGNORECASE)
MAX_YEARS = 100


@dataclass(frozen=True, slots=True)
class Retention:
    """A retention period and its S3 Object Lock mode."""

    mode: str
    years: int = 0
    days: int = 0

    def until(self, now: datetime) -> datetime:
        """The retain-until date of an original written at ``now`` (whole seconds)."""
        now = now.replace(microsecond=0)
        if self.years:
            try:
                return now.replace(year=now.year + self.years)
            except ValueError:  # 29 February into a year without one
                return now.replace(year=now.year + self.years, day=28)
        return now + timedelta(days=self.days)

    def lock(self, now: datetime) -> Lock:
        """The lock an original written at ``now`` gets."""
        return Lock(self.mode, self.until(now))

    def describe(self) -> str:
        """As the variable says it: ``7y compliance``."""
        period = f"{self.years}y" if self.years else f"{self.days}d"
        return f"{period} {self.mode.lower()}"


def parse_retention(value: str | None, name: str) -> Retention | None:
    """The variable ``name``'s value as a :class:`Retention`; ``None`` when unset."""
    if value is None or not value.strip():
        return None
    match = _FORM.fullmatch(value.strip())
    if match is None or int(match[1]) == 0:
        raise SettingsError(
            f"variable {name} is {value!r}; give a period in years or days, optionally with "
            "the lock mode: 7y, 2555d, 7y governance (compliance is the default), or delete "
            "the variable to keep originals without a lock"
        )
    count, unit = int(match[1]), match[2].lower()
    mode = GOVERNANCE if (match[3] or "").lower() == "governance" else COMPLIANCE
    if (unit == "y" and count > MAX_YEARS) or (unit == "d" and count > MAX_YEARS * 366):
        raise SettingsError(f"variable {name} is {value!r}; at most {MAX_YEARS} years")
    return Retention(mode, years=count if unit == "y" else 0, days=count if unit == "d" else 0)
