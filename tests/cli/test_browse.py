"""`streams`, `show` and `tail` on SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import time
import uuid

from esframework import NewEvent, Repository
from tests.cli.app import Account
from tests.cli.conftest import Target


def test_streams_lists_each_stream_with_its_version_and_last_write(target: Target) -> None:
    target.accounts(3, deposits=2)
    result = target.run("streams", "--json")
    assert result.code == 0, result.err
    rows = result.json()
    assert [r["stream_id"] for r in rows] == ["account-0", "account-1", "account-2"]
    assert {r["version"] for r in rows} == {3}
    assert {r["stream_type"] for r in rows} == {"CliAccount"}
    assert all(r["last_recorded_at"] for r in rows)

    text = target.run("streams")
    assert text.code == 0
    assert text.out.splitlines()[0].split() == ["STREAM", "TYPE", "VERSION", "LAST", "WRITE"]
    assert "account-1  CliAccount  3" in text.out


def test_streams_pages_and_filters(target: Target) -> None:
    target.accounts(5, deposits=0)
    target.store.append("other-1", "Other", [_new("CliOpened")], expected_version=0)
    page = target.run("streams", "--json", "--limit", "2").json()
    assert [r["stream_id"] for r in page] == ["account-0", "account-1"]
    more = target.run("streams", "--json", "--limit", "2", "--after", "account-1").json()
    assert [r["stream_id"] for r in more] == ["account-2", "account-3"]
    typed = target.run("streams", "--json", "--stream-type", "Other").json()
    assert [r["stream_id"] for r in typed] == ["other-1"]
    prefixed = target.run("streams", "--json", "--prefix", "account-4").json()
    assert [r["stream_id"] for r in prefixed] == ["account-4"]
    assert "(more after --after 'account-1')" in target.run("streams", "--limit", "2").out


def test_show_prints_the_stored_events_and_decodes_them_with_the_app(target: Target) -> None:
    correlation = uuid.uuid4()
    old = NewEvent(
        uuid.uuid4(),
        "CliDeposited",
        1,
        '{"amount": 7}',
        f'{{"correlation_id": "{correlation}", "causation_id": "{correlation}"}}',
    )
    target.store.append("acc", "CliAccount", [_new("CliOpened"), old], expected_version=0)
    stored = target.run("show", "acc", "--json")
    assert stored.code == 0, stored.err
    first, second = stored.json()
    assert (first["version"], second["version"]) == (1, 2)
    assert second["position"] > first["position"] > 0
    assert second["event_type"] == "CliDeposited"
    assert second["schema_version"] == 1
    assert second["data"] == {"amount": 7}
    assert second["metadata"]["correlation_id"] == str(correlation)
    assert "decoded" not in second

    decoded = target.run("show", "acc", "--json", "--app", "tests.cli.app").json()[1]["decoded"]
    assert decoded["schema_version"] == 2
    assert decoded["data"] == {"amount": 7, "currency": "EUR"}  # upcast from version 1
    assert decoded["class"] == "Deposited"

    text = target.run("show", "acc", "--app", "tests.cli.app")
    assert "acc v2" in text.out
    assert "(schema 1)" in text.out
    assert "Deposited(amount=7, currency='EUR')" in text.out
    assert str(correlation) in text.out


def test_show_refuses_an_unknown_stream_in_one_line(target: Target) -> None:
    result = target.run("show", "nosuch")
    assert result.code == 2
    assert result.err == "esframework show: no stream 'nosuch' in the store\n"


def test_tail_prints_a_live_event_and_stops_cleanly_on_sigint(target: Target) -> None:
    target.accounts(1)
    process = target.spawn("tail", "--json", "--poll", "0.1", "--stream-type", "CliAccount")
    try:
        time.sleep(1.5)  # let it start and read the head: only later events are followed
        target.store.append("other", "Other", [_new("CliOpened")], expected_version=0)
        repository = Repository(Account, store=target.store)
        account = repository.load("account-0")
        account.deposit(42)
        repository.save(account)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert '"stream_id":"account-0"' in line
        assert '"version":4' in line
        assert '"amount":42' in line
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert err == ""
    assert "other" not in out  # another stream type: filtered out


def _new(event_type: str) -> NewEvent:
    return NewEvent(uuid.uuid4(), event_type, 1, '{"owner": "x"}')


def test_a_reader_that_stops_early_ends_show_quietly(target: Target) -> None:
    """`esframework show ... | head` prints no error when head stops reading."""
    target.accounts(1, deposits=50)
    process = target.spawn("show", "account-0")
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # before the command writes: its first flush meets a closed pipe
    with process.stderr:
        code = process.wait(timeout=60)
        assert process.stderr.read() == ""
    assert code == 1
