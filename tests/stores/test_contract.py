"""The store contract: every backend keeps the same promises."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import orjson
import pytest

from esframework import (
    AppendResult,
    ConcurrencyError,
    EventStore,
    ExpectedVersion,
    NewEvent,
    SnapshotRecord,
)
from esframework.errors import (
    DuplicateEventIdError,
    IdempotencyConflictError,
    InvalidStreamIdError,
    StreamTypeMismatchError,
)


def make(n: int = 1, *, kind: str = "Happened", **data: object) -> list[NewEvent]:
    return [
        NewEvent(
            event_id=uuid.uuid4(),
            event_type=kind,
            schema_version=1,
            data=orjson.dumps({"n": i, **data}).decode(),
            metadata=orjson.dumps({"i": i}).decode(),
        )
        for i in range(n)
    ]


def test_append_assigns_contiguous_versions_and_increasing_positions(store: EventStore) -> None:
    """Appends number a stream's events 1, 2, 3 and give them increasing global positions."""
    first = store.append("s-1", "S", make(2), expected_version=ExpectedVersion.NO_STREAM)
    second = store.append("s-1", "S", make(3), expected_version=2)
    assert (first.version, second.version) == (2, 5)
    # Stores that position events after commit (PostgreSQL) report no positions here.
    reported = first.positions + second.positions
    assert len(reported) in {0, 5}
    positions = [e.position for e in store.read_all()]  # a global read sees its own writes
    assert reported in {(), tuple(positions)}
    assert positions == sorted(positions)
    assert len(set(positions)) == 5
    stored = list(store.read_stream("s-1"))
    assert [e.version for e in stored] == [1, 2, 3, 4, 5]
    assert [e.position for e in stored] == positions
    assert store.stream_version("s-1") == 5


def test_read_stream_returns_what_was_appended(store: EventStore) -> None:
    """Every field of an appended event reads back as it was given."""
    events = make(2, kind="Deposited", amount="1.50")
    store.append("acc", "Account", events, expected_version=0)
    for new, stored in zip(events, store.read_stream("acc"), strict=True):
        assert stored.event_id == new.event_id
        assert stored.stream_id == "acc"
        assert stored.stream_type == "Account"
        assert stored.event_type == "Deposited"
        assert stored.schema_version == 1
        assert orjson.loads(stored.data) == orjson.loads(new.data)
        assert orjson.loads(stored.metadata) == orjson.loads(new.metadata)
        assert stored.recorded_at.utcoffset() is not None


def test_read_payloads_match_the_stored_events(store: EventStore) -> None:
    """read_payloads returns, for the same range, the same facts read_stream does."""
    store.append("s", "S", make(2500, kind="K"), expected_version=0)
    store.head()  # positioned (a global read waits for its own writes): the two reads agree
    for first, last in ((1, None), (3, 7), (2400, None)):
        payloads = list(store.read_payloads("s", from_version=first, to_version=last))
        stored = list(store.read_stream("s", from_version=first, to_version=last))
        assert [
            (p.stream_id, p.version, p.position, p.event_type, p.schema_version) for p in payloads
        ] == [(e.stream_id, e.version, e.position, e.event_type, e.schema_version) for e in stored]
        assert [orjson.loads(p.data) for p in payloads] == [orjson.loads(e.data) for e in stored]


def test_read_stream_from_and_to_version(store: EventStore) -> None:
    """A stream can be read from one version to another, inclusive."""
    store.append("s", "S", make(10), expected_version=0)
    assert [e.version for e in store.read_stream("s", from_version=4)] == [4, 5, 6, 7, 8, 9, 10]
    assert [e.version for e in store.read_stream("s", from_version=3, to_version=5)] == [3, 4, 5]
    assert list(store.read_stream("s", from_version=11)) == []
    # A bound below the first version reads nothing (not "all but the last", as a slice would).
    assert list(store.read_stream("s", to_version=-1)) == []
    assert list(store.read_payloads("s", to_version=0)) == []
    assert list(store.read_stream("missing")) == []
    assert store.stream_version("missing") == 0


