"""The decisions service on every store, sync and async: one read, one conditional append."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from esframework import (
    AppendCondition,
    AsyncDecisions,
    Decisions,
    ExpectedVersion,
    Query,
    QueryItem,
    aggregate,
    applies,
    decision_model,
    emit,
    event,
    new,
    personal,
    tag,
)
from esframework._decisions._model import seen
from esframework._serialization import DEFAULT_SERIALIZER
from esframework.errors import ConcurrencyError, ConditionFailedError, InvalidTagError
from tests.conftest import Backend
from tests.fixtures.asyncio_bridge import Blocking

# The stores with read_query and conditional appends so far; PostgreSQL joins them as its
# storage of tags lands.
pytestmark = pytest.mark.parametrize(
    "backend", ["memory", "sqlite", "memory-async", "sqlite-async"], indirect=True
)


@event(name="DecisionsRoomOpened")
class RoomOpened:
    room: str = tag("room")
    seats: int


@event(name="DecisionsSeatBooked")
class SeatBooked:
    room: str = tag("room")
    guest: str = tag("guest")


@event(name="DecisionsGuestArrived")  # an aggregate's event, tagged like any other
class GuestArrived:
    guest: str = tag("guest")


@aggregate(stream_type="DecisionsGuest")
class GuestRecord:
    arrived: bool = False

    @applies(GuestArrived)
    def _arrived(self, _: GuestArrived) -> None:
        self.arrived = True


@decision_model
class Room:
    room: str
    seats: int | None = None
    booked: int = 0

    @applies(RoomOpened)
    def _opened(self, e: RoomOpened) -> None:
        self.seats = e.seats

    @applies(SeatBooked)
    def _booked(self, _: SeatBooked) -> None:
        self.booked += 1


@decision_model
class Guest:
    guest: str
    arrived: bool = False
    rooms: tuple[str, ...] = ()

    @applies(GuestArrived)
    def _arrived(self, _: GuestArrived) -> None:
        self.arrived = True

    @applies(SeatBooked)
    def _booked(self, e: SeatBooked) -> None:
        self.rooms = (*self.rooms, e.room)


class FullError(Exception):
    pass


def book(room: Room, guest: Guest) -> list[object]:
    if room.seats is None or room.booked >= room.seats:
        raise FullError(room.room)
    return [SeatBooked(room=room.room, guest=guest.guest)]


def decisions_of(backend: Backend, *, store: Any = None, **options: Any) -> Any:
    """Decisions over the backend, or a blocking AsyncDecisions for async ones."""
    target = backend.raw if store is None else store
    if backend.loop is None:
        return Decisions(target, **options)
    return Blocking(AsyncDecisions(target, **options), backend.loop)


def opened(decisions: Any, room: str, seats: int) -> None:
    (blank,) = decisions.read(Room(room))
    decisions.save(blank, events=[RoomOpened(room=room, seats=seats)])


def arrive(backend: Backend, guest: str) -> None:
    record = new(GuestRecord, f"guest-{guest}")
    emit(record, GuestArrived(guest=guest))
    backend.repository(GuestRecord).save(record)


def test_read_folds_each_model_from_the_events_its_query_matches(backend: Backend) -> None:
    decisions = decisions_of(backend)
    opened(decisions, "r1", 2)
    opened(decisions, "r2", 5)
    arrive(backend, "g1")
    room, guest = decisions.read(Room("r1"), Guest("g1"))
    decisions.save(room, guest, events=book(room, guest))
    room, guest, other = decisions.read(Room("r1"), Guest("g1"), Room("r2"))
    assert (room.seats, room.booked) == (2, 1)
    assert guest == Guest("g1", arrived=True, rooms=("r1",))  # the aggregate's event too
    assert (other.seats, other.booked) == (5, 0)


def test_the_condition_is_the_queries_read_after_the_head_they_saw(backend: Backend) -> None:
    decisions = decisions_of(backend)
    opened(decisions, "r1", 2)
    room, guest = decisions.read(Room("r1"), Guest("g1"))
    head = backend.store.head()
    assert seen(room).head == seen(guest).head == head
    appended: list[AppendCondition] = []
    original = backend.raw.append

    def spy(*args: Any, condition: AppendCondition | None = None, **kwargs: Any) -> Any:
        if condition is not None:
            appended.append(condition)
        return original(*args, condition=condition, **kwargs)

    backend.raw.append = spy  # records the condition, and appends for real
    try:
        decisions.save(room, guest, events=book(room, guest))
    finally:
        del backend.raw.append
    [condition] = appended
    assert condition.after == head
    assert condition.fail_if_events_match == Query.of(
        QueryItem(types=["DecisionsRoomOpened", "DecisionsSeatBooked"], tags=["room:r1"]),
        QueryItem(types=["DecisionsGuestArrived", "DecisionsSeatBooked"], tags=["guest:g1"]),
    )


def test_a_matching_event_stored_after_the_read_fails_the_save(backend: Backend) -> None:
    decisions = decisions_of(backend)
    opened(decisions, "r1", 1)
    room, guest = decisions.read(Room("r1"), Guest("g1"))
    rival_room, rival = decisions.read(Room("r1"), Guest("g2"))
    decisions.save(rival_room, rival, events=book(rival_room, rival))
    before = backend.store.head()
    with pytest.raises(ConditionFailedError) as failed:
        decisions.save(room, guest, events=book(room, guest))
    assert isinstance(failed.value, ConcurrencyError)
    assert backend.store.head() == before  # nothing was written
    room, _ = decisions.read(Room("r1"), Guest("g1"))
    assert room.booked == 1  # one seat, one booking


def test_events_no_query_read_do_not_fail_the_save(backend: Backend) -> None:
    decisions = decisions_of(backend)
    opened(decisions, "r1", 5)
    opened(decisions, "r2", 5)
    room, guest = decisions.read(Room("r1"), Guest("g1"))
    other_room, other = decisions.read(Room("r2"), Guest("g2"))
    decisions.save(other_room, other, events=book(other_room, other))
    arrive(backend, "g3")  # an aggregate's event with another guest's tag
    assert decisions.save(room, guest, events=book(room, guest)) is not None


def test_an_aggregate_event_the_query_matches_fails_the_save(backend: Backend) -> None:
    decisions = decisions_of(backend)
    opened(decisions, "r1", 5)
    room, guest = decisions.read(Room("r1"), Guest("g1"))
    arrive(backend, "g1")  # a Repository save: the guest's tag, after the read
    with pytest.raises(ConditionFailedError):
        decisions.save(room, guest, events=book(room, guest))


class Interfering:
    """The backend's raw store, where a rival books a seat in r1 just after each of the first
    `times` query reads: between a decision's read and its save, as a concurrent writer
    would. The rival's append is unconditional: every append must fail a condition."""

    def __init__(self, backend: Backend, times: int) -> None:
        self.inner = backend.raw
        self.is_async = backend.loop is not None
        self.left = times
        self.rivals = 0

    def _rival(self) -> Any:
        self.left -= 1
        self.rivals += 1
        booked = SeatBooked(room="r1", guest=f"rival-{self.rivals}")
        record = DEFAULT_SERIALIZER.encode(booked, event_id=uuid.uuid4())
        return self.inner.append(
            f"rival-{self.rivals}", "Rival", [record], expected_version=ExpectedVersion.NO_STREAM
        )

    def read_query(self, *args: Any, **kwargs: Any) -> Any:
        if not self.is_async:
            result = self.inner.read_query(*args, **kwargs)
            if self.left:
                self._rival()
            return result

        async def read() -> Any:
            result = await self.inner.read_query(*args, **kwargs)
            if self.left:
                await self._rival()
            return result

        return read()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_decide_runs_again_on_fresh_models_after_a_conflict(backend: Backend) -> None:
    opened(decisions_of(backend), "r1", 5)
    store = Interfering(backend, times=1)
    decisions = decisions_of(backend, store=store)
    calls: list[int] = []

    def counted(room: Room, guest: Guest) -> list[object]:
        calls.append(room.booked)
        return book(room, guest)

    decisions.decide(counted, Room("r1"), Guest("g1"))
    assert calls == [0, 1]  # the second run saw the rival's booking
    (room,) = decisions_of(backend).read(Room("r1"))
    assert room.booked == 2


