"""Error texts kept by the store lose the personal values of the event they are about."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from esframework import (
    Envelope,
    Repository,
    Serializer,
    SQLiteEventStore,
    Subscription,
    SubscriptionWorker,
    event,
    personal,
)
from esframework._personal._fields import personal_fields
from esframework._personal._redaction import REDACTED, _cut_shortened, redact_personal_data
from esframework._personal._sealing import new_key, seal
from esframework._records import StoredEvent
from esframework.errors import CorruptEventError
from tests.personal.domain import FORGOTTEN, Customer, CustomerRegistered, Referred

NOW = datetime.now(UTC)
KEYS = {"c-1": new_key(), "c-2": new_key()}
# Around a core that escaping leaves as it is and REDACTED does not hold: wherever the core
# is in a redacted text, a form of the value was left there.
CORE = "QZX"
values = st.builds(
    lambda before, after: before + CORE + after,
    *[st.text(alphabet=st.sampled_from("'\"\\\n\t\x00\u2028é\u2603 ab")) for _ in "ab"],
)


def _sealed(email: str, name: str = "Grace") -> str:
    registered = CustomerRegistered(customer_id="c-1", email=email, name=name, plan="pro")
    return Serializer().encode(registered, event_id=uuid.uuid4(), keys=KEYS).data


@given(email=values)
def test_a_personal_value_is_gone_however_the_message_quotes_it(email: str) -> None:
    data = _sealed(email)
    inner = ValueError(f"mail {email} failed; {email!r} bounced; {[email]}")
    for error in (inner, KeyError(email), RuntimeError(f"wrapped {inner!r}")):
        for text in (repr(error), str(error)):
            assert CORE in text
            assert CORE not in redact_personal_data(text, data, KEYS)
    assert "bounced" in redact_personal_data(repr(inner), data, KEYS)


def test_only_the_personal_values_are_replaced() -> None:
    data = _sealed("ada@example.com", name="Ada Lovelace")
    text = "ada@example.com is Ada Lovelace, not Ada; plan pro; customer c-1"
    assert redact_personal_data(text, data, KEYS) == (
        f"{REDACTED} is {REDACTED}, not Ada; plan pro; customer c-1"
    )


def test_each_subject_of_the_event_is_redacted() -> None:
    referred = Referred(customer_id="c-1", friend_id="c-2", friend_email="bob@example.org")
    data = Serializer().encode(referred, event_id=uuid.uuid4(), keys=KEYS).data
    assert redact_personal_data("to bob@example.org", data, KEYS) == f"to {REDACTED}"


def test_a_forgotten_subjects_placeholder_and_unsealed_data_stay() -> None:
    data = _sealed("ada@example.com")
    text = f"no mail for {FORGOTTEN}"
    assert redact_personal_data(text, data, {"c-1": None}) == text
    plain = '{"customer_id": "c-1", "email": "ada@example.com"}'  # not sealed: not personal
    assert redact_personal_data("ada@example.com", plain, KEYS) == "ada@example.com"


def test_data_that_does_not_unseal_leaves_the_text() -> None:
    data = _sealed("ada@example.com")
    assert redact_personal_data("ada@example.com", data, {"c-1": new_key()}) == "ada@example.com"


@given(
    email=values,
    keep=st.integers(min_value=3, max_value=80),
    ellipsis=st.sampled_from(["...", "\u2026"]),
)
def test_a_personal_value_shortened_in_a_message_is_gone_too(
    email: str, keep: int, ellipsis: str
) -> None:
    """A message that shortens a long value (the codec's own "got str '...'", `reprlib`,
    a handler's `value[:50]`) keeps its start: that start is personal data too."""
    email = "ZQ" + email + "x" * 60
    data = _sealed(email)
    for form in (email, repr(email)):
        text = f"refused {form[:keep]}{ellipsis} on plan pro"
        redacted = redact_personal_data(text, data, KEYS)
        assert form[:keep] not in redacted, redacted
        assert "ZQ" not in redacted
        assert redacted.endswith(f"{ellipsis} on plan pro")


def test_a_decoding_error_quoting_a_long_personal_value_is_redacted() -> None:
    """The codec's message for a payload that does not fit quotes the value, shortened (an
    upcaster that left a personal field of another type, say): the parked error keeps none."""
    address = "Ada Lovelace, 12 Marylebone Road, London NW1 5LR, born 10 December 1815"
    event_id = uuid.uuid4()
    encoded = {"customer_id": "c-1", "email": [address], "name": address, "plan": "pro"}
    placeholders = {"email": FORGOTTEN, "name": FORGOTTEN}
    fields = personal_fields(CustomerRegistered)
    seal(encoded, fields, placeholders, KEYS, nonce=event_id, what="test")
    data = orjson.dumps(encoded).decode()
    record = StoredEvent(
        event_id, "c-1", "test.Customer", "test.CustomerRegistered", 2, data, "{}", 1, 1, NOW
    )
    with pytest.raises(CorruptEventError) as refused:
        Serializer().decode(record, KEYS)
    text = repr(refused.value)
    assert "Ada Lovelace, 12" in text  # the codec quotes it, cut short
    redacted = redact_personal_data(text, data, KEYS)
    assert "Lovelace" not in redacted, redacted
    assert "field 'email'" in redacted


@event(name="test.redaction.Numbered")
class Numbered:
    customer_id: str
    number: int = personal(subject="customer_id", forgotten=0)
    numbers: list[int] = personal(subject="customer_id", forgotten=[])


@given(number=st.integers(min_value=2**64, max_value=10**30) | st.integers(max_value=-(2**63) - 1))
def test_an_int_past_64_bits_is_redacted_as_the_message_writes_it(number: int) -> None:
    """orjson reads such an int as a float (`1.1805916207174113e+21`): the message has its
    digits, and those are what must go."""
    numbered = Numbered(customer_id="c-1", number=number, numbers=[number + 1])
    data = Serializer().encode(numbered, event_id=uuid.uuid4(), keys=KEYS).data
    text = f"no record {number}; nor {[number + 1]}"
    assert redact_personal_data(text, data, KEYS) == f"no record {REDACTED}; nor [{REDACTED}]"


@event(name="test.redaction.Booked")
class Booked:
    customer_id: str
    born: datetime = personal(subject="customer_id", forgotten=datetime(1970, 1, 1, tzinfo=UTC))


@given(born=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-3))])))
def test_a_datetime_is_redacted_as_an_f_string_writes_it(born: datetime) -> None:
    """`f"{event.born}"` writes `str(born)`: ISO, with a space for the "T"."""
    booked = Booked(customer_id="c-1", born=born)
    data = Serializer().encode(booked, event_id=uuid.uuid4(), keys=KEYS).data
    for text in (f"born {born}", f"born {born.isoformat()}"):
        assert redact_personal_data(text, data, KEYS) == f"born {REDACTED}"
    assert redact_personal_data(f"born {str(born)!r}", data, KEYS) == f"born '{REDACTED}'"


