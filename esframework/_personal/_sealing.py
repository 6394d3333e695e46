"""Sealing personal fields in encoded events and states, and unsealing them on read.

A sealed document keeps its other fields as they were. Each personal field holds its JSON
encoding sealed with its subject's key (AES-SIV, from the `cryptography` package: an
authenticated cipher that stays safe when a nonce repeats), in base64; a marker beside the
fields says which fields are sealed, for which subject, and what each reads as once the
subject is forgotten:

    {"customer_id": "c-1", "owner": "<sealed>", "currency": "EUR",
     "$personal": {"nonce": "<event id>", "fields": {"owner": ["c-1", ""]}}}

The marker makes a stored document readable with no class at hand: upcasters, the command
line and old schema versions unseal alike. `$` keeps it apart from field names. The nonce of
an event is its id, so a retried append seals to the same bytes and stays idempotent.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final
from uuid import UUID

import orjson

from esframework._checks import is_utf8
from esframework._json import loads
from esframework._personal._fields import PersonalField
from esframework.errors import InvalidSubjectError, PersonalDataError, SubjectForgottenError

__all__ = [
    "MARKER",
    "MARKER_TEXT",
    "MAX_SUBJECT_LENGTH",
    "Keys",
    "new_key",
    "seal",
    "sealed_subjects",
    "subject_of",
    "unseal",
    "validate_subject",
]

MARKER: Final = "$personal"
MAX_SUBJECT_LENGTH: Final = 200
MARKER_TEXT: Final = f'"{MARKER}"'
"""The marker's key as JSON text: a stored document without it has no sealed fields.

The cheap test before any parse. A string value cannot hold it (its quotes are escaped in
JSON); a nested object keyed `$personal` holds it, and then parsing finds no marker.
"""
_NO_SUBJECTS: Final[frozenset[str]] = frozenset()

Keys = Mapping[str, bytes | None]
"""Subject ids to their keys; None (or no entry) for a forgotten subject."""


@functools.cache
def _aessiv() -> Any:
    """Return the cipher class, imported on first use (a failed import is not cached)."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESSIV
    except ImportError:  # an optional dependency: only events with personal fields need it
        msg = (
            "personal data needs the cryptography package: "
            "install esframework[personal] (or cryptography)"
        )
        raise PersonalDataError(msg) from None
    return AESSIV


def _cipher(key: bytes) -> Any:
    return _aessiv()(key)


def new_key() -> bytes:
    """Return a new random key for a data subject (512 bits: AES-256 in SIV mode)."""
    import secrets

    _cipher(b"\0" * 64)  # fail early, before a key is stored, if cryptography is missing
    return secrets.token_bytes(64)


def validate_subject(subject: object) -> str:
    """Return `subject` if it is a valid subject id; raise `InvalidSubjectError` if not."""
    if not isinstance(subject, str) or not 1 <= len(subject) <= MAX_SUBJECT_LENGTH:
        raise InvalidSubjectError(repr(subject))
    # Checked here, not left to the stores: PostgreSQL's text refuses both (a StoreError,
    # once the memory store and SQLite had made a key), and forgetting's stream id too.
    if "\x00" in subject:
        raise InvalidSubjectError(repr(subject), "it holds a NUL character")
    if not is_utf8(subject):  # a lone surrogate (bytes decoded with surrogateescape)
        raise InvalidSubjectError(repr(subject), "it is not valid UTF-8 text")
    return subject


def subject_of(value: object) -> str:
    """Return the subject id a subject field's value names (a string, int or UUID)."""
    if isinstance(value, UUID) or (isinstance(value, int) and not isinstance(value, bool)):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidSubjectError(repr(value))
    return validate_subject(value)


def seal(
    encoded: dict[str, Any],
    fields: Collection[PersonalField],
    placeholders: Mapping[str, Any],
    keys: Keys,
    *,
    nonce: UUID,
    what: str,
    drop_forgotten: bool = False,
) -> None:
    """Seal the personal `fields` of an encoded document in place, and add the marker.

    Args:
        encoded: The document's JSON-ready values, as the codec's encoder made them.
        fields: Its class's personal fields.
        placeholders: Each field's `forgotten` value, encoded like the field.
        keys: The key of every subject the fields name.
        nonce: Unique per document (an event's id).
        what: The event type or class, for errors.
        drop_forgotten: Store the placeholder of a forgotten subject's field instead of
            raising (a snapshot's state may still hold what was loaded before forgetting).

    Raises:
        SubjectForgottenError: A subject has no key: it was forgotten.
    """
    sealed: dict[str, list[Any]] = {}
    for field in fields:
        subject = subject_of(encoded[field.subject])
        key = keys.get(subject)
        if key is None and drop_forgotten:
            encoded[field.name] = placeholders[field.name]
            continue
        if key is None:
            raise SubjectForgottenError(subject, what)
        plaintext = orjson.dumps(encoded[field.name])
        box = _cipher(key).encrypt(plaintext, _context(nonce, field.name, subject))
        encoded[field.name] = base64.b64encode(box).decode()
        sealed[field.name] = [subject, placeholders[field.name]]
    encoded[MARKER] = {"nonce": str(nonce), "fields": sealed}


def sealed_subjects(data: str) -> frozenset[str]:
    """Return the subjects whose keys unsealing the stored JSON `data` needs (often none)."""
    if MARKER_TEXT not in data:  # the cheap test for the common case
        return _NO_SUBJECTS
    document = loads(data)
    marker = document.get(MARKER) if isinstance(document, dict) else None
    if not isinstance(marker, dict):
        return frozenset()
    return frozenset(str(entry[0]) for entry in marker.get("fields", {}).values())


def unseal(
    document: dict[str, Any], keys: Keys | None, parse: Callable[[bytes], Any] = loads
) -> None:
    """Unseal a parsed stored document in place: plaintext, or placeholders if forgotten.

    Raises:
        ValueError: The marker or a sealed field is not what `seal` writes, or a sealed
            field does not open with its subject's key (the data or the key was altered).
    """
    marker = document.pop(MARKER)
    nonce = UUID(marker["nonce"])
    for name, (subject, placeholder) in marker["fields"].items():
        key = None if keys is None else keys.get(subject)
        if key is None:
            document[name] = placeholder
            continue
        try:
            plaintext = _cipher(key).decrypt(
                base64.b64decode(document[name]), _context(nonce, name, subject)
            )
        except PersonalDataError:
            raise
        except Exception as error:  # InvalidTag: the bytes or the key were altered
            msg = f"sealed field {name!r} does not open with its subject's key"
            raise ValueError(msg) from error
        document[name] = parse(plaintext)


def _context(nonce: UUID, field: str, subject: str) -> list[bytes]:
    # Bound to the field and subject, so a sealed value cannot be moved to another; the
    # nonce last, as AES-SIV takes it.
    return [field.encode(), subject.encode(), nonce.bytes]