def test_decide_gives_up_after_its_attempts(backend: Backend) -> None:
    opened(decisions_of(backend), "r1", 100)
    store = Interfering(backend, times=10)
    decisions = decisions_of(backend, store=store, attempts=3)
    with pytest.raises(ConditionFailedError):
        decisions.decide(book, Room("r1"), Guest("g1"))
    assert store.rivals == 3  # three attempts, each beaten by a rival
    (guest,) = decisions_of(backend).read(Guest("g1"))
    assert guest.rooms == ()


def test_a_rule_that_refuses_writes_nothing(backend: Backend) -> None:
    decisions = decisions_of(backend)
    opened(decisions, "r1", 1)
    decisions.decide(book, Room("r1"), Guest("g1"))
    head = backend.store.head()
    with pytest.raises(FullError):
        decisions.decide(book, Room("r1"), Guest("g2"))
    assert backend.store.head() == head


def test_a_save_retried_with_the_same_event_ids_is_a_no_op(backend: Backend) -> None:
    decisions = decisions_of(backend)
    opened(decisions, "r1", 5)
    room, guest = decisions.read(Room("r1"), Guest("g1"))
    ids = [uuid.uuid4()]
    first = decisions.save(room, guest, events=book(room, guest), event_ids=ids)
    # The same save again (its outcome was unknown, say): the condition would now fail on
    # its own event, but a retry of stored events is a no-op.
    again = decisions.save(room, guest, events=book(room, guest), event_ids=ids)
    assert again.stream_id == first.stream_id == f"$decision-{ids[0]}"
    (room,) = decisions.read(Room("r1"))
    assert room.booked == 1


