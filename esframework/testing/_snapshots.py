"""Check that an aggregate loaded through a snapshot equals the same aggregate replayed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

import attrs

from esframework._aggregates import aggregate_type, aggregate_version, mark_applied, replayed
from esframework._personal._keyring import Keyring
from esframework._personal._keyring_async import AsyncKeyring
from esframework._personal._sealing import Keys
from esframework._repository import Repository
from esframework._repository_async import AsyncRepository

__all__ = ["assert_snapshot_matches_replay", "assert_snapshot_matches_replay_async"]

A = TypeVar("A")


def assert_snapshot_matches_replay(repository: Repository[A], aggregate_id: str) -> A:
    """Assert that loading `aggregate_id` through a snapshot gives exactly its full replay.

    Replays every stored event into a fresh instance, snapshots that state (writing the
    snapshot to the repository's store), then loads the aggregate through the snapshot and
    compares every field, recursively, by value and by type. Use it on aggregates whose state
    holds anything richer than strings and numbers: it fails if a field is lost, reset or
    changed in type by a snapshot, which a replay would not do.

    Args:
        repository: The repository of the aggregate's class, over the store holding it.
        aggregate_id: The aggregate to check; it must have stored events.

    Returns:
        The replayed aggregate.

    Raises:
        AssertionError: The two differ; the message names the first differing field.
        AggregateNotFoundError: The aggregate has no stored events.
        EventEncodingError: Its state cannot be snapshotted at all.
    """
    replay = _replayed(repository, aggregate_id, list(repository.history(aggregate_id)))
    repository.take_snapshot(replay)
    snapshot = repository.store.load_snapshot(aggregate_id)
    keys = None if snapshot is None else Keyring(repository.keys).for_data(snapshot.data)
    _check_snapshot(repository, replay, snapshot, keys)
    _assert_same(replay, repository.load(aggregate_id), "load via the snapshot")
    result: A = replay
    return result


async def assert_snapshot_matches_replay_async(
    repository: AsyncRepository[A], aggregate_id: str
) -> A:
    """Assert, with an `AsyncRepository`, what `assert_snapshot_matches_replay` asserts."""
    history = [envelope async for envelope in repository.history(aggregate_id)]
    replay = _replayed(repository, aggregate_id, history)
    await repository.take_snapshot(replay)
    snapshot = await repository.store.load_snapshot(aggregate_id)
    keys = None if snapshot is None else await AsyncKeyring(repository.keys).for_data(snapshot.data)
    _check_snapshot(repository, replay, snapshot, keys)
    _assert_same(replay, await repository.load(aggregate_id), "load via the snapshot")
    result: A = replay
    return result


def _replayed(repository: Any, aggregate_id: str, history: list[Any]) -> Any:  # -> the A
    kind = aggregate_type(repository._class)  # noqa: SLF001 -- the testing package is ours
    replay = replayed(kind.cls, aggregate_id, 0)
    for envelope in history:
        kind.apply(replay, envelope.event)
    if not history:
        msg = f"{kind.stream_type} {aggregate_id!r} has no stored events to replay"
        raise AssertionError(msg)
    mark_applied(replay, history[-1].version)
    return replay


def _check_snapshot(repository: Any, replay: object, snapshot: Any, keys: Keys | None) -> None:
    # Decode the stored snapshot directly: a load would quietly replay past an unusable one.
    kind = aggregate_type(type(replay))
    if snapshot is None or snapshot.version != aggregate_version(replay):
        msg = "the store did not keep the snapshot just taken"
        raise AssertionError(msg)
    if snapshot.state_schema != kind.state_schema:
        msg = f"the snapshot's state schema {snapshot.state_schema} is not {kind.state_schema}"
        raise AssertionError(msg)
    restored = repository.serializer.decode_state(kind.cls, snapshot.data, keys)
    _assert_same(replay, restored, "the decoded snapshot")


def _assert_same(replay: object, other: object, what: str) -> None:
    difference = _difference(replay, other, type(replay).__qualname__)
    if difference is not None:
        msg = f"{what} differs from the full replay at {difference}"
        raise AssertionError(msg)


def _difference(a: Any, b: Any, path: str) -> str | None:  # noqa: C901, PLR0911 -- one branch per kind
    if type(a) is not type(b):
        return f"{path}: {type(a).__qualname__} {a!r} in the replay, {type(b).__qualname__} {b!r}"
    if attrs.has(type(a)):
        for field in attrs.fields(type(a)):
            found = _difference(
                getattr(a, field.name), getattr(b, field.name), f"{path}.{field.name}"
            )
            if found is not None:
                return found
        return None
    if isinstance(a, list | tuple) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _difference(x, y, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if isinstance(a, dict) and a.keys() == b.keys():
        for key in a:
            found = _difference(a[key], b[key], f"{path}[{key!r}]")
            if found is not None:
                return found
        return None
    if a != b or (isinstance(a, datetime) and a.tzinfo != b.tzinfo):
        return f"{path}: {a!r} in the replay, {b!r}"
    return None
