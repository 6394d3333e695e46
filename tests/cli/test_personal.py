"""Personal data on the command line, on SQLite and PostgreSQL: `show`, `tail` and `verify`
unseal with the store's keys; `forget` and `purge-keys`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import attrs

from esframework import NewEvent, Repository, SQLiteEventStore
from tests.cli.conftest import ROOT, Target
from tests.personal.domain import FORGOTTEN, Customer

APP = ("--app", "tests.personal.domain")
EMAIL = "ada.lovelace@example.com"
NAME = "Ada Lovelace"
OTHER = "grace.hopper@example.com"


def _customers(target: Target) -> None:
    """c-1 (registered, then a new email: snapshotted at version 2) and c-2."""
    customers = Repository(Customer, store=target.store)
    ada = Customer.register("c-1", EMAIL, name=NAME)
    ada.change_email("ada@example.org")
    customers.save(ada)
    customers.save(Customer.register("c-2", OTHER, name="Grace"))
    assert target.store.load_snapshot("c-1") is not None


def _registered(target: Target, stream_id: str) -> Any:
    return next(iter(target.store.read_stream(stream_id)))


def _copy(target: Target, data: str, stream_id: str) -> None:
    """Append a registration by hand, with the stored data given (a sealed copy)."""
    record = NewEvent(uuid.uuid4(), "test.CustomerRegistered", 2, data)
    target.store.append(stream_id, "test.Customer", [record], expected_version=0)


def test_show_unseals_a_live_subject_and_keeps_the_stored_view_sealed(target: Target) -> None:
    _customers(target)
    result = target.run("show", "c-1", "--json", *APP)
    assert result.code == 0, result.err
    registered, changed = result.json()
    decoded = registered["decoded"]
    assert decoded["data"] == {
        "customer_id": "c-1",
        "email": EMAIL,
        "name": NAME,
        "plan": "basic",
    }  # unsealed, and not sealed again for display
    assert (decoded["class"], decoded["schema_version"]) == ("CustomerRegistered", 2)
    assert EMAIL in decoded["repr"]
    assert changed["decoded"]["data"]["email"] == "ada@example.org"
    # The stored view is what the table holds: sealed, with the marker.
    for event in (registered, changed):
        assert "$personal" in event["data"]
        stored = json.dumps(event["data"])
        assert EMAIL not in stored
        assert NAME not in stored
        assert "ada@example.org" not in stored

    text = target.run("show", "c-1", *APP)
    assert f"email='{EMAIL}'" in text.out
    raw = target.run("show", "c-1")  # without the app: only the stored, sealed view
    assert raw.code == 0
    assert "$personal" in raw.out
    assert EMAIL not in raw.out
    assert NAME not in raw.out


def test_after_forget_show_and_verify_give_the_placeholder_never_the_plaintext(
    target: Target,
) -> None:
    _customers(target)
    forgot = target.run("forget", "c-1", "--reason", "erasure request 42")
    assert forgot.code == 0, forgot.err
    assert forgot.err == ""

    for argv in (("show", "c-1", "--json", *APP), ("show", "c-1", *APP), ("show", "c-1")):
        result = target.run(*argv)
        assert result.code == 0, result.err
        assert EMAIL not in result.out
        assert "ada@example.org" not in result.out
        assert NAME not in result.out
    registered, changed = target.run("show", "c-1", "--json", *APP).json()
    assert registered["decoded"]["data"]["email"] == FORGOTTEN
    assert registered["decoded"]["data"]["name"] == FORGOTTEN
    assert registered["decoded"]["data"]["plan"] == "basic"
    assert changed["decoded"]["data"]["email"] == FORGOTTEN
    assert f"email='{FORGOTTEN}'" in target.run("show", "c-1", *APP).out
    other = target.run("show", "c-2", "--json", *APP).json()[0]  # another subject: readable
    assert other["decoded"]["data"]["email"] == OTHER

    # Sealed fields of a forgotten subject are not corruption; the snapshot reads too.
    verified = target.run("verify", *APP)
    assert verified.code == 0, verified.out + verified.err
    assert verified.out.endswith("no problems\n")
    assert EMAIL not in verified.out
    assert target.run("verify").code == 0


def test_verify_passes_a_store_of_sealed_events(target: Target) -> None:
    _customers(target)
    result = target.run("verify", *APP)
    assert result.code == 0, result.out + result.err
    assert result.out == "checked 3 events in 2 streams and 1 snapshots: no problems\n"
    without_app = target.run("verify")
    assert without_app.code == 0, without_app.out
    assert "their sealed fields were checked" in without_app.out


def test_verify_reports_a_sealed_field_that_does_not_open(target: Target) -> None:
    _customers(target)
    stored = json.loads(_registered(target, "c-2").data)
    # Swapped: each value is sealed for its own field, so neither opens in the other's.
    stored["email"], stored["name"] = stored["name"], stored["email"]
    _copy(target, json.dumps(stored), "c-3")
    (position,) = [e.position for e in target.store.read_all() if e.stream_id == "c-3"]

    result = target.run("verify", *APP)
    assert result.code == 3, result.out + result.err
    problem, summary = result.out.splitlines()
    assert problem.startswith(
        f"decoding: stream 'c-3' version 1 position {position}: "
        "test.CustomerRegistered cannot be decoded: CorruptEventError"
    )
    assert "does not open with its subject's key" in problem
    assert summary == "checked 4 events in 3 streams and 1 snapshots: 1 problem(s)"
    assert OTHER not in result.out

    # Without the app the marker is enough to try the seals.
    plain = target.run("verify", "--json")
    assert plain.code == 3, plain.out
    found, totals = plain.json()
    assert (found["check"], found["stream_id"], found["position"]) == ("sealing", "c-3", position)
    assert found["detail"].startswith(
        "test.CustomerRegistered's personal fields do not unseal: ValueError: sealed field"
    )
    assert "does not open" in found["detail"]
    assert totals["problems"] == 1


def test_verify_reports_a_snapshot_whose_sealed_state_does_not_open(target: Target) -> None:
    _customers(target)
    snapshot = target.store.load_snapshot("c-1")
    assert snapshot is not None
    state = json.loads(snapshot.data)
    state["$personal"]["nonce"] = str(uuid.uuid4())  # the seal was made with another
    target.store.save_snapshot(attrs.evolve(snapshot, data=json.dumps(state)))
    result = target.run("verify", "--json", *APP)
    assert result.code == 3, result.out
    found, _ = result.json()
    assert (found["check"], found["stream_id"], found["version"]) == ("snapshots", "c-1", 2)
    assert "state cannot be decoded" in found["detail"]
    assert "does not open" in found["detail"]
    plain = target.run("verify", "--json")
    assert plain.code == 3
    assert plain.json()[0]["detail"] == (
        "the state's personal fields do not unseal: ValueError: sealed field 'email' does "
        "not open with its subject's key"
    )


def test_verify_notes_subjects_sealed_for_with_no_key(target: Target) -> None:
    _customers(target)
    stored = json.loads(_registered(target, "c-2").data)
    stored["customer_id"] = "ghost"
    fields = stored["$personal"]["fields"]
    stored["$personal"]["fields"] = {name: ["ghost", value[1]] for name, value in fields.items()}
    _copy(target, json.dumps(stored), "ghost")  # as if restored without the key table
    result = target.run("verify", *APP)
    assert result.code == 0, result.out  # it reads, as forgotten: a note, not corruption
    assert "note: 1 data subject(s) have sealed fields but no key" in result.out
    assert "'ghost'" in result.out
    shown = target.run("show", "ghost", "--json", *APP).json()[0]
    assert shown["decoded"]["data"]["email"] == FORGOTTEN


def test_tail_fetches_keys_per_page_so_forgetting_shows_at_once(target: Target) -> None:
    Repository(Customer, store=target.store).save(Customer.register("c-1", EMAIL))
    sealed = _registered(target, "c-1").data
    process = target.spawn("tail", "--json", "--after", "0", "--poll", "0.1", *APP)
    try:
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())
        assert first["decoded"]["data"]["email"] == EMAIL
        target.store.forget_personal_data("c-1")
        _copy(target, sealed, "copy-1")  # the same sealed bytes, read after forgetting
        if target.kind == "postgres":
            target.store.sequence()
        forgotten = json.loads(process.stdout.readline())
        assert forgotten["event_type"] == "$PersonalDataForgotten"
        assert forgotten["decoded"]["data"] == {"subject": "c-1"}
        copy = json.loads(process.stdout.readline())
        assert copy["stream_id"] == "copy-1"
        assert copy["decoded"]["data"]["email"] == FORGOTTEN
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert EMAIL not in out


def test_forget_records_the_reason_once_and_again_is_a_no_op(target: Target) -> None:
    _customers(target)
    first = target.run("forget", "c-1", "--reason", "erasure request 42")
    assert first.code == 0, first.err
    assert first.out == (
        "forgot subject 'c-1': key deleted for good, recorded in stream "
        "'$personal-data-c-1'; run esframework purge-keys to clear it from the files\n"
    )
    again = target.run("forget", "c-1", "--reason", "asked twice")
    assert again.code == 0, again.err
    assert again.out == "subject 'c-1' was already forgotten: nothing changed\n"
    as_json = target.run("forget", "c-1", "--json").json()
    assert as_json == [
        {
            "subject": "c-1",
            "already_forgotten": True,
            "had_key": False,
            "stream_id": "$personal-data-c-1",
            "version": 1,
        }
    ]
    [recorded] = list(target.store.read_stream("$personal-data-c-1"))
    assert json.loads(recorded.metadata) == {"reason": "erasure request 42"}
    assert json.loads(recorded.data) == {"subject": "c-1"}
    assert target.store.personal_data_keys(["c-1", "c-2"]) == {
        "c-1": None,
        "c-2": target.store.personal_data_keys(["c-2"])["c-2"],
    }

    # A subject the store never had keys for is forgotten too: nothing of theirs is sealed.
    unknown = target.run("forget", "nobody")
    assert unknown.code == 0, unknown.err
    assert unknown.out == (
        "forgot subject 'nobody', of whom the store's key table (name another with --keys) "
        "held no key; recorded in stream '$personal-data-nobody'\n"
    )
    assert json.loads(_registered(target, "$personal-data-nobody").metadata) == {}
    assert target.store.personal_data_keys(["nobody"]) == {"nobody": None}


def test_a_bad_subject_or_reason_is_a_one_line_error_and_changes_nothing(target: Target) -> None:
    _customers(target)
    head = target.store.head()
    for subject in ("", "x" * 201):
        result = target.run("forget", subject)
        assert result.code == 2
        assert result.out == ""
        assert result.err == (
            f"esframework forget: invalid data subject {subject!r}: "
            "subject ids are 1 to 200 characters\n"
        )
    undecodable = target.run("forget", "c-\udcff")  # bytes of the command line not UTF-8
    assert undecodable.code == 2
    assert undecodable.err == (
        "esframework forget: invalid data subject 'c-\\udcff': it is not valid UTF-8 text\n"
    )
    blank = target.run("forget", "c-1", "--reason", " ")
    assert blank.code == 2
    assert blank.err == "esframework forget: --reason is empty: say why, or leave it out\n"
    assert target.store.head() == head
    assert target.store.personal_data_keys(["c-1"])["c-1"] is not None


def test_purge_keys_makes_forgotten_keys_leave_the_files(target: Target) -> None:
    _customers(target)
    key = target.store.personal_data_keys(["c-1"])["c-1"]
    live = target.store.personal_data_keys(["c-2"])["c-2"]
    assert key is not None
    assert target.run("forget", "c-1").code == 0
    if target.kind == "sqlite":
        # Zeroed in the file's page at once, but the write-ahead log keeps earlier copies.
        assert key in _sqlite_files(target)
    else:
        before = _relfilenode(target)

    result = target.run("purge-keys")
    deadline = time.monotonic() + 30
    while "still visible to an open transaction" in result.err and time.monotonic() < deadline:
        time.sleep(0.2)  # a transaction elsewhere in the database may see the old row
        result = target.run("purge-keys")
    assert result.code == 0, result.err
    if target.kind == "sqlite":
        assert result.out == (
            "purged: SQLite zeroes a deleted key in the file at once (secure_delete); the "
            "write-ahead log, which kept earlier copies, is checkpointed and truncated\n"
        )
        assert key not in _sqlite_files(target)
        assert live in _sqlite_files(target)  # the search finds keys that are there
    else:
        assert result.out == (
            "purged: the key table is rewritten, forgotten keys are gone from its pages "
            "(the server's WAL and backups keep them until they are recycled)\n"
        )
        assert _relfilenode(target) != before  # VACUUM FULL wrote the table anew
    assert target.store.personal_data_keys(["c-1", "c-2"]) == {"c-1": None, "c-2": live}
    shown = target.run("show", "c-2", "--json", *APP).json()[0]
    assert shown["decoded"]["data"]["email"] == OTHER
    store = "sqlite" if target.kind == "sqlite" else "postgresql"
    assert target.run("purge-keys", "--json").json() == [{"purged": True, "store": store}]


def _sqlite_files(target: Target) -> bytes:
    """The bytes of every file of the SQLite store: the database, its log and index."""
    folder = Path(target.store.path).parent
    return b"".join(path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file())


def _relfilenode(target: Target) -> int:
    with target.store.transaction() as connection:
        row = connection.execute(
            "SELECT relfilenode FROM pg_class WHERE oid = %s::regclass",
            (f'"{target.store.schema}".personal_data_keys',),
        ).fetchone()
    return int(row[0])


def test_verify_without_cryptography_fails_in_one_line(target: Target) -> None:
    _customers(target)
    # A process in which the optional `cryptography` package cannot be imported.
    code = (
        "import sys; sys.modules['cryptography'] = None; "
        "from esframework.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    process = subprocess.run(
        [sys.executable, "-c", code, "verify", *APP, *target.args],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 1, process.stdout + process.stderr
    assert process.stderr == (
        "esframework verify: PersonalDataError: personal data needs the cryptography "
        "package: install esframework[personal] (or cryptography)\n"
    )


def test_keys_kept_in_another_key_store_are_named_with_keys(
    target: Target, tmp_path: Path, monkeypatch: Any
) -> None:
    """An application passing `keys=` keeps its keys elsewhere: without `--keys` the
    commands see no key (and say so); with it they unseal, and `forget` forgets there."""
    keys_db = tmp_path / "keys.db"
    monkeypatch.setenv("ESFRAMEWORK_CLI_KEYS_DB", str(keys_db))
    keys = ("--keys", "tests.cli.external_keys:key_service")
    with SQLiteEventStore(keys_db) as service:
        Repository(Customer, store=target.store, keys=service).save(
            Customer.register("c-1", EMAIL, name=NAME)
        )
        assert target.store.personal_data_keys(["c-1"]) == {}  # not in the store's table

        alone = target.run("show", "c-1", "--json", *APP)
        assert alone.json()[0]["decoded"]["data"]["email"] == FORGOTTEN
        unsealed = target.run("show", "c-1", "--json", *APP, *keys)
        assert unsealed.code == 0, unsealed.err
        assert unsealed.json()[0]["decoded"]["data"]["email"] == EMAIL
        assert target.run("verify", *APP, *keys).code == 0

        forgotten = target.run("forget", "c-1", *keys)
        assert forgotten.code == 0, forgotten.err
        assert forgotten.out == (
            "forgot subject 'c-1': key deleted for good in the key store, recorded in stream "
            "'$personal-data-c-1'\n"
        )
        assert service.personal_data_keys(["c-1"]) == {"c-1": None}
        after = target.run("show", "c-1", "--json", *APP, *keys)
        assert after.json()[0]["decoded"]["data"]["email"] == FORGOTTEN
        assert EMAIL not in after.out


def test_a_keys_option_naming_no_key_store_is_a_one_line_error(target: Target) -> None:
    _customers(target)
    for keys, message in (
        ("nope", "expected MODULE:NAME, such as myapp.keys:key_service, got 'nope'"),
        ("tests.cli.external_keys:missing", "has no attribute 'missing'"),
        ("tests.cli.external_keys:NOT_A_KEY_STORE", "not a KeyStore or a function"),
    ):
        for command in (("show", "c-1", *APP), ("forget", "c-1")):
            result = target.run(*command, "--keys", keys)
            assert result.code == 2, result.err
            assert message in result.err
            assert result.err.count("\n") == 1
    assert target.store.personal_data_keys(["c-1"])["c-1"] is not None  # nothing forgotten
