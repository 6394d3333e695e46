"""The event that says a data subject was forgotten, as handlers and projections receive it."""

from __future__ import annotations

from esframework._events import event
from esframework._personal._forgetting import FORGOTTEN_EVENT_TYPE

__all__ = ["PersonalDataForgotten"]


@event(name=FORGOTTEN_EVENT_TYPE)
class PersonalDataForgotten:
    """A data subject was forgotten: their key is gone, their personal fields read as
    placeholders from now on.

    Appended by `forget_personal_data` to the subject's own stream (stream type
    `"$PersonalData"`), it reaches subscriptions in the global order like any event. A read
    model that copied personal data handles it by dropping the subject's copies: the store
    can no longer read them back, but a copy elsewhere still holds them.

    Attributes:
        subject: The forgotten subject's id.
    """

    subject: str
