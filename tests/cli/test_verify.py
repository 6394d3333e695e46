"""`verify` on SQLite and PostgreSQL: a sound store passes; what is wrong is found."""

from __future__ import annotations

import uuid

from esframework import NewEvent
from esframework._aggregates import aggregate_type
from tests.cli.app import Account
from tests.cli.conftest import Target

APP = ("--app", "tests.cli.app")


def test_a_sound_store_passes(target: Target) -> None:
    target.accounts(3, deposits=2)  # versions 1 to 3: each account snapshotted at 3
    result = target.run("verify", *APP)
    assert result.code == 0, result.out + result.err
    assert result.out == "checked 9 events in 3 streams and 3 snapshots: no problems\n"
    summary = target.run("verify", "--json", *APP).json()[-1]
    assert summary == {"events": 9, "streams": 3, "snapshots": 3, "problems": 0, "notes": []}


def test_without_the_app_nothing_is_decoded_and_it_says_so(target: Target) -> None:
    target.accounts(1)
    result = target.run("verify")
    assert result.code == 0
    assert "note: events and snapshots were not decoded" in result.out


def test_an_event_inserted_by_hand_that_cannot_be_decoded_is_reported(target: Target) -> None:
    target.accounts(2, deposits=1)
    # Straight into the table, as a faulty import would: the amount is not an int.
    target.sql(
        "INSERT INTO {s}events (id, stream_id, stream_type, event_type, schema_version, "
        "event_data, metadata, version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        str(uuid.uuid4()),
        "account-1",
        "CliAccount",
        "CliDeposited",
        2,
        '{"amount": "lots", "currency": "EUR"}',
        "{}",
        3,
        "2026-01-01T00:00:00+00:00",
    )
    (position,) = [e.position for e in target.store.read_all() if e.version == 3]
    result = target.run("verify", *APP)
    assert result.code == 3, result.out + result.err
    problem, summary = result.out.splitlines()
    assert problem.startswith(
        f"decoding: stream 'account-1' version 3 position {position}: "
        "CliDeposited cannot be decoded: CorruptEventError"
    )
    assert "amount" in problem
    assert summary == "checked 5 events in 2 streams and 0 snapshots: 1 problem(s)"
    (found, _) = target.run("verify", "--json", *APP).json()
    assert (found["check"], found["stream_id"], found["version"], found["position"]) == (
        "decoding",
        "account-1",
        3,
        position,
    )
    assert target.run("verify").code == 0  # without the app's classes, the JSON is fine


def test_an_event_of_an_unknown_type_is_reported(target: Target) -> None:
    target.store.append("odd", "CliAccount", [_new("NoSuchType")], expected_version=0)
    result = target.run("verify", *APP)
    assert result.code == 3
    assert "decoding: stream 'odd' version 1 position" in result.out
    assert "UnknownEventTypeError" in result.out


def test_snapshots_that_do_not_decode_or_match_their_fingerprint_are_reported(
    target: Target,
) -> None:
    target.accounts(3, deposits=0)
    fingerprint = aggregate_type(Account).state_schema
    insert = (
        "INSERT INTO {s}snapshots (stream_id, stream_type, snapshot_data, version, "
        "state_schema, created_at) VALUES (?, ?, ?, ?, ?, ?)"
    )
    now = "2026-01-01T00:00:00+00:00"
    target.sql(insert, "account-0", "CliAccount", '{"balance": "x"}', 1, fingerprint, now)
    target.sql(insert, "account-1", "CliAccount", '{"balance": 1}', 1, "0:stale", now)
    target.sql(insert, "account-2", "CliAccount", '{"balance": 1}', 4, fingerprint, now)
    result = target.run("verify", *APP)
    assert result.code == 3
    lines = result.out.splitlines()
    assert lines[0].startswith(
        "snapshots: stream 'account-0' version 1 position -: state cannot be decoded"
    )
    assert lines[1].startswith(
        "snapshots: stream 'account-1' version 1 position -: fingerprint '0:stale' is not Account's"
    )
    assert lines[2] == (
        "snapshots: stream 'account-2' version 4 position -: snapshot at version 4, past the "
        "stream's 1"
    )
    assert lines[3] == "checked 3 events in 3 streams and 3 snapshots: 3 problem(s)"


def test_a_missing_version_is_reported_on_sqlite(target: Target) -> None:
    """PostgreSQL's insert trigger refuses a version that skips one; SQLite has no such
    trigger, so a faulty import can leave a gap there."""
    if target.kind != "sqlite":
        return
    target.accounts(1, deposits=1)
    target.sql(
        "INSERT INTO events (id, stream_id, stream_type, event_type, schema_version, "
        "event_data, version, created_at) VALUES (?, 'account-0', 'CliAccount', "
        "'CliDeposited', 2, ?, 5, ?)",
        str(uuid.uuid4()),
        '{"amount": 1, "currency": "EUR"}',
        "2026-01-01T00:00:00+00:00",
    )
    result = target.run("verify", *APP)
    assert result.code == 3
    assert result.out.splitlines()[0] == (
        "versions: stream 'account-0' version 5 position 3: versions 3 to 4 are missing"
    )


def _new(event_type: str) -> NewEvent:
    return NewEvent(uuid.uuid4(), event_type, 1, "{}")


def test_a_snapshot_of_a_stream_with_no_events_is_reported(target: Target) -> None:
    target.sql(
        "INSERT INTO {s}snapshots (stream_id, stream_type, snapshot_data, version, "
        "state_schema, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        "ghost",
        "CliAccount",
        "{}",
        2,
        aggregate_type(Account).state_schema,
        "2026-01-01T00:00:00+00:00",
    )
    result = target.run("verify")
    assert result.code == 3
    assert result.out.splitlines()[0] == (
        "snapshots: stream 'ghost' version 2 position -: a snapshot of a stream with no events"
    )
