"""Which partition of a subscription a stream belongs to, and how partitions are named.

Shared by the sync and async subscription modules, so both see the same `Partition` class.
"""

from __future__ import annotations

import re
import zlib

import attrs

from esframework._checks import MAX_STREAM_ID_LENGTH

__all__ = [
    "MAX_PARTITIONS",
    "Partition",
    "count_marker",
    "is_count_marker",
    "partition_name",
    "partition_of",
]

MAX_PARTITIONS = 1024

# The name suffixes partitioning adds; a partitioned subscription's own name leaves room.
_COUNT_SUFFIX = ":partitions"
_LONGEST_SUFFIX = max(len(_COUNT_SUFFIX), len(f":{MAX_PARTITIONS - 1}/{MAX_PARTITIONS}"))
MAX_BASE_NAME_LENGTH = MAX_STREAM_ID_LENGTH - _LONGEST_SUFFIX


def _valid_count(_: object, __: object, count: int) -> None:
    if not 1 <= count <= MAX_PARTITIONS:
        msg = f"a subscription has 1 to {MAX_PARTITIONS} partitions, not {count}"
        raise ValueError(msg)


@attrs.frozen
class Partition:
    """Partition `index` (from 0) of `count`: the streams whose stable hash is `index` mod `count`.

    The hash is CRC-32 of the stream id's UTF-8 bytes, the same in every process and Python
    version (unlike `hash()`), so a stream's events always go to the same partition, in order.

    Attributes:
        base: The name of the subscription that was partitioned.
        index: Which partition, from 0 to `count - 1`.
        count: How many partitions the subscription runs as.
    """

    base: str
    index: int
    count: int = attrs.field(validator=_valid_count)

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            msg = f"partition index {self.index} is not in 0..{self.count - 1}"
            raise ValueError(msg)

    def owns(self, stream_id: str) -> bool:
        """Whether this partition delivers the events of `stream_id`."""
        return zlib.crc32(stream_id.encode()) % self.count == self.index


def partition_name(base: str, index: int, count: int) -> str:
    """The name (checkpoint and lease) of partition `index` of `count`: `base:index/count`."""
    return f"{base}:{index}/{count}"


def count_marker(base: str) -> str:
    """The checkpoint row that records how many partitions `base` runs as.

    A partition count kept as a checkpoint value needs no table of its own, so it works on
    every store as it is: partitioning is a layer over the subscription machinery.
    """
    return f"{base}{_COUNT_SUFFIX}"


_PARTITION_NAME = re.compile(r"(?P<base>.+):(?P<index>\d+)/(?P<count>\d+)")


def partition_of(name: str) -> tuple[str, int, int] | None:
    """`(base, index, count)` for a partition's name (`base:index/count`), else None."""
    found = _PARTITION_NAME.fullmatch(name)
    if found is None:
        return None
    return found["base"], int(found["index"]), int(found["count"])


def is_count_marker(name: str) -> bool:
    """Whether `name` is the checkpoint row recording a partition count, not a subscription."""
    return name.endswith(_COUNT_SUFFIX)
