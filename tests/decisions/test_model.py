"""Decision models: what `@decision_model` accepts, and the query each instance reads."""

from __future__ import annotations

import pytest

from esframework import Query, QueryItem, applies, decision_model, event, tag
from esframework._decisions._model import decision_model_type, seen
from esframework._serialization import DEFAULT_SERIALIZER
from esframework.errors import DefinitionError


@event(name="ModelSeatsOffered")
class SeatsOffered:
    room: str = tag("room")
    seats: int


@event(name="ModelSeatBooked")
class SeatBooked:
    room: str = tag("room")
    guest: str = tag("guest")


@event(name="ModelHolidayDeclared")
class HolidayDeclared:  # tags nothing a model is named by: read by its type alone
    day: str


@decision_model
class RoomSeats:
    room: str
    seats: int = 0
    booked: int = 0
    holidays: int = 0

    @applies(SeatsOffered)
    def _offered(self, e: SeatsOffered) -> None:
        self.seats += e.seats

    @applies(SeatBooked)
    def _booked(self, _: SeatBooked) -> None:
        self.booked += 1

    @applies(HolidayDeclared)
    def _holiday(self, _: HolidayDeclared) -> None:
        self.holidays += 1


@decision_model(name="GuestBookings")
class Guest:
    guest: str
    booked: int = 0

    @applies(SeatBooked)
    def _booked(self, _: SeatBooked) -> None:
        self.booked += 1


def query(model: object) -> Query:
    return decision_model_type(type(model)).query(model, DEFAULT_SERIALIZER)


def test_the_query_asks_each_folded_type_for_the_tags_the_parameters_give() -> None:
    assert query(RoomSeats("r1")) == Query.of(
        QueryItem(types=["ModelHolidayDeclared"]),
        QueryItem(types=["ModelSeatBooked", "ModelSeatsOffered"], tags=["room:r1"]),
    )
    assert query(Guest("g1")) == Query.of(QueryItem(types=["ModelSeatBooked"], tags=["guest:g1"]))


def test_parameters_are_the_fields_without_default_and_the_name_is_kept() -> None:
    kind = decision_model_type(Guest)
    assert kind.name == "GuestBookings"
    assert [field for field, _ in kind.parameters] == ["guest"]
    assert decision_model_type(RoomSeats).name == "RoomSeats"


def test_blank_keeps_the_parameters_and_resets_the_state() -> None:
    kind = decision_model_type(RoomSeats)
    blank = kind.blank(RoomSeats("r1", seats=9, booked=3))
    assert blank == RoomSeats("r1")


def test_a_parameter_no_folded_event_tags_is_refused() -> None:
    with pytest.raises(
        DefinitionError, match=r"'rooom' of decision model .*Misspelt is tagged by none"
    ):

        @decision_model
        class Misspelt:
            rooom: str

            @applies(SeatsOffered)
            def _offered(self, _: SeatsOffered) -> None:
                pass


def test_a_model_that_folds_nothing_is_refused() -> None:
    with pytest.raises(DefinitionError, match="folds no events"):

        @decision_model
        class Empty:
            room: str


def test_a_class_that_is_no_model_is_refused() -> None:
    with pytest.raises(TypeError, match="not a decision model"):
        decision_model_type(SeatsOffered)


def test_an_instance_that_was_not_read_has_seen_nothing() -> None:
    with pytest.raises(TypeError, match="was not read"):
        seen(RoomSeats("r1"))
