"""The course rules, one command at a time, on every store."""

from __future__ import annotations

import pytest

from esframework import EventStore
from examples.courses.app import Courses
from examples.courses.domain import (
    AlreadySubscribedError,
    CourseExistsError,
    CourseFullError,
    CourseNotFoundError,
    CoursesError,
    StudentExistsError,
    StudentLimitError,
    StudentNotFoundError,
    UsernameTakenError,
)


@pytest.fixture
def courses(store: EventStore) -> Courses:
    courses = Courses(store, limit=2)
    courses.define("maths", title="Maths", capacity=2)
    for student in ("ann", "ben", "cat"):
        courses.register(student, name=student.title())
    return courses


def test_a_course_takes_students_up_to_its_capacity(courses: Courses) -> None:
    courses.subscribe("ann", "maths")
    courses.subscribe("ben", "maths")
    with pytest.raises(CourseFullError, match="'maths' is full: its capacity is 2"):
        courses.subscribe("cat", "maths")
    assert courses.course("maths").students == 2


def test_a_student_takes_courses_up_to_the_limit(courses: Courses) -> None:
    for course in ("art", "poetry", "chess"):
        courses.define(course, title=course.title(), capacity=5)
    courses.subscribe("ann", "art")
    courses.subscribe("ann", "poetry")
    with pytest.raises(StudentLimitError, match="'ann' has 2 courses"):
        courses.subscribe("ann", "chess")
    assert courses.student("ann").courses == {"art", "poetry"}


def test_subscribing_needs_a_course_a_student_and_no_earlier_subscription(
    courses: Courses,
) -> None:
    with pytest.raises(CourseNotFoundError):
        courses.subscribe("ann", "nope")
    with pytest.raises(StudentNotFoundError):
        courses.subscribe("zed", "maths")
    courses.subscribe("ann", "maths")
    with pytest.raises(AlreadySubscribedError):
        courses.subscribe("ann", "maths")


def test_a_raised_capacity_takes_more_students(courses: Courses) -> None:
    courses.subscribe("ann", "maths")
    courses.subscribe("ben", "maths")
    courses.change_capacity("maths", capacity=3)
    courses.subscribe("cat", "maths")
    assert courses.course("maths").capacity == 3


def test_a_capacity_is_never_below_the_students(courses: Courses) -> None:
    courses.subscribe("ann", "maths")
    courses.subscribe("ben", "maths")
    with pytest.raises(CoursesError, match="has 2 students"):
        courses.change_capacity("maths", capacity=1)
    with pytest.raises(CoursesError, match="at least 1"):
        courses.define("empty", title="Empty", capacity=0)


def test_renaming_keeps_the_subscriptions(courses: Courses) -> None:
    courses.subscribe("ann", "maths")
    courses.rename("maths", title="Algebra")
    course = courses.course("maths")
    assert (course.title, course.students, course.capacity) == ("Algebra", 1, 2)
    with pytest.raises(CourseNotFoundError):
        courses.rename("nope", title="X")


def test_a_course_and_a_student_are_defined_once(courses: Courses) -> None:
    with pytest.raises(CourseExistsError):
        courses.define("maths", title="Again", capacity=9)
    with pytest.raises(StudentExistsError):
        courses.register("ann", name="Ann again")


def test_a_username_has_one_holder(courses: Courses) -> None:
    courses.claim_username("ann", "annie")
    courses.claim_username("ann", "annie")  # asking again changes nothing
    with pytest.raises(UsernameTakenError, match="'annie' is taken"):
        courses.claim_username("ben", "annie")
    courses.claim_username("ben", "benny")


def test_only_registered_students_claim_or_show(courses: Courses) -> None:
    with pytest.raises(StudentNotFoundError, match="no student 'nobody'"):
        courses.claim_username("nobody", "nobo")
    with pytest.raises(StudentNotFoundError, match="no student 'nobody'"):
        courses.student("nobody")
    courses.claim_username("ann", "nobo")  # the failed claim left the name free