def test_read_stream_pages_through_long_streams(store: EventStore) -> None:
    """Streams longer than one page read back whole and in order."""
    store.append("long", "S", make(2500), expected_version=0)
    assert [e.version for e in store.read_stream("long")] == list(range(1, 2501))


def test_stale_expected_version_raises_and_writes_nothing(store: EventStore) -> None:
    """An append at a stale version names the stream and versions, and writes nothing."""
    store.append("s", "S", make(2), expected_version=0)
    head = store.head()
    with pytest.raises(ConcurrencyError) as caught:
        store.append("s", "S", make(3), expected_version=1)
    assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == ("s", 1, 2)
    assert "'s'" in str(caught.value)
    assert store.stream_version("s") == 2
    assert store.head() == head


def test_no_stream_expectation_fails_on_existing_stream(store: EventStore) -> None:
    """Expecting a new stream fails if the stream has events."""
    store.append("s", "S", make(), expected_version=ExpectedVersion.NO_STREAM)
    with pytest.raises(ConcurrencyError):
        store.append("s", "S", make(), expected_version=ExpectedVersion.NO_STREAM)


def test_expected_version_ahead_of_stream_fails(store: EventStore) -> None:
    """Expecting a version the stream has not reached fails instead of leaving a gap."""
    store.append("s", "S", make(), expected_version=0)
    with pytest.raises(ConcurrencyError) as caught:
        store.append("s", "S", make(), expected_version=5)
    assert caught.value.actual == 1
    assert [e.version for e in store.read_stream("s")] == [1]


def test_any_version_appends_at_the_end(store: EventStore) -> None:
    """ExpectedVersion.ANY skips the concurrency check."""
    store.append("s", "S", make(2), expected_version=ExpectedVersion.ANY)
    result = store.append("s", "S", make(1), expected_version=ExpectedVersion.ANY)
    assert result.version == 3


def test_retried_append_is_a_no_op_reporting_stored_positions(store: EventStore) -> None:
    """Appending again the same events (a retry) reports the stored append, writes nothing."""
    events = make(3)
    first = store.append("s", "S", events, expected_version=0)
    store.append("s", "S", make(1), expected_version=3)  # the stream moved on meanwhile
    again = store.append("s", "S", events, expected_version=0)
    assert again.positions == first.positions
    assert again.version == 3
    assert store.stream_version("s") == 4


def test_same_event_id_with_other_content_is_a_conflict(store: EventStore) -> None:
    """A different event under a stored id is an error, and nothing is written."""
    (original,) = make()
    store.append("s", "S", [original], expected_version=0)
    forged = NewEvent(
        event_id=original.event_id,
        event_type=original.event_type,
        schema_version=1,
        data='{"n": 99}',
    )
    with pytest.raises(IdempotencyConflictError) as caught:
        store.append("s", "S", [forged], expected_version=1)
    assert caught.value.event_id == str(original.event_id)
    assert store.stream_version("s") == 1


BIG = "1" + "0" * 400  # an int past a double's range, which a save of an int field writes


@pytest.mark.parametrize(
    ("data", "metadata"),
    [
        ('{"x": 1.2345678901234567e18}', "{}"),  # a float field's value, as orjson writes it
        ('{"x": 1.5e300, "y": -0.0, "z": 1e-7}', "{}"),
        (f'{{"n": {BIG}}}', "{}"),
        ("{}", f'{{"count": {BIG}}}'),
    ],
    ids=["float-1e18", "floats", "int-1e400", "metadata-int-1e400"],
)
def test_a_retry_of_numbers_a_store_rewrites_is_a_no_op(
    store: EventStore, data: str, metadata: str
) -> None:
    """A retry of a stored append is a no-op whatever numbers its payloads hold. PostgreSQL
    prints a float of 1e16 or more as the integer its shortest digits spell (1234567890123456700,
    not the double's 1234567890123456768), which the retry's float did not equal: it failed
    with IdempotencyConflictError; an int past a double's range, which saves store, made
    every store's retry fail with orjson's JSONDecodeError."""
    events = [NewEvent(uuid.uuid4(), "Happened", 1, data, metadata=metadata)]
    first = store.append("s", "S", events, expected_version=0)
    again = store.append("s", "S", events, expected_version=0)
    assert again.version == first.version == 1
    assert store.head() == 1


