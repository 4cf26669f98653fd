"""Import shards balanced by work: each mailbox in one shard, the heaviest first."""

from __future__ import annotations

from collections import Counter

from icechat.mapping.shards import balance


def test_shards_are_balanced_by_copies_not_by_mailbox_count() -> None:
    weights = {"heavy": 900, "b": 300, "c": 300, "d": 300, **{f"x{n}": 10 for n in range(30)}}
    placed = balance(weights, 3)
    assert set(placed) == set(weights)
    loads = Counter[int]()
    for mailbox, shard in placed.items():
        loads[shard] += weights[mailbox]
    assert sorted(loads.values()) == [600, 600, 900]
    # Heavier than a fair share (700): a shard to itself.
    assert [m for m, s in placed.items() if s == placed["heavy"]] == ["heavy"]


def test_no_more_shards_than_mailboxes_and_the_same_split_every_time() -> None:
    weights = {"a": 5, "b": 5}
    assert sorted(set(balance(weights, 8).values())) == [0, 1]
    assert balance(weights, 8) == balance(dict(reversed(weights.items())), 8)
    assert balance({}, 8) == {}
