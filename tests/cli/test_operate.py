"""`subscriptions`, `parked list|retry|drop` and `rebuild` on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import signal
import uuid
from datetime import timedelta

from esframework import Repository
from tests.cli.app import Account, runner
from tests.cli.conftest import Target


def _catch_up(target: Target) -> None:
    for name, value in target.env.items():
        target.monkeypatch.setenv(name, value)
    built = runner()
    try:
        built.run_until_caught_up()
    finally:
        built.workers["totals"].store.close()


def _unlucky(target: Target, account_id: str) -> None:
    repository = Repository(Account, store=target.store)
    account = Account.open(account_id, "unlucky")
    account.deposit(13)  # the projection fails on it: parked
    repository.save(account)


def test_subscriptions_shows_checkpoint_lag_and_parked_count(target: Target) -> None:
    target.accounts(2, deposits=2)  # positions 1 to 6
    _unlucky(target, "bad")  # positions 7 and 8, 8 parked
    _catch_up(target)
    result = target.run("subscriptions", "--json")
    assert result.code == 0, result.err
    (row,) = result.json()
    assert row["subscription"] == "totals"
    assert row["checkpoint"] == 8
    assert row["head"] == 8
    assert row["lag_events"] == 0
    assert row["parked"] == 1
    assert row["lease_holder"] is None  # no worker runs

    text = target.run("subscriptions")
    assert text.out.splitlines()[0].split()[:3] == ["SUBSCRIPTION", "CHECKPOINT", "LAG"]
    assert re.search(r"totals\s+8\s+0\s+0\.0\s+-\s+1", text.out), text.out


def test_subscriptions_counts_the_events_and_seconds_behind(target: Target) -> None:
    target.accounts(1, deposits=1)
    _catch_up(target)
    (handled,) = target.store.read_all(after=1, limit=1)
    # Recorded an hour after the last handled event (written by hand to choose the time).
    later = (handled.recorded_at + timedelta(hours=1)).isoformat()
    for version in (3, 4):
        target.sql(
            "INSERT INTO {s}events (id, stream_id, stream_type, event_type, schema_version, "
            "event_data, metadata, version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            str(uuid.uuid4()),
            "account-0",
            "CliAccount",
            "CliDeposited",
            2,
            '{"amount": 1, "currency": "EUR"}',
            "{}",
            version,
            later,
        )
    (row,) = target.run("subscriptions", "--json").json()
    assert row["lag_events"] == 2
    assert row["lag_seconds"] == 3600.0


def test_parked_list_retry_and_drop(target: Target) -> None:
    _unlucky(target, "bad-1")
    _unlucky(target, "bad-2")
    _catch_up(target)
    listed = target.run("parked", "list", "totals", "--json")
    assert listed.code == 0, listed.err
    assert [(p["stream_id"], p["event_type"]) for p in listed.json()] == [
        ("bad-1", "CliDeposited"),
        ("bad-2", "CliDeposited"),
    ]
    assert "thirteen is unlucky" in listed.json()[0]["error"]
    text = target.run("parked", "list", "totals")
    assert "bad-1" in text.out
    assert "ValueError" in text.out

    # Retrying uses the application's runner (and its store): the handler fails again.
    target.args, saved = [], target.args
    retried = target.run("parked", "retry", "tests.cli.app:runner", "totals")
    target.args = saved
    assert retried.code == 1
    assert "retried 2 parked event(s) of 'totals': 2 failed" in retried.out

    position = listed.json()[0]["position"]
    dropped = target.run("parked", "drop", "totals", "--position", str(position))
    assert dropped.code == 0, dropped.err
    assert dropped.out == "dropped 1 parked event(s) of 'totals'\n"
    again = target.run("parked", "drop", "totals", "--position", str(position))
    assert again.code == 2
    assert (
        again.err
        == f"esframework parked drop: 'totals' has no parked event at position {position}\n"
    )
    assert [p["stream_id"] for p in target.run("parked", "list", "totals", "--json").json()] == [
        "bad-2"
    ]
    assert target.run("parked", "drop", "totals", "--all").out.startswith("dropped 1 ")


def test_rebuild_replays_with_progress_lines(target: Target) -> None:
    target.accounts(10, deposits=2)  # 30 events, pages of 10
    target.args = []  # the runner brings its store
    result = target.run("rebuild", "tests.cli.app:runner", "totals", "--every", "0")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) >= 3, result.out
    assert re.match(
        r"totals:\s+\d+\.\d% position 10 of 30, 10 events, \d+ events/s, 0 parked, ETA", lines[0]
    )
    assert lines[-1].startswith("totals: 100.0% position 30 of 30, 30 events")
    assert lines[-1].endswith("done")

    reports = target.run("rebuild", "tests.cli.app:runner", "totals", "--json", "--every", "0")
    figures = reports.json()
    assert [f["position"] for f in figures][:3] == [10, 20, 30]
    assert figures[0]["percent"] == 33.3
    assert figures[-1]["caught_up"]
    assert figures[-1]["percent"] == 100.0


def test_rebuild_names_a_missing_subscription_in_one_line(target: Target) -> None:
    target.args = []
    result = target.run("rebuild", "tests.cli.app:runner", "nosuch")
    assert result.code == 2
    assert result.err == (
        "esframework rebuild: tests.cli.app:runner runs no subscription 'nosuch' "
        "(it runs: totals)\n"
    )


def test_subscriptions_names_the_lease_holder(target: Target) -> None:
    target.accounts(1, deposits=0)
    _catch_up(target)
    lease = target.store.lease("totals")  # as a running worker holds it
    assert lease.acquire()
    try:
        (row,) = target.run("subscriptions", "--json").json()
    finally:
        lease.release()
    if target.kind == "postgres":
        assert re.match(r"pid \d+ \(esframework", row["lease_holder"]), row["lease_holder"]
    else:
        assert row["lease_holder"] == "a process on this host"
    (after,) = target.run("subscriptions", "--json").json()
    assert after["lease_holder"] is None


def test_rebuild_stopped_by_sigint_says_the_read_model_is_incomplete(target: Target) -> None:
    target.accounts(10, deposits=5)  # 50 deposits, 0.05 s each: 2.5 s
    target.env["ESFRAMEWORK_CLI_SLOW"] = "0.05"
    target.args = []
    process = target.spawn("rebuild", "tests.cli.app:runner", "totals", "--every", "0")
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith("totals: "), first
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 1, err
    assert "done" not in out
    assert err.startswith("esframework rebuild: stopped at position ")
    assert err.endswith("before the end: the read model is incomplete; rebuild again\n")


def test_subscriptions_watch_redraws_the_lag_until_sigint(target: Target) -> None:
    target.accounts(1, deposits=1)
    _catch_up(target)
    process = target.spawn("subscriptions", "--watch", "--interval", "0.2")
    assert process.stdout is not None
    refreshes: list[list[str]] = []
    while len(refreshes) < 2:
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else ""
        if re.match(r"\d{4}-\d\d-\d\dT\S+ head: 2$", line.strip()):
            refreshes.append([])
        elif refreshes and line.strip():
            refreshes[-1].append(line)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert err == ""
    assert refreshes[0][0].split()[:3] == ["SUBSCRIPTION", "CHECKPOINT", "LAG"]
    assert re.match(r"totals\s+2\s+0\s+0\.0\s+-\s+0", refreshes[0][1]), refreshes[0]


def test_subscriptions_watch_refuses_an_interval_that_is_not_positive(target: Target) -> None:
    process = target.spawn("subscriptions", "--watch", "--interval", "0")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "--interval: expected a number of seconds above 0 and at most 86400, got '0'" in err


def test_subscriptions_shows_each_partition_and_not_the_recorded_count(target: Target) -> None:
    from esframework import Subscription, SubscriptionWorker, partitioned

    target.accounts(4)

    def handle(*_: object) -> None:  # the command shows checkpoints, not what was handled
        return None

    for partition in partitioned(Subscription(name="split", handler=handle), 2):
        SubscriptionWorker(target.store, partition).run(until_caught_up=True)
    rows = {row["subscription"]: row for row in target.run("subscriptions", "--json").json()}
    assert sorted(rows) == ["split:0/2", "split:1/2"]
    assert rows["split:0/2"]["partition"] == "0/2"
    assert rows["split:1/2"]["partition"] == "1/2"
    text = target.run("subscriptions").out
    assert text.splitlines()[0].split()[-1] == "PARTITION"
    assert "split:partitions" not in text


def test_subscriptions_leaves_out_the_checkpoints_of_a_partition_count_given_up(
    target: Target,
) -> None:
    """`rebuild_partitions` changing the count leaves the old layout's checkpoints behind,
    unused: the command showed them as partitions falling further behind for ever, beside
    the ones that run (and the unpartitioned subscription's row, once partitioned)."""
    from typing import Any

    from esframework import Subscription, SubscriptionWorker, partitioned, rebuild_partitions

    class Nothing:
        def handle(self, *_: object) -> None:
            return None

        def reset(self, *_: object) -> None:
            return None

    nothing = Nothing()
    target.accounts(3)
    single = Subscription[Any](name="split", handler=nothing)
    SubscriptionWorker(target.store, single).run(until_caught_up=True)
    rebuild_partitions(target.store, partitioned(single, 2))
    rebuild_partitions(target.store, partitioned(single, 3))
    repository = Repository(Account, store=target.store)
    repository.save(Account.open("late", "late"))  # the partitions run, the head moves on
    for partition in partitioned(single, 3):
        SubscriptionWorker(target.store, partition).run(until_caught_up=True)
    rows = target.run("subscriptions", "--json").json()
    assert [row["subscription"] for row in rows] == ["split:0/3", "split:1/3", "split:2/3"]
    assert [row["lag_events"] for row in rows] == [0, 0, 0]


def test_parked_list_and_drop_name_a_subscription_the_store_knows_nothing_of(
    target: Target,
) -> None:
    """A mistyped subscription listed as one with nothing parked (exit 0), and `drop --all`
    said it dropped 0: an operator read that nothing was parked. It is an unknown
    subscription, exit code 2, as for the other commands; a known one with nothing parked
    still lists nothing."""
    target.accounts(1)
    _catch_up(target)
    assert target.run("parked", "list", "totals").code == 0
    assert target.run("parked", "drop", "totals", "--all").code == 0
    for command in (["list"], ["drop", "--all"], ["drop", "--position", "1"]):
        result = target.run("parked", command[0], "totlas", *command[1:])
        assert (result.code, result.out) == (2, "")
        assert result.err == (
            f"esframework parked {command[0]}: no subscription 'totlas' in the store "
            "(no checkpoint, no parked event)\n"
        )