@pytest.mark.parametrize(
    ("stored", "retried"),
    [
        (f'{{"n": {2**70}}}', f'{{"n": {2**70 + 1}}}'),  # equal as doubles
        (f'{{"n": {BIG}}}', f'{{"n": {BIG}1}}'),
        ('{"flag": true}', '{"flag": 1}'),
        ('{"n": 0}', '{"n": false}'),
    ],
    ids=["int-2**70", "int-1e400", "true-1", "0-false"],
)
def test_a_retry_with_other_json_values_is_a_conflict(
    store: EventStore, stored: str, retried: str
) -> None:
    """Payloads compare as JSON values, numbers exactly: ints past 64 bits read as doubles
    (2**70 and 2**70 + 1) and true and 1 compared equal, so a different event under a stored
    id was taken for a retry, and dropped unseen."""
    (original,) = make()
    original = original._replace(data=stored)
    store.append("s", "S", [original], expected_version=0)
    with pytest.raises(IdempotencyConflictError):
        store.append("s", "S", [original._replace(data=retried)], expected_version=0)
    (kept,) = store.read_stream("s")
    assert kept.event_id == original.event_id


@pytest.mark.parametrize(
    ("stored", "retried"),
    [
        ('{"n": 1e2}', '{"n": 100}'),
        ('{"n": 1.50}', '{"n": 1.5}'),
        ('{"a":1,"b":[2]}', '{"b":[2],"a":1}'),
    ],
    ids=["exponent", "trailing-zero", "key-order"],
)
def test_a_retry_of_the_same_json_written_otherwise_is_a_no_op(
    store: EventStore, stored: str, retried: str
) -> None:
    """JSON that spells the same values otherwise (PostgreSQL rewrites 1e2 as 100, and
    reorders keys) is the same write."""
    (original,) = make()
    original = original._replace(data=stored)
    store.append("s", "S", [original], expected_version=0)
    again = store.append("s", "S", [original._replace(data=retried)], expected_version=0)
    assert again.version == 1


def test_stored_event_id_on_another_stream_is_a_conflict(store: EventStore) -> None:
    """An event id belongs to one stream: reusing it elsewhere fails."""
    events = make()
    store.append("a", "S", events, expected_version=0)
    with pytest.raises(IdempotencyConflictError):
        store.append("b", "S", events, expected_version=0)
    assert store.stream_version("b") == 0


def test_batch_mixing_stored_and_new_ids_is_a_conflict(store: EventStore) -> None:
    """A batch that repeats some stored ids but not all is not a retry; nothing is written."""
    events = make(2)
    store.append("s", "S", events, expected_version=0)
    with pytest.raises(IdempotencyConflictError):
        store.append("s", "S", [events[1], *make(1)], expected_version=2)
    assert store.stream_version("s") == 2


@pytest.mark.parametrize("expected", [0, ExpectedVersion.ANY])
def test_same_event_id_twice_in_one_append_is_refused(
    store: EventStore, expected: int | ExpectedVersion
) -> None:
    """One event id twice in a batch is refused before writing, naming the id and stream."""
    first, second = make(2)
    twice = [first, second._replace(event_id=first.event_id)]
    with pytest.raises(DuplicateEventIdError) as caught:
        store.append("s", "S", twice, expected_version=expected)
    assert (caught.value.event_id, caught.value.stream_id) == (str(first.event_id), "s")
    assert store.head() == 0
    # The same rule holds when the id is stored already: the batch is no retry either.
    store.append("s", "S", [first], expected_version=0)
    with pytest.raises(DuplicateEventIdError):
        store.append("s", "S", [first, first], expected_version=expected)
    assert [e.event_id for e in store.read_all()] == [first.event_id]


