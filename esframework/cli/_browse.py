"""Looking inside the store: `streams`, `show STREAM` and `tail`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType
from typing import Any

import orjson

from esframework._events import event_type_of
from esframework._personal._sealing import Keys
from esframework._records import StoredEvent
from esframework._serialization import Serializer
from esframework.cli._common import (
    EXIT_OK,
    UsageError,
    add_app_option,
    add_store_options,
    load_apps,
    natural,
    open_inspector,
    open_store,
    positive,
    print_json,
    seconds,
    table,
)
from esframework.cli._personal import add_keys_option, key_store, with_keys


def add_commands(commands: Any) -> None:
    streams = commands.add_parser("streams", help="list streams with their version and last write")
    add_store_options(streams)
    streams.add_argument("--stream-type", help="only streams of this type")
    streams.add_argument("--prefix", default="", help="only stream ids starting with this")
    streams.add_argument("--after", default="", metavar="STREAM", help="start after this id")
    streams.add_argument("--limit", type=positive, default=100, help="streams per page (100)")
    streams.set_defaults(handler=_streams)

    show = commands.add_parser("show", help="show a stream's events")
    show.add_argument("stream", metavar="STREAM", help="the stream id")
    add_store_options(show)
    add_app_option(show)
    add_keys_option(show)
    show.add_argument("--from-version", type=positive, default=1, help="first version (1)")
    show.add_argument("--limit", type=positive, default=None, help="at most this many events")
    show.add_argument(
        "--include-archived",
        action="store_true",
        help="also the events before the stream's truncation point (archived or not)",
    )
    show.set_defaults(handler=_show)

    tail = commands.add_parser("tail", help="follow the global order live, until Ctrl-C")
    add_store_options(tail)
    add_app_option(tail)
    add_keys_option(tail)
    tail.add_argument(
        "--after", type=natural, default=None, help="start after this position (the head)"
    )
    tail.add_argument("--stream-type", action="append", help="only this stream type (repeatable)")
    tail.add_argument(
        "--event-type", action="append", help="only this stored event type (repeatable)"
    )
    tail.add_argument(
        "--poll", type=seconds, default=1.0, help="longest wait between reads, in seconds (1)"
    )
    tail.set_defaults(handler=_tail)


def _streams(args: argparse.Namespace) -> int:
    with open_store(args), open_inspector(args) as inspector:
        rows = inspector.streams(
            stream_type=args.stream_type, prefix=args.prefix, after=args.after, limit=args.limit
        )
    if args.json:
        for row in rows:
            print_json(row._asdict())
        return EXIT_OK
    table(("STREAM", "TYPE", "VERSION", "LAST WRITE"), rows)
    if len(rows) == args.limit:
        print(f"(more after --after {rows[-1].stream_id!r})")
    return EXIT_OK


def event_fields(
    record: StoredEvent, serializer: Serializer | None, keys: Keys | None = None
) -> dict[str, Any]:
    """An event as the commands show it; decoded and upcast when the app's classes are known.

    `data` is the event as stored: personal fields sealed. `decoded` unseals them with
    `keys`: the plaintext of a live subject, the placeholder of a forgotten one.
    """
    fields: dict[str, Any] = {
        "stream_id": record.stream_id,
        "stream_type": record.stream_type,
        "version": record.version,
        "position": record.position,
        "event_type": record.event_type,
        "schema_version": record.schema_version,
        "recorded_at": record.recorded_at,
        "event_id": record.event_id,
        "metadata": _json(record.metadata),
        "data": _json(record.data),
    }
    if serializer is not None:
        try:
            envelope = serializer.decode(record, keys)
            # Encoded again, it is the event as the application reads it: upcast, current,
            # and unsealed (`show`, never `encode`: that would seal it again).
            kind = event_type_of(type(envelope.event))
            current = serializer.show(envelope.event)
        except Exception as error:  # noqa: BLE001 -- shown beside the stored event
            fields["decoded"] = {"error": f"{type(error).__name__}: {error}"}
        else:
            fields["decoded"] = {
                "class": type(envelope.event).__qualname__,
                "event_type": kind.name,
                "schema_version": kind.version,
                "data": _json(current),
                "repr": repr(envelope.event),
            }
    return fields


def _json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _print_event(fields: dict[str, Any]) -> None:
    when = fields["recorded_at"].isoformat(timespec="milliseconds")
    schema = fields["schema_version"]
    print(
        f"{fields['stream_id']} v{fields['version']} @{fields['position']} "
        f"{fields['event_type']} (schema {schema}) {when}"
    )
    metadata = fields["metadata"]
    if metadata:
        print(f"  metadata: {orjson.dumps(metadata).decode()}")
    decoded = fields.get("decoded")
    if decoded is None:
        print(f"  data: {orjson.dumps(fields['data']).decode()}")
    elif "error" in decoded:
        print(f"  data: {orjson.dumps(fields['data']).decode()}")
        print(f"  cannot decode: {decoded['error']}")
    else:
        print(f"  event: {decoded['repr']}")
    sys.stdout.flush()


def _show(args: argparse.Namespace) -> int:
    load_apps(args.app)
    serializer = Serializer() if args.app else None
    with open_store(args) as store, key_store(args, store) as key_table:
        keys = None if serializer is None else key_table
        shown = 0
        records = store.read_stream(
            args.stream, from_version=args.from_version, include_archived=args.include_archived
        )
        page = min(args.limit or _PAGE, _PAGE)
        for record, found in with_keys(records, keys, page=page):
            if args.limit is not None and shown >= args.limit:
                break
            fields = event_fields(record, serializer, found)
            print_json(fields) if args.json else _print_event(fields)
            shown += 1
        if shown == 0 and store.stream_version(args.stream) == 0:
            msg = f"no stream {args.stream!r} in the store"
            raise UsageError(msg)
    return EXIT_OK


def _tail(args: argparse.Namespace) -> int:
    load_apps(args.app)
    serializer = Serializer() if args.app else None

    stopped = threading.Event()

    def stop(_: int, __: FrameType | None) -> None:
        # Not an exception: raised inside a query, it would leave the connection mid-command.
        # The loop looks at the flag between reads and waits of at most --poll seconds.
        stopped.set()

    # SIGTERM too: a supervisor stopping the command is as clean an end as Ctrl-C.
    previous = {number: signal.signal(number, stop) for number in _SIGNALS}
    try:
        with (
            open_store(args) as store,
            store.listener() as listener,
            key_store(args, store) as key_table,
        ):
            keys = None if serializer is None else key_table
            position = store.head() if args.after is None else args.after
            filtered = bool(args.stream_type or args.event_type)
            while not stopped.is_set():
                # Read before the page: nothing can appear later at or below it, so a filtered
                # read that finds nothing may skip to it, as subscription workers do.
                head = store.head() if filtered else 0
                page = store.read_all(
                    after=position,
                    limit=_PAGE,
                    stream_types=args.stream_type,
                    event_types=args.event_type,
                )
                for record, found in with_keys(page, keys, page=_PAGE):
                    fields = event_fields(record, serializer, found)
                    print_json(fields) if args.json else _print_event(fields)
                    position = record.position
                if not page:
                    position = max(position, head)
                    listener.wait(args.poll)
        return EXIT_OK
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PAGE = 500  # events per read, and per keyring
