"""`verify`: the store's integrity, checked event by event, and a report of what is wrong."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NamedTuple

import attrs

from esframework._aggregates import AggregateType, aggregate_type
from esframework._json import loads
from esframework._personal._sealing import MARKER, Keys, sealed_subjects, unseal
from esframework._records import SnapshotRecord, StoredEvent
from esframework._serialization import Serializer
from esframework._store import EventStore
from esframework.cli._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    add_app_option,
    add_store_options,
    load_apps,
    open_inspector,
    open_store,
    print_json,
)
from esframework.cli._personal import add_keys_option, key_store, with_keys
from esframework.errors import PersonalDataError

_PAGE = 1000


@attrs.frozen
class Problem:
    """One thing wrong in the store, where it is."""

    check: str
    stream_id: str
    version: int | None
    position: int | None
    detail: str


class _Seen(NamedTuple):
    version: int
    stream_type: str


def add_commands(commands: Any) -> None:
    verify = commands.add_parser(
        "verify", help="check the store's integrity; exit 3 if anything is wrong"
    )
    add_store_options(verify)
    add_app_option(verify)
    add_keys_option(verify)
    verify.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    load_apps(args.app)
    serializer = Serializer() if args.app else None
    aggregates = _aggregate_types() if args.app else {}
    notes: list[str] = []
    checks = _EventChecks(serializer)
    snapshots = 0
    with (
        open_store(args) as store,
        open_inspector(args) as inspector,
        key_store(args, store) as key_table,
    ):
        for record, keys in with_keys(store.iter_all(page_size=_PAGE), key_table, page=_PAGE):
            checks.check(record, keys)
        unpositioned = getattr(store, "unpositioned", None)
        if unpositioned is not None and (waiting := unpositioned()):
            notes.append(f"{waiting} committed event(s) wait for a position and were not checked")
        after = ""
        while page := inspector.snapshots(after=after, limit=_PAGE):
            for snapshot, keys in with_keys(page, key_table, page=_PAGE):
                snapshots += 1
                checks.problems.extend(
                    _check_snapshot(
                        snapshot,
                        store,
                        checks.seen,
                        keys=keys,
                        aggregates=aggregates,
                        serializer=serializer,
                    )
                )
            after = page[-1].stream_id
    if serializer is None:
        notes.append(
            "events and snapshots were not decoded (their sealed fields were checked): "
            "give the application with --app"
        )
    if checks.keyless:
        where = "key store" if args.keys else "store's key table"
        notes.append(
            f"{len(checks.keyless)} data subject(s) have sealed fields but no key in the "
            f"{where} and were not "
            "forgotten (their keys live in another key store, to name with --keys, or were "
            f"lost): their fields read as forgotten; for example {min(checks.keyless)!r}"
        )
    _report(
        args,
        problems=checks.problems,
        notes=notes,
        events=checks.checked,
        streams=len(checks.seen),
        snapshots=snapshots,
    )
    return EXIT_PROBLEMS if checks.problems else EXIT_OK


class _EventChecks:
    """The checks of each event, in global order: positions, versions, types, decoding."""

    def __init__(self, serializer: Serializer | None) -> None:
        self.serializer = serializer
        self.keyless: set[str] = set()  # subjects sealed for, with no key and not forgotten
        self.problems: list[Problem] = []
        self.seen: dict[str, _Seen] = {}
        self.checked = 0
        self._previous = 0

    def check(self, record: StoredEvent, keys: Keys) -> None:
        self.checked += 1
        where = (record.stream_id, record.version, record.position)
        if record.position <= self._previous:
            detail = f"position not above the one before ({self._previous})"
            self.problems.append(Problem("positions", *where, detail))
        self._previous = max(self._previous, record.position)
        last = self.seen.get(record.stream_id)
        expected = 1 if last is None else last.version + 1
        if record.version != expected:
            detail = (
                f"version {record.version} follows version {expected - 1} in the global order"
                if record.version < expected
                else f"versions {expected} to {record.version - 1} are missing"
            )
            self.problems.append(Problem("versions", *where, detail))
        if last is not None and last.stream_type != record.stream_type:
            detail = f"stream type {record.stream_type!r}, the stream's is {last.stream_type!r}"
            self.problems.append(Problem("stream types", *where, detail))
        self.seen[record.stream_id] = _Seen(
            max(record.version, 0 if last is None else last.version),
            record.stream_type if last is None else last.stream_type,
        )
        self.keyless |= _keyless(record.data, keys)
        if self.serializer is not None:
            try:
                self.serializer.decode(record, keys)
            except Exception as error:  # noqa: BLE001 -- upcasters are the app's code
                _raise_if_cryptography_missing(error)
                detail = f"{record.event_type} cannot be decoded: {type(error).__name__}: "
                self.problems.append(Problem("decoding", *where, detail + _first_line(error)))
        elif (problem := _unsealing_problem(record.data, keys)) is not None:
            detail = f"{record.event_type}'s personal fields do not unseal: {problem}"
            self.problems.append(Problem("sealing", *where, detail))


def _keyless(data: str, keys: Keys) -> set[str]:
    """The subjects `data` is sealed for that have no entry in `keys` (not even forgotten)."""
    return {subject for subject in sealed_subjects(data) if subject not in keys}


def _unsealing_problem(data: str, keys: Keys) -> str | None:
    """Why the sealed fields of a stored document do not open, with no class at hand (the
    marker says which they are); None if they open, or it has none."""
    if not sealed_subjects(data):
        return None
    try:
        document = loads(data)
        if isinstance(document, dict) and MARKER in document:
            unseal(document, keys)
    except Exception as error:  # noqa: BLE001 -- a field that does not open, a bad marker
        _raise_if_cryptography_missing(error)
        return f"{type(error).__name__}: {_first_line(error)}"
    return None


def _raise_if_cryptography_missing(error: Exception) -> None:
    """Raise `error` if it says that nothing sealed can be opened here, rather than that
    one event is wrong: one line for the command, not a problem per sealed event."""
    if type(error) is PersonalDataError:
        raise error


def _check_snapshot(
    snapshot: SnapshotRecord,
    store: EventStore,
    seen: dict[str, _Seen],
    *,
    keys: Keys,
    aggregates: dict[str, AggregateType],
    serializer: Serializer | None,
) -> list[Problem]:
    stream = seen.get(snapshot.stream_id)
    where = (snapshot.stream_id, snapshot.version, None)
    # On a live store, events appended after the pass over them may have been snapshotted
    # since: ask the store for the stream's version now before reporting a snapshot ahead.
    version = stream.version if stream is not None else 0
    if snapshot.version > version:
        version = store.stream_version(snapshot.stream_id)
    if stream is None and version == 0:
        return [Problem("snapshots", *where, "a snapshot of a stream with no events")]
    found: list[Problem] = []
    if snapshot.version > version:
        detail = f"snapshot at version {snapshot.version}, past the stream's {version}"
        found.append(Problem("snapshots", *where, detail))
    if stream is None:  # appended after the pass: its type was not seen
        return found
    if snapshot.stream_type != stream.stream_type:
        detail = f"snapshot of type {snapshot.stream_type!r}, the stream is {stream.stream_type!r}"
        found.append(Problem("snapshots", *where, detail))
    return [
        *found,
        *_state_problems(snapshot, keys, aggregates.get(snapshot.stream_type), serializer),
    ]


def _state_problems(
    snapshot: SnapshotRecord, keys: Keys, kind: AggregateType | None, serializer: Serializer | None
) -> list[Problem]:
    """What is wrong with a snapshot's state: its class, fingerprint, decoding, sealing."""
    where = (snapshot.stream_id, snapshot.version, None)
    if serializer is None:
        problem = _unsealing_problem(snapshot.data, keys)
        detail = f"the state's personal fields do not unseal: {problem}"
        return [] if problem is None else [Problem("snapshots", *where, detail)]
    if kind is None:
        detail = f"no aggregate class of stream type {snapshot.stream_type!r} in --app"
        return [Problem("snapshots", *where, detail)]
    if snapshot.state_schema != kind.state_schema:
        detail = (
            f"fingerprint {snapshot.state_schema!r} is not {kind.cls.__qualname__}'s "
            f"{kind.state_schema!r}: loads ignore it and replay"
        )
        return [Problem("snapshots", *where, detail)]
    try:
        serializer.decode_state(kind.cls, snapshot.data, keys)
    except Exception as error:  # noqa: BLE001 -- reported, whatever it is
        _raise_if_cryptography_missing(error)
        detail = f"state cannot be decoded: {type(error).__name__}: {_first_line(error)}"
        return [Problem("snapshots", *where, detail)]
    return []


