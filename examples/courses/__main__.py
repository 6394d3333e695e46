"""The courses' command line: `python -m examples.courses --help`.

Runs on the SQLite file `courses.db` by default, or on PostgreSQL with `--dsn` or the
ESFRAMEWORK_DSN environment variable, with the same behaviour.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import uuid
from collections.abc import Sequence
from typing import Any, NoReturn

from esframework import EsframeworkError, SQLiteEventStore, SubscriptionStore
from examples._cli import (
    StoreNotOpenedError,
    check_store,
    parse_args,
    quiet_library_logs,
    stop_writing,
)
from examples.courses import projections
from examples.courses.app import DEFAULT_LIMIT, Courses
from examples.courses.domain import CoursesError


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(_parser(), argv)
    quiet_library_logs()
    try:
        check_store(args.db, args.dsn, creates=args.creates, hint=NO_DATABASE)
        store = open_store(args.db, args.dsn, args.schema)
        try:
            args.run(Courses(store, limit=args.limit), store, args)
            sys.stdout.flush()  # a reader that went away shows here, not at exit
        finally:
            store.close()
    except (CoursesError, EsframeworkError, StoreNotOpenedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        stop_writing()
        return 1
    except sqlite3.Error as error:
        print(f"error: {args.db}: {error}", file=sys.stderr)
        return 1
    return 0


SCHEMA = "courses"

NO_DATABASE = "define a course (or run the demo) first, or name the file with --db"


def open_store(
    db: str = "courses.db", dsn: str | None = None, schema: str = SCHEMA
) -> SubscriptionStore[Any]:
    """PostgreSQL (in `schema`) when a DSN is given, else the SQLite file."""
    if dsn:
        from esframework.postgres import PostgresEventStore

        store = PostgresEventStore(dsn, schema=schema)
        store.migrate()
        return store
    return SQLiteEventStore(db)


def _define(courses: Courses, _: Any, args: argparse.Namespace) -> None:
    courses.define(args.course, title=args.title, capacity=args.capacity)
    _print_course(courses, args.course)


def _rename(courses: Courses, _: Any, args: argparse.Namespace) -> None:
    courses.rename(args.course, title=args.title)
    _print_course(courses, args.course)


def _capacity(courses: Courses, _: Any, args: argparse.Namespace) -> None:
    courses.change_capacity(args.course, capacity=args.capacity)
    _print_course(courses, args.course)


def _register(courses: Courses, _: Any, args: argparse.Namespace) -> None:
    courses.register(args.student, name=args.name)
    _print_student(courses, args.student)


def _subscribe(courses: Courses, _: Any, args: argparse.Namespace) -> None:
    courses.subscribe(args.student, args.course)
    _print_student(courses, args.student)
    _print_course(courses, args.course)


def _claim(courses: Courses, _: Any, args: argparse.Namespace) -> None:
    courses.claim_username(args.student, args.username)
    print(f"{args.username}: {args.student}")


def _course(courses: Courses, _: Any, args: argparse.Namespace) -> None:
    _print_course(courses, args.course)


def _student(courses: Courses, _: Any, args: argparse.Namespace) -> None:
    _print_student(courses, args.student)


def _overview(_: Courses, store: SubscriptionStore[Any], __: argparse.Namespace) -> None:
    projections.build(store).run_until_caught_up()
    for course, title, capacity, students in projections.overview(store):
        print(f"  {course}: {title!r} {students}/{capacity}")


def _activity(_: Courses, store: SubscriptionStore[Any], __: argparse.Namespace) -> None:
    projections.build(store).run_until_caught_up()
    for position, stream, event, tags in projections.activity(store):
        print(f"  #{position} {stream} {event} [{tags}]")


def _demo(courses: Courses, store: SubscriptionStore[Any], args: argparse.Namespace) -> None:
    run = uuid.uuid4().hex[:6]
    maths, poetry = f"maths-{run}", f"poetry-{run}"
    ann, ben, cat = (f"{name}-{run}" for name in ("ann", "ben", "cat"))
    print(f"Defining {maths} (2 places) and {poetry} (1 place); registering {ann}, {ben}, {cat}")
    courses.define(maths, title="Maths", capacity=2)
    courses.define(poetry, title="Poetry", capacity=1)
    for student, name in ((ann, "Ann"), (ben, "Ben"), (cat, "Cat")):
        courses.register(student, name=name)
    for student, course in ((ann, maths), (ann, poetry), (ben, maths), (ben, poetry)):
        print(f"{student} subscribes to {course} ...")
        try:
            courses.subscribe(student, course)
        except CoursesError as refused:
            print(f"  refused: {refused}")
    print(f"{maths} gets a third place and a new title; {cat} subscribes")
    courses.change_capacity(maths, capacity=3)
    courses.rename(maths, title="Algebra")
    courses.subscribe(cat, maths)
    print(f"{ann} claims the username {ann}-u; {ben} tries the same one ...")
    courses.claim_username(ann, f"{ann}-u")
    try:
        courses.claim_username(ben, f"{ann}-u")
    except CoursesError as refused:
        print(f"  refused: {refused}")
    print("Courses (read model):")
    projections.build(store).run_until_caught_up()
    for course, title, capacity, students in projections.overview(store):
        if course.endswith(run):
            print(f"  {course}: {title!r} {students}/{capacity}")
    print("The events, in the global order (aggregate and decision events alike):")
    for position, stream, event, tags in projections.activity(store):
        if run in tags:
            print(f"  #{position} {stream} {event} [{tags}]")
    del args


def _print_course(courses: Courses, course_id: str) -> None:
    course = courses.course(course_id)
    print(f"{course_id}: {course.title!r} {course.students}/{course.capacity} students")


def _print_student(courses: Courses, student_id: str) -> None:
    student = courses.student(student_id)
    listed = ", ".join(sorted(student.courses)) or "no courses"
    print(f"{student_id}: {listed}")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"not a positive whole number: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


class _Parser(argparse.ArgumentParser):
    """Reports a bad command line in one line, like every other error of the CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m examples.courses",
        description="Course subscriptions kept with esframework's decision models.",
    )
    parser.add_argument("--db", default="courses.db", help="SQLite file (default: courses.db)")
    parser.add_argument(
        "--dsn",
        default=os.environ.get("ESFRAMEWORK_DSN"),
        help="PostgreSQL DSN; overrides --db (default: $ESFRAMEWORK_DSN)",
    )
    # Not the bank's `public`: one schema holds one application's events, and the courses'
    # projections would stop at the bank's, whose types they do not know.
    parser.add_argument("--schema", default=SCHEMA, help=f"PostgreSQL schema (default: {SCHEMA})")
    parser.add_argument(
        "--limit",
        type=_positive,
        default=DEFAULT_LIMIT,
        help=f"the most courses a student may take (default: {DEFAULT_LIMIT})",
    )
    # Only the commands that start a story may create the database file.
    parser.set_defaults(creates=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("demo", help="run a scripted story end to end").set_defaults(
        run=_demo, creates=True
    )

    define = commands.add_parser("define", help="define a course")
    define.add_argument("course")
    define.add_argument("title")
    define.add_argument("capacity", type=_positive)
    define.set_defaults(run=_define, creates=True)

    rename = commands.add_parser("rename", help="rename a course")
    rename.add_argument("course")
    rename.add_argument("title")
    rename.set_defaults(run=_rename)

    capacity = commands.add_parser("capacity", help="change a course's capacity")
    capacity.add_argument("course")
    capacity.add_argument("capacity", type=_positive)
    capacity.set_defaults(run=_capacity)

    register = commands.add_parser("register", help="register a student")
    register.add_argument("student")
    register.add_argument("name")
    register.set_defaults(run=_register, creates=True)

    subscribe = commands.add_parser("subscribe", help="subscribe a student to a course")
    subscribe.add_argument("student")
    subscribe.add_argument("course")
    subscribe.set_defaults(run=_subscribe)

    claim = commands.add_parser("claim", help="claim a (unique) username for a student")
    claim.add_argument("student")
    claim.add_argument("username")
    claim.set_defaults(run=_claim)

    for name, run, text in (
        ("course", _course, "show a course"),
        ("student", _student, "show a student's courses"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(name)
        command.set_defaults(run=run)
    commands.add_parser("courses", help="list the courses (read model)").set_defaults(run=_overview)
    commands.add_parser(
        "activity", help="list the courses' events in the global order (read model)"
    ).set_defaults(run=_activity)
    return parser


if __name__ == "__main__":
    sys.exit(main())
