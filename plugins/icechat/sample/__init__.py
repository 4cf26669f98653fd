"""Deterministic sample export days for tests, the demo and benchmarks (``icechat sample``)."""

from icechat.delivery import marker_name
from icechat.sample.delivery import (
    WrittenDay,
    WrittenPart,
    part_name,
    write_day,
    write_part,
)
from icechat.sample.generator import SampleDay, generate_day
from icechat.sample.writer import PartStats, write_xml

__all__ = [
    "PartStats",
    "SampleDay",
    "WrittenDay",
    "WrittenPart",
    "generate_day",
    "marker_name",
    "part_name",
    "write_day",
    "write_part",
    "write_xml",
]
