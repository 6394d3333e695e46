# WARNING: generated from _service_async.py by tools/async_to_sync.py: do not edit.
# Edit the source, then run `python tools/async_to_sync.py`.
"""The decisions service: read decision models in one query, save with the condition they imply."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVarTuple, cast
from uuid import UUID, uuid4

from esframework._decisions._model import (
    condition,
    decision_model_type,
    mark_seen,
    seen,
    union,
)
from esframework._envelope import NO_METADATA, Metadata
from esframework._personal._keyring import Keyring
from esframework._personal._keys import KeyStore
from esframework._records import AppendResult, ExpectedVersion
from esframework._serialization import DEFAULT_SERIALIZER, Serializer
from esframework._store import EventStore
from esframework.errors import ConditionFailedError

__all__ = ["DECISION_STREAM_PREFIX", "Decisions"]

Ts = TypeVarTuple("Ts")

DECISION_STREAM_PREFIX = "$decision-"
"""Events a decision appends go to a new stream, this prefix and the first event's id:
aggregates never collide with it, and a retried save (the same event ids) is a no-op."""


class Decisions:
    """Reads decision models and saves the events decided from them, consistently.

    `read` builds any number of decision models with one query of the store (the OR of
    their queries) and remembers what it saw; `save` appends the decided events on the
    condition that no event any of those queries match was stored since. Two decisions
    that read overlapping events cannot both succeed; decisions about unrelated things
    never conflict.

    Args:
        store: Where the events live (any store: memory, SQLite, PostgreSQL).
        serializer: Encodes and decodes events; the default uses the registered upcasters.
        keys: Where the keys of data subjects live, for events with `personal` fields; the
            store's own key table by default.
        attempts: How many times `decide` runs a decision before a conflict is given up on.

    Example:
        >>> decisions = Decisions(store)  # doctest: +SKIP
        >>> models = CourseCapacity("c1"), StudentLimit("s7")  # doctest: +SKIP
        >>> course, student = decisions.read(*models)  # doctest: +SKIP
    """

    def __init__(
        self,
        store: EventStore,
        *,
        serializer: Serializer = DEFAULT_SERIALIZER,
        keys: KeyStore | None = None,
        attempts: int = 10,
    ) -> None:
        if attempts < 1:
            msg = f"attempts must be at least 1, got {attempts}"
            raise ValueError(msg)
        self.store = store
        self.serializer = serializer
        self.keys: KeyStore = store if keys is None else keys
        self.attempts = attempts

    def read(self, *models: *Ts) -> tuple[*Ts]:
        """Fold decision models from the store, with one query for all of them.

        Args:
            models: Decision models naming what to read, such as ``CourseCapacity("c1")``:
                their parameters are used, their state is not.

        Returns:
            New instances of the models, in the order given, folded from every event
            their queries match; each remembers the query and the store's head, for `save`.

        Raises:
            TypeError: A model is not of a `@decision_model` class, or none is given.
            EventDecodingError: A matching stored event cannot be decoded.
        """
        if not models:
            msg = "read needs at least one decision model"
            raise TypeError(msg)
        given: tuple[object, ...] = models
        kinds = [decision_model_type(type(model)) for model in given]
        queries = [
            kind.query(model, self.serializer) for kind, model in zip(kinds, given, strict=True)
        ]
        folded = [kind.blank(model) for kind, model in zip(kinds, given, strict=True)]
        result = self.store.read_query(union(queries))
        keyring = Keyring(self.keys)
        for record in result.events:
            event: Any = None
            for kind, query, model in zip(kinds, queries, folded, strict=True):
                if query.matches(record.event_type, record.tags):
                    if event is None:  # decoded once, whatever the number of models
                        keys = keyring.for_data(record.data)
                        event = self.serializer.decode_event(record, keys)
                    kind.apply(model, event)
        for query, model in zip(queries, folded, strict=True):
            mark_seen(model, query, result)
        return cast("tuple[*Ts]", tuple(folded))

    def save(
        self,
        *models: object,
        events: Sequence[object],
        metadata: Metadata | None = None,
        event_ids: Sequence[UUID] | None = None,
    ) -> AppendResult | None:
        """Append the events decided from `models`, unless what they read has changed.

        The condition is the OR of the queries that read the models and the store's head
        the read saw (the earliest, for models of different reads): if any event matching
        one of them was stored since, nothing is written and `ConditionFailedError` is
        raised. Read the models again and decide again (`decide` does both).

        The events go to a new stream, ``DECISION_STREAM_PREFIX`` and the first event's id,
        of the stream type of the models' names. Saving again with the same `event_ids`
        after an append whose outcome is unknown (a lost connection) is a no-op if it
        committed, even though the condition would now fail on its own events.

        Args:
            models: The models the decision was made from, as `read` returned them.
            events: The events decided, in order; none saves nothing.
            metadata: Correlation, causation and extra facts for every event.
            event_ids: The events' ids, one each, to make a retried save idempotent; new
                ones if not given.

        Returns:
            Where the events landed, or None if there were none.

        Raises:
            ConditionFailedError: An event the models' queries match was stored after the
                read; nothing was written.
            TypeError: A model was not returned by `read`, or no model is given.
            EventEncodingError: An event holds a value that cannot be stored; nothing was
                written.
            InvalidTagError: An event's tag is empty or too long; nothing was written.
        """
        if not models:
            msg = "save needs the decision models the events were decided from"
            raise TypeError(msg)
        views = [seen(model) for model in models]
        if not events:
            return None
        if event_ids is None:
            event_ids = [uuid4() for _ in events]
        elif len(event_ids) != len(events):
            msg = f"save got {len(events)} events and {len(event_ids)} event ids"
            raise ValueError(msg)
        stream_id = f"{DECISION_STREAM_PREFIX}{event_ids[0]}"
        subjects = frozenset().union(*(self.serializer.personal_subjects(e) for e in events))
        keys = self.keys.personal_data_keys(subjects, create=True) if subjects else None
        records = [
            self.serializer.encode(
                e,
                event_id=i,
                metadata=metadata or NO_METADATA,
                keys=keys,
                stream_id=stream_id,
            )
            for e, i in zip(events, event_ids, strict=True)
        ]
        return self.store.append(
            stream_id,
            _stream_type(models),
            records,
            expected_version=ExpectedVersion.NO_STREAM,
            condition=condition(views),
        )

    def decide(
        self,
        decision: Callable[[*Ts], Iterable[object]],
        *models: *Ts,
        metadata: Metadata | None = None,
    ) -> AppendResult | None:
        """Read `models`, run `decision` on them, and save the events it returns.

        When another writer stored an event the models read in between, the decision runs
        again on freshly read models, up to the service's `attempts` in all: so its rules
        are always checked against what is stored when its events commit. Inside a unit of
        work, the decisions of tasks deciding at once take turns: each reads what the ones
        before it saved.

        Args:
            decision: Checks the rules against the folded models and returns the events
                to append (or raises your own exception, and nothing is written).
            models: The decision models to read, such as ``CourseCapacity("c1")``.
            metadata: Correlation, causation and extra facts for every event.

        Returns:
            Where the events landed, or None if the decision returned none.

        Raises:
            ConditionFailedError: Every attempt met a conflicting write; nothing was written.
        """
        attempt = 1
        while True:
            try:
                with _one_turn(self.store):
                    folded = self.read(*models)
                    events = list(decision(*folded))
                    return self.save(*folded, events=events, metadata=metadata)
            except ConditionFailedError:
                if attempt >= self.attempts:
                    raise
                attempt += 1


def _one_turn(store: object) -> AbstractContextManager[object]:
    """A decision's read and save as one turn on the store's open unit of work, if it has one.

    Tasks deciding at once inside one unit (`asyncio.gather`) then decide in turn, each
    seeing the decisions before it. This matters on PostgreSQL, whose unit's own events get
    positions only at commit: a condition cannot tell which of the unit's reads its decision
    made, so it could pass over an own event another task's read returned after this
    decision's read. (The embedded stores position a unit's events at once, and refuse
    that; their calls take turns already.)
    """
    turn = getattr(store, "_holding_unit", None)
    return nullcontext() if turn is None else cast("AbstractContextManager[object]", turn())


def _stream_type(models: Iterable[object]) -> str:
    names = dict.fromkeys(decision_model_type(type(model)).name for model in models)
    return "+".join(names)[:255]