class ForgettingKeys:
    """A key store whose subjects another process forgets once `forget_next` is set: just
    before the next read of their keys."""

    def __init__(self, store: SQLiteEventStore) -> None:
        self.store, self.forget_next = store, False

    def personal_data_keys(
        self, subjects: Collection[str], *, create: bool = False
    ) -> dict[str, bytes | None]:
        if self.forget_next:
            for subject in subjects:
                self.store.delete_personal_data_key(subject)
        return self.store.personal_data_keys(subjects, create=create)

    def delete_personal_data_key(self, subject: str) -> None:
        self.store.delete_personal_data_key(subject)


def test_a_subject_forgotten_while_its_event_fails_is_redacted_from_the_parked_error(
    tmp_path: Path,
) -> None:
    """The handler read the plaintext, then the subject was forgotten before the event was
    parked: the error is redacted with the keys the handler's event was decoded with."""
    store = SQLiteEventStore(tmp_path / "events.db")
    Repository(Customer, store=store).save(Customer.register("c-1", "ada@example.com"))

    keys = ForgettingKeys(store)
    emails: list[str] = []

    def refuse(envelope: Envelope[Any], _: object) -> None:
        emails.append(envelope.event.email)
        # Delivered in its page, then alone: forgotten after that last attempt, before the
        # event is parked.
        keys.forget_next = len(emails) == 2
        raise ValueError(f"cannot mail {envelope.event.email}")

    subscription = Subscription(name="mail", handler=refuse, max_attempts=1, dead_letter=True)
    SubscriptionWorker(store, subscription, keys=keys).run(until_caught_up=True)
    assert emails == ["ada@example.com", "ada@example.com"]
    store.forget_personal_data("c-1")  # if no read of keys came after the last attempt
    [parked] = store.parked("mail")
    assert "ada@example.com" not in parked.error
    assert REDACTED in parked.error
    store.close()


def _cut_naively(text: str, secrets: list[str]) -> str:
    """The reference: at each ellipsis, the longest start of a secret just before it."""
    pieces, done = [], 0
    for match in re.finditer(r"\.\.\.|\u2026", text):
        end, start = match.start(), match.start()
        for secret in secrets:
            for begin in range(done, end - 1):
                if len(text[begin:end]) < len(secret) and secret.startswith(text[begin:end]):
                    start = min(start, begin)
                    break
        if start < end:
            pieces += [text[done:start], REDACTED]
            done = end
    return "".join([*pieces, text[done:]])


@given(
    text=st.text(alphabet=st.sampled_from("ab.\u2026"), max_size=40),
    secrets=st.lists(st.text(alphabet="ab.", min_size=2, max_size=8), max_size=3),
)
def test_shortened_values_are_found_as_a_plain_search_finds_them(
    text: str, secrets: list[str]
) -> None:
    assert _cut_shortened(text, secrets) == _cut_naively(text, secrets)
