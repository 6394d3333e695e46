"""Type-checked, not run: decision models written like the docs need no ignores and no plugin.

`mypy --strict` checks this file in .ci/run; `assert_type` fails the check if an inferred type
drifts. It is the course-subscription example of the docs, in one screen.
"""

from __future__ import annotations

import functools
from typing import assert_type

from esframework import (
    AppendResult,
    AsyncDecisions,
    AsyncInMemoryEventStore,
    Decisions,
    InMemoryEventStore,
    Query,
    QueryItem,
    QueryResult,
    applies,
    decision_model,
    event,
    tag,
)


@event(name="TypingCourseDefined")
class CourseDefined:
    course_id: str = tag("course")
    capacity: int


@event(name="TypingStudentSubscribed")
class StudentSubscribed:
    course_id: str = tag("course")
    student_id: str = tag("student")


@decision_model
class CourseCapacity:
    course_id: str
    capacity: int | None = None
    students: int = 0

    @applies(CourseDefined)
    def _defined(self, e: CourseDefined) -> None:
        self.capacity = e.capacity

    @applies(StudentSubscribed)
    def _subscribed(self, _: StudentSubscribed) -> None:
        self.students += 1


@decision_model(name="TypingStudentLimit")
class StudentLimit:
    student_id: str
    courses: int = 0

    @applies(StudentSubscribed)
    def _subscribed(self, _: StudentSubscribed) -> None:
        self.courses += 1


def subscribe(course: CourseCapacity, student: StudentLimit, *, limit: int) -> list[object]:
    if course.capacity is None or course.students >= course.capacity or student.courses >= limit:
        return []
    return [StudentSubscribed(course_id=course.course_id, student_id=student.student_id)]


def sync_use() -> None:
    decisions = Decisions(InMemoryEventStore())
    course, student = decisions.read(CourseCapacity("c1"), StudentLimit("s7"))
    assert_type(course, CourseCapacity)
    assert_type(student, StudentLimit)
    assert_type(course.capacity, int | None)
    events = subscribe(course, student, limit=3)
    assert_type(decisions.save(course, student, events=events), AppendResult | None)
    decided = decisions.decide(
        functools.partial(subscribe, limit=3), CourseCapacity("c1"), StudentLimit("s7")
    )
    assert_type(decided, AppendResult | None)
    assert_type(
        decisions.decide(
            lambda c, s: subscribe(c, s, limit=3), CourseCapacity("c1"), StudentLimit("s7")
        ),
        AppendResult | None,
    )
    (alone,) = decisions.read(CourseCapacity("c2"))
    assert_type(alone, CourseCapacity)
    subscribed = StudentSubscribed(course_id="c1", student_id="s7")
    assert_type(subscribed.course_id, str)
    result = decisions.store.read_query(
        Query.of(QueryItem(types=["TypingStudentSubscribed"], tags=["course:c1"]))
    )
    assert_type(result, QueryResult)


async def async_use() -> None:
    decisions = AsyncDecisions(AsyncInMemoryEventStore())
    course, student = await decisions.read(CourseCapacity("c1"), StudentLimit("s7"))
    assert_type(course, CourseCapacity)
    assert_type(student, StudentLimit)
    decided = await decisions.decide(
        functools.partial(subscribe, limit=3), CourseCapacity("c1"), StudentLimit("s7")
    )
    assert_type(decided, AppendResult | None)
