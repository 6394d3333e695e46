"""Error texts kept by the store lose the personal values of the event they are about."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from esframework import Serializer
from esframework._personal._redaction import REDACTED, redact_personal_data
from esframework._personal._sealing import new_key
from tests.personal.domain import FORGOTTEN, CustomerRegistered, Referred

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
