"""Personal data on the command line: reads that unseal, `forget` and `purge-keys`.

Every command that decodes events with the application's classes unseals their personal
fields with the keys in the store's key table, or in the key store `--keys` names (an
application that passes `keys=` to its repositories keeps them there), fetched a page of
records at a time by a keyring of that page: a subject forgotten while a command runs (a
`tail`, a long `verify`) reads as forgotten from the next page on, as in the application's
own reads.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

import orjson

from esframework._personal._keyring import Keyring
from esframework._personal._keys import KeyStore
from esframework._personal._sealing import Keys, validate_subject
from esframework._records import SnapshotRecord, StoredEvent
from esframework.cli._common import (
    EXIT_OK,
    UsageError,
    add_store_options,
    load_target,
    open_store,
    print_json,
)
from esframework.errors import InvalidSubjectError

__all__ = ["PAGE", "add_commands", "add_keys_option", "key_store", "with_keys"]

PAGE: Final = 1000
"""Records per keyring: one query for the keys of a page's subjects."""

R = TypeVar("R", StoredEvent, SnapshotRecord)
_NO_KEYS: Final[Keys] = MappingProxyType({})


@runtime_checkable
class _Purging(Protocol):
    def purge_forgotten_keys(self) -> None: ...


def add_keys_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keys",
        metavar="MODULE:NAME",
        help="the application's key store, if it keeps keys outside the store's key table "
        "(a KeyStore, or a function of no arguments returning one)",
    )


@contextmanager
def key_store(args: argparse.Namespace, store: KeyStore) -> Iterator[KeyStore]:
    """The key store `--keys` names, closed after use if it can be; else the store's own."""
    if args.keys is None:
        yield store
        return
    found: KeyStore = load_target(
        args.keys, "a KeyStore", _is_key_store, example="myapp.keys:key_service"
    )
    try:
        yield found
    finally:
        close = getattr(found, "close", None)
        if callable(close):
            close()


def _is_key_store(found: object) -> bool:
    # Not a class: `--keys myapp:KeyService` names what builds one, to be called.
    methods = ("personal_data_keys", "delete_personal_data_key")
    return not isinstance(found, type) and all(
        callable(getattr(found, name, None)) for name in methods
    )


def with_keys(
    records: Iterable[R], keys: KeyStore | None, *, page: int = PAGE
) -> Iterator[tuple[R, Keys]]:
    """Yield each record with the keys that unseal it, fetched a page of records at a time.

    The keys of a page come from a keyring of its own (never kept longer), so forgetting
    shows from the next page on. A subject with no key in the mapping reads as forgotten.
    With no key store (nothing is decoded), every record gets no keys, for nothing.
    """
    if keys is None:
        for record in records:
            yield record, _NO_KEYS
        return
    batch: list[R] = []
    for record in records:
        batch.append(record)
        if len(batch) >= page:
            yield from _keyed(batch, keys)
            batch = []
    yield from _keyed(batch, keys)


def _keyed(batch: list[R], keys: KeyStore) -> Iterator[tuple[R, Keys]]:
    if not batch:
        return
    found = Keyring(keys).for_all(record.data for record in batch)
    for record in batch:
        yield record, found


def add_commands(commands: Any) -> None:
    forget = commands.add_parser(
        "forget", help="forget a data subject: delete their key for good, record why"
    )
    forget.add_argument(
        "subject", metavar="SUBJECT", help="the subject's id, as the events' subject fields hold it"
    )
    add_store_options(forget)
    add_keys_option(forget)
    forget.add_argument(
        "--reason", help="why (kept in the metadata of the PersonalDataForgotten event)"
    )
    forget.set_defaults(handler=_forget)

    purge = commands.add_parser("purge-keys", help="make forgotten keys leave the database's files")
    add_store_options(purge)
    purge.set_defaults(handler=_purge_keys)


def _forget(args: argparse.Namespace) -> int:
    subject = _subject(args.subject)
    metadata = _metadata(args.reason)
    with open_store(args) as store, key_store(args, store) as keys:
        # Asked first only to say so: forgetting again is an idempotent retry either way.
        before = keys.personal_data_keys([subject])
        result = store.forget_personal_data(subject, keys=keys, metadata=metadata)
    already = subject in before and before[subject] is None
    had_key = before.get(subject) is not None
    if args.json:
        print_json(
            {
                "subject": subject,
                "already_forgotten": already,
                "had_key": had_key,
                "stream_id": result.stream_id,
                "version": result.version,
            }
        )
    elif already:
        print(f"subject {subject!r} was already forgotten: nothing changed")
    elif had_key and args.keys:  # purge-keys purges the store's table, not that key store
        print(
            f"forgot subject {subject!r}: key deleted for good in the key store, recorded "
            f"in stream {result.stream_id!r}"
        )
    elif had_key:
        print(
            f"forgot subject {subject!r}: key deleted for good, recorded in stream "
            f"{result.stream_id!r}; run esframework purge-keys to clear it from the files"
        )
    else:
        # Nothing of theirs is sealed from now on; but an application that keeps its keys
        # in another key store (keys=) must name it: this key table was the wrong place.
        where = "the key store" if args.keys else "the store's key table (name another with --keys)"
        print(
            f"forgot subject {subject!r}, of whom {where} held no key; recorded in stream "
            f"{result.stream_id!r}"
        )
    return EXIT_OK


def _subject(text: str) -> str:
    try:  # a lone surrogate too, from bytes of the command line not UTF-8
        return validate_subject(text)
    except InvalidSubjectError as error:
        raise UsageError(str(error)) from None


def _metadata(reason: str | None) -> str:
    if reason is None:
        return "{}"
    if not reason.strip():
        msg = "--reason is empty: say why, or leave it out"
        raise UsageError(msg)
    if "\0" in reason:
        msg = "--reason cannot hold a NUL character"
        raise UsageError(msg)
    try:
        return orjson.dumps({"reason": reason}).decode()
    except orjson.JSONEncodeError:
        msg = "--reason is not valid UTF-8 text"
        raise UsageError(msg) from None


def _purge_keys(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        if not isinstance(store, _Purging):  # pragma: no cover -- both durable stores purge
            msg = "this store cannot purge keys"
            raise UsageError(msg)
        store.purge_forgotten_keys()
    sqlite = args.db is not None
    if args.json:
        print_json({"purged": True, "store": "sqlite" if sqlite else "postgresql"})
    elif sqlite:
        print(
            "purged: SQLite zeroes a deleted key in the file at once (secure_delete); the "
            "write-ahead log, which kept earlier copies, is checkpointed and truncated"
        )
    else:
        print(
            "purged: the key table is rewritten, forgotten keys are gone from its pages "
            "(the server's WAL and backups keep them until they are recycled)"
        )
    return EXIT_OK