def _aggregate_types() -> dict[str, AggregateType]:
    """The aggregate classes of every imported module, by stream type.

    Aggregates are not registered anywhere (only events are): after --app's imports, the
    application's modules hold them.
    """
    found: dict[str, AggregateType] = {}
    for module in list(sys.modules.values()):
        # None blocks an import (sys.modules["x"] = None), and a module may be any object.
        for value in list(getattr(module, "__dict__", {}).values()):
            if isinstance(value, type) and "__esframework_aggregate__" in vars(value):
                kind = aggregate_type(value)
                found.setdefault(kind.stream_type, kind)
    return found


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def _report(
    args: argparse.Namespace,
    *,
    problems: list[Problem],
    notes: list[str],
    events: int,
    streams: int,
    snapshots: int,
) -> None:
    if args.json:
        for problem in problems:
            print_json(attrs.asdict(problem))
        print_json(
            {
                "events": events,
                "streams": streams,
                "snapshots": snapshots,
                "problems": len(problems),
                "notes": notes,
            }
        )
        return
    for problem in problems:
        version = "-" if problem.version is None else problem.version
        position = "-" if problem.position is None else problem.position
        print(
            f"{problem.check}: stream {problem.stream_id!r} version {version} "
            f"position {position}: {problem.detail}"
        )
    for note in notes:
        print(f"note: {note}")
    verdict = f"{len(problems)} problem(s)" if problems else "no problems"
    print(f"checked {events} events in {streams} streams and {snapshots} snapshots: {verdict}")
