"""Keeping personal data out of the error texts the store keeps (parked events).

A handler that fails on an event often names what it was given: `ValueError("no account for
'Ada Lovelace'")`. Stored as the parked event's error, that text would keep the plaintext
after the subject is forgotten, where no key can reach it. So before an error text is
stored, every personal value of the event it is about is replaced by `REDACTED`.

What is replaced is text equal to a value as the codec encodes it (names, e-mail
addresses, dates and times in ISO form, decimals, numbers) or as `str` writes it (a
datetime with a space for the "T"), as written or as `repr` quotes and escapes it, and its
start where a message shortened it before an ellipsis (the codec's own
"got str '...'" does, and so do `reprlib` and handlers that cut long values); a value the
handler reformatted (a date spelled out, a name upper-cased) is not recognized.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from typing import Any, Final

from esframework._json import loads, loads_exact
from esframework._personal._sealing import MARKER, Keys, unseal

__all__ = ["REDACTED", "redact_personal_data"]

REDACTED: Final = "[personal data]"
# Shorter texts are not replaced: "1" or "a" would be cut out of every word and number.
_SHORTEST: Final = 2
# Where a message shortened a value: what comes before it may be the start of one.
# How the codec writes a datetime (`isoformat()`); `str(value)` has a space for the "T".
_ISO_TIME: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
_ELLIPSIS: Final = re.compile(r"\.\.\.|\u2026")


def redact_personal_data(text: str, data: str, keys: Keys) -> str:
    """Return `text` with the personal values of the stored event `data` replaced.

    `keys` are those the event's subjects had when it was read; a forgotten subject's
    fields read as placeholders, which are no personal data and stay. Data that is not
    sealed, or does not unseal, leaves the text as it is: the error is then about the data.
    """
    if MARKER not in data:  # the common case: no personal data, nothing to parse
        return text
    try:
        document = loads(data)
        sealed = document[MARKER]["fields"].items()
        fields = [name for name, (subject, _) in sealed if keys.get(subject) is not None]
        unseal(document, keys, loads_exact)  # an int past 64 bits as the message has it
    except (ValueError, TypeError, KeyError):
        return text
    secrets = {form for name in fields for leaf in _leaves(document[name]) for form in leaf}
    for secret in sorted(secrets, key=len, reverse=True):  # "Ada Lovelace" before "Ada"
        if len(secret) >= _SHORTEST:
            text = text.replace(secret, REDACTED)
    return _cut_shortened(text, secrets)


def _cut_shortened(text: str, secrets: Collection[str]) -> str:
    """Replace the start of a value that `text` shortened before an ellipsis."""
    ends = [match.start() for match in _ELLIPSIS.finditer(text)]
    if not ends:  # the common case
        return text
    # For each ellipsis, the longest start of each secret that ends right before it: one
    # pass of the secret's prefix automaton (Knuth-Morris-Pratt) over the text.
    found = [
        (secret, _prefix_links(secret), _starts_ending_at(text, secret, ends)) for secret in secrets
    ]
    pieces: list[str] = []
    done = 0  # text[:done] is in pieces
    for index, end in enumerate(ends):
        start = end
        for _, links, lengths in found:
            length = lengths[index]
            while length and end - length < done:  # overlaps what was replaced before
                length = links[length - 1]
            if length >= _SHORTEST:
                start = min(start, end - length)
        if start < end:
            pieces += (text[done:start], REDACTED)
            done = end
    return "".join((*pieces, text[done:]))


def _prefix_links(secret: str) -> list[int]:
    """For each start of `secret`, the length of its longest proper end that starts it too."""
    links = [0] * len(secret)
    length = 0
    for i in range(1, len(secret)):
        while length and secret[i] != secret[length]:
            length = links[length - 1]
        if secret[i] == secret[length]:
            length += 1
        links[i] = length
    return links


def _starts_ending_at(text: str, secret: str, ends: list[int]) -> list[int]:
    """For each of `ends`, the length of the longest start of `secret` that ends there
    (shorter than `secret`: the whole of it was replaced before)."""
    links = _prefix_links(secret)
    lengths: list[int] = []
    length = 0
    position = 0
    for end in ends:
        for char in text[position:end]:
            while length and (length == len(secret) or char != secret[length]):
                length = links[length - 1]
            if char == secret[length]:
                length += 1
        position = end
        lengths.append(length if length < len(secret) else links[length - 1])
    return lengths


def _leaves(value: Any) -> Iterator[set[str]]:
    """The text forms of each scalar in a decoded JSON value."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, str):
        # As written, and quoted by `repr` up to three times: `{name!r}` in a message, in
        # the message of an error that wraps it (`{error!r}`), in the `repr` of the error
        # that is stored.
        forms = level = {value}
        if _ISO_TIME.match(value):  # a datetime: as `str` and f-strings write it, too
            forms = level = {value, f"{value[:10]} {value[11:]}"}
        for _ in range(3):
            level = {quoted for form in level for quoted in _quoted(form)}
            forms |= level
        yield forms
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield {str(value)}


def _quoted(text: str) -> set[str]:
    """`text` as `repr` writes it between its quotes, with either quote escaped or not.

    Which quote `repr` escapes depends on the whole string it quotes (a message with the
    value in it), so each is tried.
    """
    # Quotes swapped for printable stand-ins the text lacks: `repr` then escapes the rest.
    single, double = [c for c in map(chr, range(0x2600, 0x2610)) if c not in text][:2]
    bare = repr(text.replace("'", single).replace('"', double))[1:-1]
    bare = bare.replace(single, "'").replace(double, '"')
    escaped = bare.replace("'", "\\'")
    return {bare, escaped, bare.replace('"', '\\"'), escaped.replace('"', '\\"')}