@pytest.mark.parametrize("expected", [1, ExpectedVersion.ANY, ExpectedVersion.NO_STREAM])
def test_append_of_another_stream_type_is_refused(
    store: EventStore, expected: int | ExpectedVersion
) -> None:
    """A stream keeps its stream type: an append giving another writes nothing.

    The type is checked before the version, so a new aggregate under a taken id of another
    type hears what is wrong, not of a concurrency conflict.
    """
    store.append("doc-1", "Invoice", make(), expected_version=0)
    with pytest.raises(StreamTypeMismatchError) as caught:
        store.append("doc-1", "Ticket", make(2), expected_version=expected)
    error = caught.value
    assert (error.stream_id, error.expected, error.actual) == ("doc-1", "Ticket", "Invoice")
    assert "'doc-1'" in str(error)
    assert "Invoice" in str(error)
    assert [e.stream_type for e in store.read_all()] == ["Invoice"]


def test_retry_under_another_stream_type_is_a_conflict(store: EventStore) -> None:
    """Stored ids appended again under another stream type are no retry: nothing is written."""
    events = make(2)
    store.append("doc-1", "Invoice", events, expected_version=0)
    with pytest.raises(IdempotencyConflictError):
        store.append("doc-1", "Ticket", events, expected_version=0)
    assert store.stream_version("doc-1") == 2


def test_racing_any_appends_of_overlapping_batches_agree(store: EventStore) -> None:
    """Appends at any version racing on overlapping batches: each lands whole, is a retry,
    or fails with `IdempotencyConflictError`; never with a backend's duplicate-key error.

    The partial batch starts with a new event, so on PostgreSQL it first collides on the
    version the other batch took, and then, after taking the append lock, on the shared id.
    """
    for round_ in range(10):
        stream = f"race-{round_}"
        store.append(stream, "S", make(), expected_version=0)
        full = make(3)
        partial = [*make(1), full[2]]
        batches = [full, full, partial]
        outcomes = race_appends(store, stream, batches)
        store.head()  # positioned: a global read waits for the store's own appends
        stored = list(store.read_stream(stream))
        position_of = {e.event_id: e.position for e in stored}
        landed: set[uuid.UUID] = set()
        for given, outcome in zip(batches, outcomes, strict=True):
            if isinstance(outcome, AppendResult):
                # Empty where positions are assigned after commit (PostgreSQL).
                assert outcome.positions in {(), tuple(position_of[e.event_id] for e in given)}
                landed |= {e.event_id for e in given}
        assert {e.event_id for e in stored[1:]} == landed
        assert landed in ({e.event_id for e in full}, {e.event_id for e in partial})
        assert [e.version for e in stored] == list(range(1, len(stored) + 1))


def test_read_all_in_global_order_with_pages_and_filters(store: EventStore) -> None:
    """All events read back in global order, in pages, optionally filtered."""
    store.append("a", "A", make(2, kind="X"), expected_version=0)
    store.append("b", "B", make(2, kind="Y"), expected_version=0)
    store.append("a", "A", make(1, kind="Y"), expected_version=2)
    everything = store.read_all()
    assert [(e.stream_id, e.version) for e in everything] == [
        ("a", 1),
        ("a", 2),
        ("b", 1),
        ("b", 2),
        ("a", 3),
    ]
    positions = [e.position for e in everything]
    assert positions == sorted(positions)
    page = store.read_all(after=positions[1], limit=2)
    assert [e.position for e in page] == positions[2:4]
    assert [e.stream_id for e in store.read_all(stream_types=["A"])] == ["a", "a", "a"]
    assert [e.event_type for e in store.read_all(event_types=["Y"])] == ["Y", "Y", "Y"]
    assert store.read_all(stream_types=["B"], event_types=["X"]) == []
    assert [e.position for e in store.iter_all(page_size=2)] == positions
    assert store.head() == positions[-1]


def test_empty_store(store: EventStore) -> None:
    """An empty store has head 0 and reads nothing."""
    assert store.head() == 0
    assert store.read_all() == []
    assert store.load_snapshot("nothing") is None
    assert store.stored_event_types() == frozenset()


def test_stored_event_types_lists_each_name_once(store: EventStore) -> None:
    """stored_event_types names every stored event type once, unusual names included."""
    names = ["X", "Y", "ünïcødé", "a'quote", "x" * 255, "Z"]
    for i, name in enumerate(names):
        store.append(f"s{i}", "S", make(3, kind=name), expected_version=0)
    store.append("s0", "S", make(2, kind="Y"), expected_version=3)
    assert store.stored_event_types() == frozenset(names)


