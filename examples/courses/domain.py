"""The courses' domain: tagged events, the decision models that fold them, the rules.

Pure domain code: it imports esframework's decorators and nothing about storage. A course
takes at most `capacity` students and a student at most `limit` courses: a rule no single
aggregate holds (a course does not know the student's other courses), so each decision
reads exactly the events its rule needs, wherever they are stored. Students are an
aggregate, whose tagged events the decision models read too.
"""

from __future__ import annotations

from typing import Self

from esframework import aggregate, applies, decision_model, emit, event, new, tag


# --8<-- [start:events]
@event(name="CourseDefined")
class CourseDefined:
    course_id: str = tag("course")
    title: str
    capacity: int


@event(name="CourseRenamed")
class CourseRenamed:
    course_id: str = tag("course")
    title: str


@event(name="CourseCapacityChanged")
class CourseCapacityChanged:
    course_id: str = tag("course")
    capacity: int


@event(name="StudentSubscribed")
class StudentSubscribed:
    course_id: str = tag("course")
    student_id: str = tag("student")


@event(name="StudentRegistered")  # emitted by the Student aggregate, tagged all the same
class StudentRegistered:
    student_id: str = tag("student")
    name: str


# --8<-- [end:events]


# --8<-- [start:models]
@decision_model
class CourseCapacity:
    """A course's capacity and the students subscribed to it."""

    course_id: str
    capacity: int | None = None  # None: no such course
    students: int = 0

    @applies(CourseDefined)
    def _defined(self, e: CourseDefined) -> None:
        self.capacity = e.capacity

    @applies(CourseCapacityChanged)
    def _changed(self, e: CourseCapacityChanged) -> None:
        self.capacity = e.capacity

    @applies(StudentSubscribed)
    def _subscribed(self, _: StudentSubscribed) -> None:
        self.students += 1


@decision_model
class StudentCourses:
    """Whether a student is registered, and the courses they subscribed to."""

    student_id: str
    registered: bool = False
    courses: frozenset[str] = frozenset()

    @applies(StudentRegistered)
    def _registered(self, _: StudentRegistered) -> None:
        self.registered = True

    @applies(StudentSubscribed)
    def _subscribed(self, e: StudentSubscribed) -> None:
        self.courses |= {e.course_id}


def subscribe(course: CourseCapacity, student: StudentCourses, *, limit: int) -> list[object]:
    """Subscribe the student to the course, within the course's and the student's limits."""
    if course.capacity is None:
        raise CourseNotFoundError(course.course_id)
    if not student.registered:
        raise StudentNotFoundError(student.student_id)
    if course.course_id in student.courses:
        raise AlreadySubscribedError(student.student_id, course.course_id)
    if course.students >= course.capacity:
        raise CourseFullError(course.course_id, course.capacity)
    if len(student.courses) >= limit:
        raise StudentLimitError(student.student_id, limit)
    return [StudentSubscribed(course_id=course.course_id, student_id=student.student_id)]


# --8<-- [end:models]


@decision_model
class CourseTitle:
    """Whether a course is defined, and its title: renaming reads nothing else, so it never
    conflicts with subscriptions."""

    course_id: str
    defined: bool = False
    title: str = ""

    @applies(CourseDefined)
    def _defined(self, e: CourseDefined) -> None:
        self.defined, self.title = True, e.title

    @applies(CourseRenamed)
    def _renamed(self, e: CourseRenamed) -> None:
        self.title = e.title


def define_course(course: CourseTitle, *, title: str, capacity: int) -> list[object]:
    if course.defined:
        raise CourseExistsError(course.course_id)
    _check_capacity(capacity)
    return [CourseDefined(course_id=course.course_id, title=title, capacity=capacity)]


def rename_course(course: CourseTitle, *, title: str) -> list[object]:
    if not course.defined:
        raise CourseNotFoundError(course.course_id)
    if not title.strip():
        raise CoursesError("a course's title cannot be empty")
    return [] if title == course.title else [CourseRenamed(course_id=course.course_id, title=title)]


def change_capacity(course: CourseCapacity, *, capacity: int) -> list[object]:
    """Change a course's capacity; never below the students it has."""
    if course.capacity is None:
        raise CourseNotFoundError(course.course_id)
    _check_capacity(capacity)
    if capacity < course.students:
        raise CoursesError(
            f"course {course.course_id!r} has {course.students} students: "
            f"its capacity cannot be {capacity}"
        )
    if capacity == course.capacity:
        return []
    return [CourseCapacityChanged(course_id=course.course_id, capacity=capacity)]


def _check_capacity(capacity: int) -> None:
    if capacity < 1:
        raise CoursesError(f"a course's capacity is at least 1, got {capacity}")


# The second decision: a username is unique.
# --8<-- [start:username]
@event(name="UsernameClaimed")
class UsernameClaimed:
    username: str = tag("username")
    student_id: str = tag("student")


@decision_model
class Username:
    """Who holds a username, if anyone."""

    username: str
    holder: str | None = None

    @applies(UsernameClaimed)
    def _claimed(self, e: UsernameClaimed) -> None:
        self.holder = e.student_id


def claim_username(username: Username, *, student_id: str) -> list[object]:
    if not username.username.strip():
        raise CoursesError("a username cannot be empty")
    if username.holder == student_id:
        return []  # claimed already: asking again changes nothing
    if username.holder is not None:
        raise UsernameTakenError(username.username)
    return [UsernameClaimed(username=username.username, student_id=student_id)]


# --8<-- [end:username]


@aggregate(stream_type="Student")
class Student:
    """A student: an ordinary aggregate, whose tagged events decision models read too."""

    name: str = ""

    @classmethod
    def register(cls, student_id: str, *, name: str) -> Self:
        student = new(cls, student_id)
        emit(student, StudentRegistered(student_id=student_id, name=name))
        return student

    @applies(StudentRegistered)
    def _registered(self, e: StudentRegistered) -> None:
        self.name = e.name


class CoursesError(Exception):
    """A command broke one of the rules; nothing was changed."""


class CourseNotFoundError(CoursesError):
    def __init__(self, course_id: str) -> None:
        super().__init__(f"no course {course_id!r}")


class CourseExistsError(CoursesError):
    def __init__(self, course_id: str) -> None:
        super().__init__(f"course {course_id!r} is defined already")


class StudentNotFoundError(CoursesError):
    def __init__(self, student_id: str) -> None:
        super().__init__(f"no student {student_id!r}: register them first")


class StudentExistsError(CoursesError):
    def __init__(self, student_id: str) -> None:
        super().__init__(f"student {student_id!r} is registered already")


class AlreadySubscribedError(CoursesError):
    def __init__(self, student_id: str, course_id: str) -> None:
        super().__init__(f"student {student_id!r} is subscribed to {course_id!r} already")


class CourseFullError(CoursesError):
    def __init__(self, course_id: str, capacity: int) -> None:
        super().__init__(f"course {course_id!r} is full: its capacity is {capacity}")


class StudentLimitError(CoursesError):
    def __init__(self, student_id: str, limit: int) -> None:
        super().__init__(f"student {student_id!r} has {limit} courses, the most one may take")


class UsernameTakenError(CoursesError):
    def __init__(self, username: str) -> None:
        super().__init__(f"username {username!r} is taken")
