"""The keyring of a read: it asks the key store only for the subjects sealed documents name.

Events without personal fields are most events: for them a keyring asks nothing at all (the
hot path of loads and subscriptions), which these tests check with a key service that
records what it is asked.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from esframework import (
    Envelope,
    Repository,
    Serializer,
    SQLiteEventStore,
    StoredEvent,
    Subscription,
    SubscriptionWorker,
    event,
)
from esframework._personal._keyring import Keyring
from esframework._personal._keyring_async import AsyncKeyring
from esframework._personal._sealing import MARKER_TEXT, sealed_subjects
from tests.domain import WalletOpened
from tests.personal.domain import FORGOTTEN, Customer, CustomerRegistered, EmailChanged
from tests.personal.test_forgetting import ServiceKeys

EMAIL = "ada.lovelace@example.com"


class RecordingKeys(ServiceKeys):
    """A key service over a dict that records the subjects of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[set[str]] = []

    def personal_data_keys(
        self, subjects: Collection[str], *, create: bool = False
    ) -> dict[str, bytes | None]:
        self.asked.append(set(subjects))
        return super().personal_data_keys(subjects, create=create)


class AsyncRecordingKeys:
    def __init__(self, keys: RecordingKeys) -> None:
        self.sync = keys

    async def personal_data_keys(
        self, subjects: Collection[str], *, create: bool = False
    ) -> dict[str, bytes | None]:
        return self.sync.personal_data_keys(subjects, create=create)

    async def delete_personal_data_key(self, subject: str) -> None:
        self.sync.delete_personal_data_key(subject)


SERIALIZER = Serializer()


def _record(event: object, keys: RecordingKeys, stream_id: str = "c-1") -> StoredEvent:
    subjects = SERIALIZER.personal_subjects(event)
    found = keys.personal_data_keys(subjects, create=True) if subjects else None
    new_event = SERIALIZER.encode(event, event_id=uuid.uuid4(), keys=found)
    return StoredEvent(
        new_event.event_id,
        stream_id,
        "test.Customer",
        new_event.event_type,
        new_event.schema_version,
        new_event.data,
        new_event.metadata,
        1,
        1,
        datetime.now(UTC),
    )


def test_documents_without_personal_data_ask_the_key_store_nothing() -> None:
    keys = RecordingKeys()
    plain = _record(WalletOpened(owner="ada"), keys)
    assert MARKER_TEXT not in plain.data
    keyring = Keyring(keys)
    assert keyring.for_data(plain.data) == {}
    assert keyring.for_all([plain.data, plain.data]) == {}
    assert keys.asked == []
    assert SERIALIZER.decode(plain, keyring.for_data(plain.data)).event == WalletOpened(owner="ada")


def test_each_subject_is_asked_for_once_per_keyring() -> None:
    keys = RecordingKeys()
    sealed = [_record(EmailChanged(customer_id=c, email=EMAIL), keys) for c in ("c-1", "c-2")]
    plain = _record(WalletOpened(owner="ada"), keys)
    keys.asked.clear()  # the saves' requests
    keyring = Keyring(keys)
    found = keyring.for_all(r.data for r in [sealed[0], plain, sealed[1]])
    assert keys.asked == [{"c-1", "c-2"}]  # one request for the page
    assert keyring.for_data(sealed[0].data) is found  # already asked: no request
    assert keyring.for_data(plain.data) is found  # the keys so far, for a plain event
    assert keys.asked == [{"c-1", "c-2"}]
    for record in sealed:
        assert SERIALIZER.decode(record, keyring.for_data(record.data)).event.email == EMAIL
    assert SERIALIZER.decode(plain, keyring.for_data(plain.data)).event == WalletOpened(owner="ada")
    assert Keyring(keys).for_data(sealed[0].data) == {"c-1": keys.keys["c-1"]}  # a new one asks
    assert keys.asked[-1] == {"c-1"}


def test_a_forgotten_subject_reads_as_forgotten_through_a_new_keyring() -> None:
    keys = RecordingKeys()
    record = _record(EmailChanged(customer_id="c-1", email=EMAIL), keys)
    keyring = Keyring(keys)
    assert SERIALIZER.decode(record, keyring.for_data(record.data)).event.email == EMAIL
    keys.delete_personal_data_key("c-1")
    assert SERIALIZER.decode(record, Keyring(keys).for_data(record.data)).event.email == FORGOTTEN


def test_the_async_keyring_asks_alike() -> None:
    keys = RecordingKeys()
    sealed = _record(EmailChanged(customer_id="c-1", email=EMAIL), keys)
    plain = _record(WalletOpened(owner="ada"), keys)
    keys.asked.clear()

    async def read() -> list[Any]:
        keyring = AsyncKeyring(AsyncRecordingKeys(keys))
        return [  # copies: a keyring's keys grow as it asks
            dict(await keyring.for_data(plain.data)),
            dict(await keyring.for_data(sealed.data)),
            dict(await keyring.for_data(plain.data)),
            dict(await keyring.for_all([sealed.data, plain.data])),
        ]

    first, second, third, fourth = asyncio.run(read())
    assert first == {}
    assert second == third == fourth == {"c-1": keys.keys["c-1"]}
    assert keys.asked == [{"c-1"}]


@event(name="test.Labelled")
class Labelled:
    note: str
    labels: dict[str, str]


def test_the_marker_s_name_in_plain_values_is_no_personal_data() -> None:
    """A string holding the marker's text, or a nested object keyed by it, reads back as it
    was: the first is not even a candidate (its quotes are escaped in JSON), the second one
    whose marker names no subject."""
    keys = RecordingKeys()
    value = Labelled(note='"$personal"', labels={"$personal": "not sealed"})
    plain = _record(Labelled(note='"$personal"', labels={}), keys)
    assert MARKER_TEXT not in plain.data
    nested = _record(value, keys)
    assert MARKER_TEXT in nested.data
    assert sealed_subjects(nested.data) == frozenset()
    assert SERIALIZER.decode(nested, Keyring(keys).for_data(nested.data)).event == value
    assert keys.asked == []


def test_a_subscription_asks_for_a_pages_keys_once(tmp_path: Path) -> None:
    """Each page of a catch-up is unsealed with one keyring: one question per page."""
    keys = RecordingKeys()
    store = SQLiteEventStore(tmp_path / "events.db")
    for n in range(6):
        customer = Customer.register(f"c-{n}", f"{n}@example.com")
        Repository(Customer, store=store, keys=keys).save(customer)
    keys.asked.clear()
    emails: list[str] = []

    def handle(envelope: Envelope[Any], _: object) -> None:
        if isinstance(envelope.event, CustomerRegistered):
            emails.append(envelope.event.email)

    subscription = Subscription(name="emails", handler=handle, batch_size=4)
    with store:
        worker: SubscriptionWorker[Any] = SubscriptionWorker(store, subscription, keys=keys)
        worker.run(until_caught_up=True)
    assert emails == [f"{n}@example.com" for n in range(6)]
    assert keys.asked == [{"c-0", "c-1", "c-2", "c-3"}, {"c-4", "c-5"}]