@pytest.mark.parametrize(
    "stream_id",
    ['it\'s "quoted"', "back\\slash", "spaces and\ttabs", "ünïcødé-流-🙂", "x" * 255, "'; DROP"],
)
def test_unusual_stream_ids_round_trip(store: EventStore, stream_id: str) -> None:
    """Stream ids with quotes, backslashes, unicode and 255 characters are stored as given."""
    store.append(stream_id, "S", make(), expected_version=0)
    (stored,) = store.read_stream(stream_id)
    assert stored.stream_id == stream_id
    assert store.stream_version(stream_id) == 1


@pytest.mark.parametrize("stream_id", ["", "x" * 256, "nul\x00byte"])
def test_invalid_stream_ids_are_rejected(store: EventStore, stream_id: str) -> None:
    """Empty, too long and NUL-holding stream ids fail clearly and write nothing."""
    with pytest.raises(InvalidStreamIdError):
        store.append(stream_id, "S", make(), expected_version=0)
    assert store.head() == 0


def test_snapshots_replace_older_ones_only(store: EventStore) -> None:
    """The latest snapshot wins; an older one arriving late does not replace it."""

    def snap(version: int) -> SnapshotRecord:
        return SnapshotRecord(
            stream_id="s",
            stream_type="S",
            state_schema="1:abc",
            version=version,
            data=orjson.dumps({"v": version}).decode(),
        )

    store.save_snapshot(snap(5))
    store.save_snapshot(snap(10))
    store.save_snapshot(snap(7))
    loaded = store.load_snapshot("s")
    assert loaded is not None
    assert (loaded.version, orjson.loads(loaded.data), loaded.state_schema) == (
        10,
        {"v": 10},
        "1:abc",
    )


def test_concurrent_writers_on_one_stream(store: EventStore) -> None:
    """Many threads appending to one stream: each version has exactly one winner."""
    acknowledged: list[uuid.UUID] = []
    conflicts = 0
    lock = threading.Lock()

    def writer() -> None:
        nonlocal conflicts
        for _ in range(15):
            events = make(2)
            try:
                store.append("hot", "S", events, expected_version=store.stream_version("hot"))
            except ConcurrencyError:
                with lock:
                    conflicts += 1
            else:
                with lock:
                    acknowledged.extend(e.event_id for e in events)

    run_threads(writer, 6)
    stored = list(store.read_stream("hot"))
    assert [e.version for e in stored] == list(range(1, len(stored) + 1))
    assert sorted(e.event_id for e in stored) == sorted(acknowledged)
    assert len(acknowledged) + 2 * conflicts == 6 * 15 * 2


def test_concurrent_any_version_appends_all_land(store: EventStore) -> None:
    """Appends expecting any version never conflict with each other: all land, contiguously."""

    def writer() -> None:
        for _ in range(15):
            store.append("any", "S", make(2), expected_version=ExpectedVersion.ANY)

    run_threads(writer, 6)
    assert [e.version for e in store.read_stream("any")] == list(range(1, 6 * 15 * 2 + 1))


def race_appends(
    store: EventStore, stream: str, batches: list[list[NewEvent]]
) -> list[AppendResult | IdempotencyConflictError]:
    """Append each batch at any version from its own thread, all at once; fail on other errors."""
    barrier = threading.Barrier(len(batches))
    outcomes: dict[int, AppendResult | IdempotencyConflictError] = {}
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = store.append(
                stream, "S", batches[i], expected_version=ExpectedVersion.ANY
            )
        except IdempotencyConflictError as error:
            outcomes[i] = error
        except BaseException as error:  # surface thread failures in the test
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return [outcomes[i] for i in range(len(batches))]


def run_threads(target: Callable[[], None], count: int) -> None:
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            target()
        except BaseException as error:  # surface thread failures in the test
            errors.append(error)
            raise

    threads = [threading.Thread(target=guarded) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
