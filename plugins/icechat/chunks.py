"""Consecutive slices of a sequence, ``size`` at a time (``itertools.batched`` before 3.12).

For whatever has a most-per-call: rows per SQL statement, requests per ``$batch``,
addresses per directory query.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in order, ``size`` at a time (the last slice may be shorter)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
