"""The courses' application service: each command is one decision over the store."""

from __future__ import annotations

import functools

import attrs

from esframework import ConcurrencyError, Decisions, EventStore, Repository
from examples.courses.domain import (
    CourseCapacity,
    CourseNotFoundError,
    CourseTitle,
    Student,
    StudentCourses,
    StudentExistsError,
    StudentNotFoundError,
    Username,
    change_capacity,
    claim_username,
    define_course,
    rename_course,
    subscribe,
)

DEFAULT_LIMIT = 3
"""The most courses one student may take, unless the service is given another limit."""


@attrs.frozen
class CourseView:
    course_id: str
    title: str
    capacity: int
    students: int


class Courses:
    """Defines and changes courses, registers students and subscribes them.

    Every command reads its decision models, checks its rules and saves on the condition
    that nothing it read has changed; on a conflict it runs again on the fresh state (up to
    `attempts` times), so the rules hold however many run at once.

    Args:
        store: Where the events live.
        limit: The most courses one student may take.
        attempts: How often a command runs before a conflict is given up on.
    """

    def __init__(
        self, store: EventStore, *, limit: int = DEFAULT_LIMIT, attempts: int = 20
    ) -> None:
        self.store = store
        self.limit = limit
        self.decisions = Decisions(store, attempts=attempts)
        self.students = Repository(Student, store=store)

    # --8<-- [start:commands]
    def define(self, course_id: str, *, title: str, capacity: int) -> None:
        decide = functools.partial(define_course, title=title, capacity=capacity)
        self.decisions.decide(decide, CourseTitle(course_id))

    def rename(self, course_id: str, *, title: str) -> None:
        self.decisions.decide(functools.partial(rename_course, title=title), CourseTitle(course_id))

    def change_capacity(self, course_id: str, *, capacity: int) -> None:
        decide = functools.partial(change_capacity, capacity=capacity)
        self.decisions.decide(decide, CourseCapacity(course_id))

    def subscribe(self, student_id: str, course_id: str) -> None:
        decide = functools.partial(subscribe, limit=self.limit)
        self.decisions.decide(decide, CourseCapacity(course_id), StudentCourses(student_id))

    # --8<-- [end:commands]

    def claim_username(self, student_id: str, username: str) -> None:
        def decide(name: Username, student: StudentCourses) -> list[object]:
            if not student.registered:  # a username belongs to someone registered
                raise StudentNotFoundError(student_id)
            return claim_username(name, student_id=student_id)

        self.decisions.decide(decide, Username(username), StudentCourses(student_id))

    def register(self, student_id: str, *, name: str) -> None:
        try:
            self.students.save(Student.register(student_id, name=name))
        except ConcurrencyError as error:  # a new student expects no stream at all
            raise StudentExistsError(student_id) from error

    def course(self, course_id: str) -> CourseView:
        title, capacity = self.decisions.read(CourseTitle(course_id), CourseCapacity(course_id))
        if capacity.capacity is None:
            raise CourseNotFoundError(course_id)
        return CourseView(course_id, title.title, capacity.capacity, capacity.students)

    def student(self, student_id: str) -> StudentCourses:
        (student,) = self.decisions.read(StudentCourses(student_id))
        if not student.registered:
            raise StudentNotFoundError(student_id)
        return student
