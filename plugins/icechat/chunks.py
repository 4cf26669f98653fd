"""Consecutive slices of a sequence or stream, ``size`` at a time (``itertools.batched``
before 3.12).

For whatever has a most-per-call: rows per SQL statement or per transaction, requests per
``$batch``, addresses per directory query.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in order, ``size`` at a time (the last slice may be shorter)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in order, ``size`` at a time, never holding more than one batch (for
    streams too long to hold at once)."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch
