"""Read models and raw bytes: after forgetting, the plaintext is nowhere in the database.

A projection copies the customers' emails, handles `PersonalDataForgotten` by dropping its
copy, and is rebuilt; then the database's own files (SQLite) or the tables' pages
(PostgreSQL, read by the server) are searched for the plaintext and for the key. SQLite
zeroes freed bytes (`secure_delete`); PostgreSQL leaves them in pages until a table is
rewritten, so the test rewrites the key table (`purge_forgotten_keys`) and the read model's,
as the guide tells operators to.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg

from esframework import Envelope, PersonalDataForgotten
from esframework._personal._redaction import REDACTED
from esframework.errors import StoreError
from tests.personal.domain import FORGOTTEN, Customer, CustomerRegistered, EmailChanged
from tests.subscriptions.conftest import Harness, Sql

EMAILS = ("ada.lovelace@example.com", "countess.of.lovelace@example.org")


def _emails(harness: Harness) -> tuple[Any, Any]:
    table = harness.table("emails")
    harness.query(f"CREATE TABLE {table} (customer TEXT PRIMARY KEY, email TEXT NOT NULL)")

    def project(envelope: Envelope[Any], sql: Sql) -> None:
        event = envelope.event
        if isinstance(event, CustomerRegistered):
            sql(f"INSERT INTO {table} VALUES (?, ?)", event.customer_id, event.email)
        elif isinstance(event, EmailChanged):
            sql(f"UPDATE {table} SET email = ? WHERE customer = ?", event.email, event.customer_id)
        elif isinstance(event, PersonalDataForgotten):  # drop the copy
            sql(f"UPDATE {table} SET email = ? WHERE customer = ?", FORGOTTEN, event.subject)

    def reset(sql: Sql) -> None:
        sql(f"DELETE FROM {table}")

    return project, reset


def purge_until_done(store: Any, within: float = 30.0) -> None:
    """Purge forgotten keys, again while a transaction elsewhere may still see one."""
    deadline = time.monotonic() + within
    while True:
        try:
            store.purge_forgotten_keys()
        except StoreError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        else:
            return


def _database_bytes(harness: Harness) -> bytes:
    """Every byte the database keeps: the SQLite files, or PostgreSQL's table pages."""
    store = harness.store
    if not harness.on_postgres:
        path = store.path
        with sqlite3.connect(path) as db:  # fold the write-ahead log into the file
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return Path(path).read_bytes()
    purge_until_done(store)  # the key table rewritten: its old row versions gone
    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        relations = conn.execute(
            "SELECT format('%%I.%%I', n.nspname, c.relname), c.relkind, c.oid FROM pg_class AS c "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 't', 'i')",
            (store.schema,),
        ).fetchall()
        for name, kind, _ in relations:
            if name.endswith(".emails"):  # the read model's part: its old rows rewritten away
                conn.execute(f"VACUUM FULL {name}")
            elif kind == "r":
                conn.execute(f"VACUUM {name}")
        conn.execute("CHECKPOINT")  # every page on disk
        pages = b""
        for _, _, oid in relations:
            (path,) = conn.execute("SELECT pg_relation_filepath(%s)", (oid,)).fetchone()
            if path is not None:
                pages += conn.execute("SELECT pg_read_binary_file(%s)", (path,)).fetchone()[0]
        return pages


def test_after_forgetting_the_plaintext_and_key_are_nowhere(harness: Harness) -> None:
    project, reset = _emails(harness)
    customers = harness.repository(Customer)
    customer = Customer.register("c-1", EMAILS[0])
    customer.change_email(EMAILS[1])
    customers.save(customer, snapshot=True)
    customers.save(Customer.register("c-2", "grace.hopper@example.com"))
    worker = harness.worker(project, reset=reset, batch_size=2)
    worker.run(until_caught_up=True)
    table = harness.table("emails")
    assert harness.query(f"SELECT email FROM {table} WHERE customer = 'c-1'") == [(EMAILS[1],)]
    key = harness.store.personal_data_keys(["c-1"])["c-1"]
    assert key is not None

    harness.store.forget_personal_data("c-1")
    worker.run(until_caught_up=True)  # the projection drops its copy
    rows = harness.query(f"SELECT customer, email FROM {table} ORDER BY 1")
    assert rows == [("c-1", FORGOTTEN), ("c-2", "grace.hopper@example.com")]
    worker.rebuild()  # a replay reads placeholders, and the forgetting again
    assert harness.query(f"SELECT customer, email FROM {table} ORDER BY 1") == rows
    assert customers.load("c-1").email == FORGOTTEN

    stored = _database_bytes(harness)
    assert b"grace.hopper@example.com" in stored  # the search does see table contents
    for plaintext in EMAILS:
        assert plaintext.encode() not in stored
    assert key not in stored


def test_a_parked_events_error_keeps_no_personal_data(harness: Harness) -> None:
    """The handler's message quotes the email; the parked event's error keeps no copy."""
    customers = harness.repository(Customer)
    customers.save(Customer.register("c-1", EMAILS[0], name="Ada \u2028 Lovelace"))

    def refuse(envelope: Envelope[Any], _: Sql) -> None:
        event = envelope.event
        raise ValueError(f"cannot mail {event.email} ({event.name!r}) on plan {event.plan}")

    worker = harness.worker(refuse, max_attempts=1, dead_letter=True)
    worker.run(until_caught_up=True)
    [parked] = harness.store.parked("test")
    assert parked.error.count(REDACTED) == 2, parked.error
    assert "on plan basic" in parked.error  # what is not personal stays, to debug with
    harness.store.forget_personal_data("c-1")
    stored = _database_bytes(harness)
    assert b"on plan basic" in stored  # the search does see the parked event's error
    assert EMAILS[0].encode() not in stored
    assert b"Lovelace" not in stored
