"""Mailboxes into import shards balanced by work: heaviest first, each to the lightest shard.

Each mailbox is in one shard (its lease and its rate are per mailbox), and a shard's import
task takes about as long as its copies need, so the shards are balanced by copies, not by
mailbox count: the longest-processing-time-first rule (sort by weight, give each mailbox to
the shard with the least so far) is within 4/3 of the best split. A mailbox heavier than
a fair share gets a shard to itself, where it starts at once and runs to the end.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

MAX_SHARDS = 8  # import tasks of a day (the DAG runs as many Graph import tasks at once)


def balance(weights: Mapping[str, int], shards: int) -> dict[str, int]:
    """The shard number (0 to ``shards`` - 1) of each mailbox; only as many shards as mailboxes.

    Ties go by mailbox name, so the same plan always makes the same shards.
    """
    count = max(1, min(shards, len(weights)))
    loads = [(0, n) for n in range(count)]
    placed: dict[str, int] = {}
    for mailbox, weight in sorted(weights.items(), key=lambda e: (-e[1], e[0])):
        load, n = heapq.heappop(loads)
        placed[mailbox] = n
        heapq.heappush(loads, (load + weight, n))
    return placed
