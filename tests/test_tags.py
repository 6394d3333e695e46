"""Tags on events: derived from `tag(...)` fields, given to `emit`, stored with each event."""

from __future__ import annotations

import enum
import uuid

import pytest

from esframework import aggregate, applies, emit, event, new, pending_events, tag
from esframework._tags import tag_fields, tag_value, tags_of
from esframework.errors import DefinitionError


class Level(enum.Enum):
    BASIC = "basic"
    ADVANCED = "advanced"


@event(name="TagsEverything")
class Tagged:
    course_id: str = tag("course")
    seats: int = tag("seats")
    ident: uuid.UUID = tag("id")
    level: Level = tag("level")
    maybe: str | None = tag("maybe", default=None)
    students: tuple[str, ...] = tag("student", default=())
    note: str = ""


IDENT = uuid.UUID(int=7)


def test_each_tagged_field_gives_a_tag_named_after_it() -> None:
    e = Tagged(course_id="c1", seats=3, ident=IDENT, level=Level.ADVANCED, students=("s1", "s2"))
    assert sorted(tags_of(e)) == sorted(
        [
            "course:c1",
            "seats:3",
            f"id:{IDENT}",
            "level:advanced",
            "student:s1",
            "student:s2",
        ]
    )


def test_none_gives_no_tag_and_a_value_gives_one() -> None:
    e = Tagged(course_id="c", seats=0, ident=IDENT, level=Level.BASIC, maybe="m")
    assert "maybe:m" in tags_of(e)
    without = Tagged(**{**_fields(e), "maybe": None})
    assert not any(t.startswith("maybe:") for t in tags_of(without))


def _fields(e: Tagged) -> dict[str, object]:
    return {f: getattr(e, f) for f in ("course_id", "seats", "ident", "level", "maybe", "students")}


def test_the_tagged_fields_are_recorded_in_order() -> None:
    assert [name for _, name in tag_fields(Tagged)] == [
        "course",
        "seats",
        "id",
        "level",
        "maybe",
        "student",
    ]


def test_tag_value_names_a_tag_as_a_field_gives_it() -> None:
    assert tag_value("course", "c1") == "course:c1"
    assert tag_value("level", Level.BASIC) == "level:basic"
    with pytest.raises(TypeError, match="a tag value"):
        tag_value("flag", True)


@pytest.mark.parametrize("field_type", ["float", "bool", "dict[str, int]", "list[list[str]]"])
def test_a_tagged_field_whose_type_makes_no_tag_is_refused_when_defined(field_type: str) -> None:
    namespace: dict[str, object] = {}
    source = (
        "from esframework import event, tag\n"
        f"@event(name='TagsBad{abs(hash(field_type))}')\n"
        "class Bad:\n"
        f"    value: {field_type} = tag('v')\n"
    )
    with pytest.raises(DefinitionError, match="makes no tag"):
        exec(source, namespace)  # noqa: S102 -- a class defined with each refused type


@pytest.mark.parametrize("name", ["", "a\x00b"])
def test_a_tag_needs_a_name(name: str) -> None:
    with pytest.raises(DefinitionError, match="needs a name"):
        tag(name)


@event(name="TagsNoted")
class Noted:
    text: str


@aggregate(stream_type="TagsNotebook")
class Notebook:
    notes: int = 0

    @applies(Noted)
    def _noted(self, _: Noted) -> None:
        self.notes += 1


def test_emit_keeps_the_extra_tags_with_the_pending_event() -> None:
    notebook = new(Notebook, "n1")
    emit(notebook, Noted(text="x"), tags=["region:eu", "topic:a"])
    emit(notebook, Noted(text="y"))
    first, second = pending_events(notebook)
    assert first.tags == ("region:eu", "topic:a")
    assert second.tags == ()


def test_emit_refuses_a_single_string_as_tags() -> None:
    notebook = new(Notebook, "n1")
    with pytest.raises(TypeError, match="not the string"):
        emit(notebook, Noted(text="x"), tags="region:eu")
    assert pending_events(notebook) == ()
