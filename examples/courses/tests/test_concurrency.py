"""Many writers at once, real threads: the rules hold, counted from the stored events."""

from __future__ import annotations

import itertools
import threading
from collections import Counter

from esframework import EventStore, StoredEvent
from examples.courses.app import Courses
from examples.courses.domain import CoursesError

WRITERS = 20
COURSES = {"c1": 2, "c2": 3, "c3": 1}
STUDENTS = [f"s{i}" for i in range(10)]
LIMIT = 2


def stored(store: EventStore, event_type: str) -> list[StoredEvent]:
    return [e for e in store.iter_all() if e.event_type == event_type]


def test_concurrent_subscriptions_never_break_a_limit(store: EventStore) -> None:
    setup = Courses(store, limit=LIMIT)
    for course, capacity in COURSES.items():
        setup.define(course, title=course, capacity=capacity)
    for student in STUDENTS:
        setup.register(student, name=student)
    # Every writer tries every course for two students: far more requests than places.
    requests = list(itertools.product(STUDENTS, COURSES))
    start = threading.Barrier(WRITERS)
    refused: list[CoursesError] = []
    failures: list[BaseException] = []

    def writer(index: int) -> None:
        courses = Courses(store, limit=LIMIT, attempts=200)
        start.wait()
        for student, course in requests[index::WRITERS] + requests[: index % 3]:
            try:
                courses.subscribe(student, course)
            except CoursesError as error:
                refused.append(error)
            except BaseException as error:  # reported below: a thread cannot fail the test
                failures.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    subscriptions = stored(store, "StudentSubscribed")
    pairs = [tuple(sorted(e.tags)) for e in subscriptions]
    per_course = Counter(t for tags in pairs for t in tags if t.startswith("course:"))
    per_student = Counter(t for tags in pairs for t in tags if t.startswith("student:"))
    assert len(set(pairs)) == len(pairs)  # no student twice in a course
    for course, capacity in COURSES.items():
        assert per_course[f"course:{course}"] == capacity  # full, and not over
    assert max(per_student.values()) <= LIMIT
    assert refused  # the losers were told why
