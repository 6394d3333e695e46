"""Forgetting a data subject: the record it appends, the decisions every store shares.

Forgetting deletes the subject's key (for good: the store keeps a row saying the subject is
forgotten, so nothing of theirs is sealed again), then appends a `PersonalDataForgotten`
event to the subject's own stream, so subscriptions learn of it in the global order and read
models can drop what they copied. Its event id is derived from the subject: forgetting again
is an idempotent retry.
"""

from __future__ import annotations

from typing import Final
from uuid import UUID, uuid5

import orjson

from esframework._personal._sealing import validate_subject
from esframework._records import NewEvent

__all__ = [
    "FORGOTTEN_EVENT_TYPE",
    "FORGOTTEN_STREAM_TYPE",
    "forgotten_event",
    "forgotten_stream",
]

FORGOTTEN_EVENT_TYPE: Final = "$PersonalDataForgotten"
"""The stored type of `PersonalDataForgotten`; `$` keeps it apart from event classes."""
FORGOTTEN_STREAM_TYPE: Final = "$PersonalData"
"""The stream type of the streams that record forgetting, one per subject."""

_IDS: Final = UUID("0b6f7e9c-3c1d-4d52-8f0e-6a7c2b9e4f13")


def forgotten_stream(subject: str) -> str:
    """Return the stream that records forgetting `subject`."""
    return f"$personal-data-{validate_subject(subject)}"


def forgotten_event(subject: str, metadata: str = "{}") -> NewEvent:
    """Return the event that records forgetting `subject`: the same event id every time."""
    return NewEvent(
        event_id=uuid5(_IDS, validate_subject(subject)),
        event_type=FORGOTTEN_EVENT_TYPE,
        schema_version=1,
        data=orjson.dumps({"subject": subject}).decode(),
        metadata=metadata,
    )
