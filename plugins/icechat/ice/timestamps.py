"""Times as text: the three forms of the export, read; ISO 8601 UTC with ``Z``, written.

The export gives epoch milliseconds, epoch seconds or ISO 8601 with an offset. Everything
icechat writes (Graph's SystemTime values, ``icechat inspect``, the sample export) is
:func:`iso_z`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_timestamp(text: str) -> datetime:
    """An aware UTC datetime from ``1795684502123``, ``1795684502`` or ISO 8601 with offset.

    Raises ``ValueError`` (with the offending text) for anything else, including an ISO
    time without an offset: its zone would be a guess, and a compliance record must not be.
    """
    value = text.strip()
    if value.isdigit() and value.isascii():
        number = int(value)
        if len(value) >= 12:
            return EPOCH + timedelta(milliseconds=number)
        return EPOCH + timedelta(seconds=number)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a timestamp (epoch ms, epoch s, or ISO 8601 with offset)"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset; ICE times must say Z or +hh:mm")
    return parsed.astimezone(UTC)


def iso_z(moment: datetime, *, milliseconds: bool | None = None) -> str:
    """``2026-11-26T09:15:02.123Z``: ISO 8601 UTC with ``Z``, milliseconds truncated.

    ``milliseconds``: ``True`` always writes them, ``False`` never (whole seconds, as Graph
    returns a message's received time), ``None`` when the time has any (a whole second is
    ``...T09:15:02Z``).
    """
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    fraction = utc.microsecond if milliseconds is None else milliseconds
    return utc.isoformat(timespec="milliseconds" if fraction else "seconds")[:-6] + "Z"
