"""Deterministic sample export days for tests, the demo and benchmarks (``icechat sample``)."""

from icechat.dev.sample.delivery import (
    WrittenDay,
    WrittenPart,
    part_name,
    write_day,
    write_part,
)
from icechat.dev.sample.generator import SampleDay, generate_day, own_people
from icechat.dev.sample.writer import PartStats, write_xml
from icechat.ice.delivery import marker_name

__all__ = [
    "PartStats",
    "SampleDay",
    "WrittenDay",
    "WrittenPart",
    "generate_day",
    "marker_name",
    "own_people",
    "part_name",
    "write_day",
    "write_part",
    "write_xml",
]
