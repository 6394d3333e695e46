"""The courses' read model, kept by a subscription over the courses' events.

Decision events and the Student aggregate's events reach it in one global order, like any
other events: the `courses_activity` table lists them in the order they were delivered.
"""

from __future__ import annotations

from typing import Any

from esframework import Envelope, Runner, Subscription, SubscriptionStore, execute_sql
from examples.courses.domain import (
    CourseCapacityChanged,
    CourseDefined,
    CourseRenamed,
    StudentRegistered,
    StudentSubscribed,
    UsernameClaimed,
)

TABLES = {
    "courses_overview": "course TEXT PRIMARY KEY, title TEXT NOT NULL, "
    "capacity INTEGER NOT NULL, students INTEGER NOT NULL",
    "courses_activity": "position BIGINT PRIMARY KEY, stream TEXT NOT NULL, "
    "event TEXT NOT NULL, tags TEXT NOT NULL",
}

EVENTS = (
    CourseDefined,
    CourseRenamed,
    CourseCapacityChanged,
    StudentRegistered,
    StudentSubscribed,
    UsernameClaimed,
)


def create_tables(store: SubscriptionStore[Any]) -> None:
    with store.transaction() as connection:
        for name, columns in TABLES.items():
            execute_sql(connection, f"CREATE TABLE IF NOT EXISTS {name} ({columns})")


class CoursesProjection:
    """Keeps each course's title, capacity and number of students, and the activity log."""

    def handle(self, envelope: Envelope[Any], connection: Any) -> None:
        event = envelope.event
        if isinstance(event, CourseDefined):
            execute_sql(
                connection,
                "INSERT INTO courses_overview (course, title, capacity, students) "
                "VALUES (%s, %s, %s, 0)",
                (event.course_id, event.title, event.capacity),
            )
        elif isinstance(event, CourseRenamed):
            self._set(connection, event.course_id, "title = %s", event.title)
        elif isinstance(event, CourseCapacityChanged):
            self._set(connection, event.course_id, "capacity = %s", event.capacity)
        elif isinstance(event, StudentSubscribed):
            self._set(connection, event.course_id, "students = students + %s", 1)
        execute_sql(
            connection,
            "INSERT INTO courses_activity (position, stream, event, tags) VALUES (%s, %s, %s, %s)",
            (envelope.position, envelope.stream_id, repr(event), " ".join(envelope.tags)),
        )

    def _set(self, connection: Any, course: str, assignment: str, value: object) -> None:
        execute_sql(
            connection,
            f"UPDATE courses_overview SET {assignment} WHERE course = %s",
            (value, course),
        )

    def reset(self, connection: Any) -> None:
        for name in TABLES:
            execute_sql(connection, f"DELETE FROM {name}")


def subscription() -> Subscription[Any]:
    return Subscription(name="courses-overview", handler=CoursesProjection(), event_types=EVENTS)


def build(store: SubscriptionStore[Any]) -> Runner[Any]:
    """The runner of the courses' projection over `store`, its tables created."""
    create_tables(store)
    return Runner(store, [subscription()])


def overview(store: SubscriptionStore[Any]) -> list[tuple[str, str, int, int]]:
    with store.transaction() as connection:
        rows = execute_sql(
            connection,
            "SELECT course, title, capacity, students FROM courses_overview ORDER BY course",
        )
    return [(str(c), str(t), int(cap), int(n)) for c, t, cap, n in rows]


def activity(store: SubscriptionStore[Any]) -> list[tuple[int, str, str, str]]:
    with store.transaction() as connection:
        rows = execute_sql(
            connection,
            "SELECT position, stream, event, tags FROM courses_activity ORDER BY position",
        )
    return [(int(p), str(s), str(e), str(t)) for p, s, e, t in rows]
