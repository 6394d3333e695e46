"""Crypto-shredding: personal fields sealed per subject, and forgotten for good.

Every test runs on each backend, sync and async (the `backend` fixture).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

import pytest

from esframework import (
    ExpectedVersion,
    KeyStore,
    NewEvent,
    PersonalDataForgotten,
    Repository,
    Runner,
    Serializer,
    SQLiteEventStore,
    SubjectForgottenError,
    Subscription,
    aggregate_version,
    emit,
    new,
)
from esframework._personal._forgetting import FORGOTTEN_EVENT_TYPE, forgotten_stream
from esframework._personal._sealing import new_key
from esframework.errors import EventEncodingError, InvalidSubjectError
from tests.conftest import Backend
from tests.personal.domain import (
    FORGOTTEN,
    Customer,
    CustomerRegistered,
    CustomerRegisteredV1,
    EmailChanged,
)
from tests.stores.test_unit_of_work import BoomError, run

EMAIL = "ada.lovelace@example.com"


def _stored_text(backend: Backend) -> str:
    """Every event and snapshot the store holds, as text."""
    store = backend.store
    texts = [e.data + e.metadata for e in store.iter_all()]
    for stream_id in {e.stream_id for e in store.iter_all()}:
        snapshot = store.load_snapshot(stream_id)
        if snapshot is not None:
            texts.append(snapshot.data)
    return "\n".join(texts)


def test_personal_fields_are_stored_sealed_and_load_back(backend: Backend) -> None:
    customers = backend.repository(Customer)
    customers.save(Customer.register("c-1", EMAIL, name="Ada Lovelace"))
    assert customers.load("c-1").email == EMAIL
    [envelope] = list(customers.history("c-1"))
    assert envelope.event == CustomerRegistered(
        customer_id="c-1", email=EMAIL, name="Ada Lovelace", plan="basic"
    )
    stored = _stored_text(backend)
    assert EMAIL not in stored
    assert "Lovelace" not in stored
    assert "basic" in stored  # the other fields stay readable


def test_forgetting_replaces_the_fields_everywhere_and_keeps_loading(backend: Backend) -> None:
    customers = backend.repository(Customer)
    customer = Customer.register("c-1", EMAIL)
    customer.change_email("ada@example.org")
    customers.save(customer)  # due for a snapshot (every 2): its email is sealed too
    assert backend.store.load_snapshot("c-1") is not None
    customers.save(Customer.register("c-2", "grace@example.com"))

    backend.store.forget_personal_data("c-1")

    loaded = customers.load("c-1")
    assert (loaded.email, loaded.plan, aggregate_version(loaded)) == (FORGOTTEN, "basic", 2)
    assert [e.event.email for e in customers.history("c-1")] == [FORGOTTEN, FORGOTTEN]
    assert customers.load("c-2").email == "grace@example.com"  # another subject: untouched
    # And with no snapshot to start from, the events alone read the same.
    fresh = backend.repository(Customer)
    assert fresh.load("c-1", at_version=1).email == FORGOTTEN


def test_forgetting_records_an_event_once(backend: Backend) -> None:
    store = backend.store
    first = store.forget_personal_data("c-9", metadata='{"by": "support"}')
    again = store.forget_personal_data("c-9")
    assert again.version == first.version == 1
    [recorded] = list(store.read_stream(forgotten_stream("c-9")))
    assert recorded.event_type == FORGOTTEN_EVENT_TYPE
    assert Serializer().decode(recorded).event == PersonalDataForgotten(subject="c-9")
    assert recorded.metadata == '{"by": "support"}' or '"support"' in recorded.metadata


def test_a_forgotten_subject_takes_no_new_personal_data(backend: Backend) -> None:
    customers = backend.repository(Customer)
    customers.save(Customer.register("c-1", EMAIL))
    backend.store.forget_personal_data("c-1")
    customer = customers.load("c-1")
    customer.change_email("new@example.com")
    with pytest.raises(SubjectForgottenError, match="c-1") as raised:
        customers.save(customer)
    assert raised.value.subject == "c-1"
    assert raised.value.event_type == "test.EmailChanged"
    assert backend.store.stream_version("c-1") == 1  # nothing was written
    other = new(Customer, "another-stream")  # the subject, not the stream, is forgotten
    emit(other, EmailChanged(customer_id="c-1", email="x@example.com"))
    with pytest.raises(SubjectForgottenError):
        customers.save(other)
    # An event of the same subject without personal data still saves.
    customer = customers.load("c-1")
    customer.refer("friend-1", "friend@example.com")
    customers.save(customer)
    assert customers.load("c-1").friends == 1


def test_one_event_with_two_subjects_forgets_each_alone(backend: Backend) -> None:
    customers = backend.repository(Customer)
    customer = Customer.register("c-1", EMAIL)
    customer.refer("f-1", "friend@example.com")
    customers.save(customer)
    backend.store.forget_personal_data("f-1")
    registered, referred = [e.event for e in customers.history("c-1")]
    assert registered.email == EMAIL
    assert referred.friend_email == ""


def test_a_retried_save_of_sealed_events_is_idempotent(backend: Backend) -> None:
    """Sealing is deterministic per event id: the same events append as a no-op."""
    store = backend.store
    serializer = Serializer()
    event = CustomerRegistered(customer_id="c-1", email=EMAIL, name="Ada", plan="basic")
    keys = store.personal_data_keys(["c-1"], create=True)
    event_id = uuid.uuid4()
    record = serializer.encode(event, event_id=event_id, keys=keys)
    assert record == serializer.encode(event, event_id=event_id, keys=keys)
    first = store.append("c-1", "test.Customer", [record], expected_version=0)
    again = store.append("c-1", "test.Customer", [record], expected_version=0)
    assert again.version == first.version == 1
    assert store.stream_version("c-1") == 1


def test_keys_are_made_once_per_subject_and_forgotten_for_good(backend: Backend) -> None:
    store = backend.store
    assert store.personal_data_keys(["a"]) == {}
    made = store.personal_data_keys(["a", "b"], create=True)
    assert set(made) == {"a", "b"}
    assert all(isinstance(k, bytes) and len(k) == 64 for k in made.values())
    assert made["a"] != made["b"]
    assert store.personal_data_keys(["a", "b", "c"], create=True) == {
        **made,
        "c": store.personal_data_keys(["c"])["c"],
    }
    store.delete_personal_data_key("a")
    store.delete_personal_data_key("a")  # idempotent
    store.delete_personal_data_key("never-seen")
    assert store.personal_data_keys(["a", "never-seen"], create=True) == {
        "a": None,
        "never-seen": None,
    }
    with pytest.raises(InvalidSubjectError):
        store.delete_personal_data_key("")
    with pytest.raises(InvalidSubjectError):
        store.personal_data_keys(["x" * 201], create=True)


def test_a_subject_id_no_store_can_keep_is_refused_before_anything_is_written(
    backend: Backend,
) -> None:
    """A NUL character or a lone surrogate in a subject id: PostgreSQL's text refuses both.
    Every store refuses it as `InvalidSubjectError` before making or deleting a key, and
    saves and forgetting write nothing."""
    for subject in ("c\x00-1", "c-\udc80"):
        _refused_subject(backend, subject)


def _refused_subject(backend: Backend, subject: str) -> None:
    store = backend.store
    head = store.head()
    customer = new(Customer, "c-9")
    emit(customer, CustomerRegistered(customer_id=subject, email=EMAIL, name="Ada", plan="x"))
    with pytest.raises(InvalidSubjectError) as refused:
        backend.repository(Customer).save(customer)
    assert repr(subject) in str(refused.value)
    with pytest.raises(InvalidSubjectError):
        store.personal_data_keys([subject], create=True)
    with pytest.raises(InvalidSubjectError):
        store.forget_personal_data(subject)
    assert store.head() == head


def test_forgetting_with_bad_metadata_keeps_the_key_and_records_nothing(
    backend: Backend,
) -> None:
    """Metadata the record of forgetting cannot hold is refused before the key is deleted:
    else the key would be gone for good and no subscription ever told."""
    customers = backend.repository(Customer)
    customers.save(Customer.register("c-1", EMAIL))
    head = backend.store.head()
    for metadata in ("who asked", "[1]", '{"by": NaN}', '{"by": "\\u0000"}'):
        with pytest.raises(EventEncodingError):
            backend.store.forget_personal_data("c-1", metadata=metadata)
    assert backend.store.head() == head
    assert customers.load("c-1").email == EMAIL
    assert backend.store.forget_personal_data("c-1", metadata='{"by": "ops"}').version == 1
    assert customers.load("c-1").email == FORGOTTEN


def test_forgetting_in_a_unit_of_work_that_fails_forgets_nothing(backend: Backend) -> None:
    """The key's deletion and the record of forgetting commit together, or neither: the
    memory store deleted the key for good while the unit undid the record."""
    customers = backend.repository(Customer)
    customers.save(Customer.register("c-1", EMAIL))
    head = backend.store.head()

    def sync(store: Any) -> None:
        with pytest.raises(BoomError), store.transaction():
            store.forget_personal_data("c-1")
            raise BoomError

    async def async_(store: Any) -> None:
        with pytest.raises(BoomError):
            async with store.transaction():
                await store.forget_personal_data("c-1")
                raise BoomError

    run(backend, sync, async_)
    assert backend.store.head() == head
    assert customers.load("c-1").email == EMAIL


def test_old_versions_are_unsealed_before_upcasting(backend: Backend) -> None:
    store = backend.store
    keys = store.personal_data_keys(["c-1"], create=True)
    old = CustomerRegisteredV1(customer_id="c-1", email="ada@example.com", plan="basic")
    record = Serializer().encode(old, event_id=uuid.uuid4(), keys=keys)
    store.append("c-1", "test.Customer", [record], expected_version=ExpectedVersion.NO_STREAM)
    customers = backend.repository(Customer)
    [envelope] = list(customers.history("c-1"))
    assert envelope.event.name == "ada"  # the upcaster read the plaintext
    store.forget_personal_data("c-1")
    [envelope] = list(customers.history("c-1"))
    assert (envelope.event.email, envelope.event.name) == (FORGOTTEN, "(forgotten)")


def test_a_sealed_field_altered_in_the_store_is_a_decoding_error(backend: Backend) -> None:
    """Authenticated encryption: bytes that do not open are corrupt, never garbage."""
    from esframework.errors import CorruptEventError

    store = backend.store
    keys = store.personal_data_keys(["c-1"], create=True)
    event = CustomerRegistered(customer_id="c-1", email=EMAIL, name="Ada", plan="basic")
    record = Serializer().encode(event, event_id=uuid.uuid4(), keys=keys)
    sealed = record.data.split('"email":"')[1].split('"')[0]
    tampered = sealed[:-4] + ("AAA=" if not sealed.endswith("AAA=") else "BBB=")
    store.append(
        "c-1",
        "test.Customer",
        [NewEvent(record.event_id, record.event_type, 2, record.data.replace(sealed, tampered))],
        expected_version=0,
    )
    with pytest.raises(CorruptEventError, match="does not open") as raised:
        backend.repository(Customer).load("c-1")
    assert raised.value.stream_id == "c-1"


class ServiceKeys:
    """A key service outside the store: the small KeyStore protocol, over a dict."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes | None] = {}

    def personal_data_keys(
        self, subjects: Collection[str], *, create: bool = False
    ) -> dict[str, bytes | None]:
        for subject in subjects:
            if create and subject not in self.keys:
                self.keys[subject] = new_key()
        return {s: self.keys[s] for s in subjects if s in self.keys}

    def delete_personal_data_key(self, subject: str) -> None:
        self.keys[subject] = None


def test_keys_kept_by_an_external_key_service(sqlite_store: SQLiteEventStore) -> None:
    service: KeyStore = ServiceKeys()
    customers = Repository(Customer, store=sqlite_store, keys=service)
    customers.save(Customer.register("c-1", EMAIL))
    assert sqlite_store.personal_data_keys(["c-1"]) == {}  # not in the store's table
    assert customers.load("c-1").email == EMAIL
    assert Repository(Customer, store=sqlite_store).load("c-1").email == FORGOTTEN  # no key
    seen: list[str] = []
    subscription = Subscription(name="emails", handler=lambda e, _: seen.append(e.event.email))
    Runner(sqlite_store, [subscription], keys=service).run_until_caught_up()
    assert seen == [EMAIL]
    sqlite_store.forget_personal_data("c-1", keys=service)
    assert customers.load("c-1").email == FORGOTTEN
