"""The `personal` field specifier: which fields hold personal data, and whose.

Domain code: it marks attrs fields and checks the marks, and knows nothing of keys,
cryptography or storage.
"""

from __future__ import annotations

from typing import Any, Final, TypeVar, overload

import attrs

from esframework.errors import DefinitionError

__all__ = ["PersonalField", "check_personal_fields", "personal", "personal_fields"]

T = TypeVar("T")

_MARK: Final = "esframework.personal"


@attrs.frozen
class PersonalField:
    """A field holding personal data.

    Attributes:
        name: The field's name (its key in the stored JSON).
        subject: The name of the field whose value identifies the data subject.
        forgotten: The value the field reads as once its subject is forgotten.
    """

    name: str
    subject: str
    forgotten: object


@overload
def personal(*, subject: str, forgotten: T) -> T: ...


@overload
def personal(*, subject: str, forgotten: T, default: T) -> T: ...


def personal(*, subject: str, forgotten: Any, default: Any = attrs.NOTHING) -> Any:
    """Declare a field of an event (or of an aggregate's state) as personal data.

    Its value is stored sealed with a key of the data subject named by the field `subject`
    of the same instance (a customer id, say): once `forget_personal_data(subject)` deletes
    that key, every read gives `forgotten` instead, and the stored bytes can no longer be
    turned back into the value.

    Example:
        >>> @event
        ... class CustomerRegistered:
        ...     customer_id: str
        ...     email: str = personal(subject="customer_id", forgotten="")  # doctest: +SKIP

    Args:
        subject: The name of a field of the same class, not personal itself, whose value
            (a string, int or UUID) names the data subject.
        forgotten: What the field reads as after forgetting: a value of the field's type.
        default: The field's default, if it has one.
    """
    return attrs.field(default=default, metadata={_MARK: (subject, forgotten)})


_found: dict[type[Any], tuple[PersonalField, ...]] = {}


def personal_fields(cls: type[Any]) -> tuple[PersonalField, ...]:
    """Return the personal fields of an attrs class, in definition order (often none)."""
    found = _found.get(cls)
    if found is None:
        found = _found[cls] = tuple(
            PersonalField(field.name, *field.metadata[_MARK])
            for field in attrs.fields(cls)
            if _MARK in field.metadata
        )
    return found


def check_personal_fields(cls: type[Any]) -> None:
    """Raise `DefinitionError` unless each personal field names a plain field as its subject.

    Called by `@event` and `@aggregate` when they define the class.
    """
    fields = personal_fields(cls)
    names = {field.name for field in attrs.fields(cls)}
    personal_names = {field.name for field in fields}
    for field in fields:
        if field.subject not in names:
            msg = (
                f"{cls.__name__}.{field.name} is personal data of subject field "
                f"{field.subject!r}, which {cls.__name__} does not have"
            )
            raise DefinitionError(msg)
        if field.subject in personal_names:
            msg = (
                f"{cls.__name__}.{field.name}: its subject field {field.subject!r} is "
                "personal data itself; a subject id must be stored readable"
            )
            raise DefinitionError(msg)