def test_decision_events_are_stored_with_their_tags_in_a_stream_of_their_own(
    backend: Backend,
) -> None:
    decisions = decisions_of(backend)
    opened(decisions, "r1", 5)
    arrive(backend, "g1")
    result = decisions.decide(book, Room("r1"), Guest("g1"))
    [record] = list(backend.store.read_stream(result.stream_id))
    assert record.stream_type == "Room+Guest"
    assert record.tags == ("guest:g1", "room:r1")
    envelopes = {e.stream_id: e for e in _all(backend)}
    assert envelopes[result.stream_id].tags == ("guest:g1", "room:r1")
    assert envelopes["guest-g1"].tags == ("guest:g1",)
    # One global order: the aggregate's event before the booking decided after it.
    assert envelopes["guest-g1"].position < envelopes[result.stream_id].position


def _all(backend: Backend) -> list[Any]:
    return [DEFAULT_SERIALIZER.decode(r) for r in backend.store.read_all()]


def test_an_invalid_tag_is_refused_before_anything_is_written(backend: Backend) -> None:
    decisions = decisions_of(backend)
    opened(decisions, "r1", 5)
    with pytest.raises(InvalidTagError, match="in a query: it has 306 characters"):
        decisions.read(Guest("x" * 300))
    (room,) = decisions.read(Room("r1"))
    head = backend.store.head()
    with pytest.raises(InvalidTagError, match="more than 255"):
        decisions.save(room, events=[SeatBooked(room="r1", guest="x" * 300)])
    record = new(GuestRecord, "guest-g1")
    emit(record, GuestArrived(guest="g1"), tags=[""])
    with pytest.raises(InvalidTagError, match="on stream 'guest-g1': it is empty"):
        backend.repository(GuestRecord).save(record)
    assert backend.store.head() == head


def test_read_and_save_need_models(backend: Backend) -> None:
    decisions = decisions_of(backend)
    with pytest.raises(TypeError, match="at least one decision model"):
        decisions.read()
    with pytest.raises(TypeError, match="not a decision model"):
        decisions.read(RoomOpened(room="r1", seats=1))
    with pytest.raises(TypeError, match="was not read"):
        decisions.save(Room("r1"), events=[RoomOpened(room="r1", seats=1)])
    (room,) = decisions.read(Room("r1"))
    assert decisions.save(room, events=[]) is None


@event(name="DecisionsGuestNamed")
class GuestNamed:
    guest: str = tag("guest")
    name: str = personal(subject="guest", forgotten="(forgotten)")


@decision_model
class GuestName:
    guest: str
    name: str = ""

    @applies(GuestNamed)
    def _named(self, e: GuestNamed) -> None:
        self.name = e.name


def test_personal_fields_are_sealed_and_read_as_forgotten_after_forgetting(
    backend: Backend,
) -> None:
    decisions = decisions_of(backend)
    decisions.decide(lambda _: [GuestNamed(guest="g1", name="Grace")], GuestName("g1"))
    [record] = [r for r in backend.store.read_all() if r.event_type == "DecisionsGuestNamed"]
    assert "Grace" not in record.data  # sealed with the subject's key
    assert decisions.read(GuestName("g1"))[0].name == "Grace"
    backend.store.forget_personal_data("g1")
    assert decisions.read(GuestName("g1"))[0].name == "(forgotten)"
