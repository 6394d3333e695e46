"""The exceptions esframework raises.

Every error derives from `EsframeworkError`, keeps its facts as attributes and builds its
message from them. Errors pickle cleanly, so they can cross process boundaries::

    EsframeworkError
    ├── DefinitionError
    │   ├── InvalidSubscriptionError (also ValueError): a subscription's name or settings
    │   ├── DuplicateEventTypeError (name, version, classes)
    │   ├── MissingHandlerError (aggregate type, event type)
    │   └── UnsupportedFieldTypeError (class, field): a type that cannot be stored exactly
    ├── InvalidStreamIdError (also ValueError)
    ├── InvalidTypeNameError (name, reason; also ValueError): a stream or event type name
    ├── InvalidVersionError (stream id, version; also ValueError): a version below 1
    ├── InvalidTimeError (the time; also ValueError): a time without a time zone
    ├── InvalidPositionError (what, position; also ValueError): a global position below 0
    ├── InvalidEventIdError (what, event id; also ValueError): an event id that is no UUID
    ├── InvalidTagError (tag, stream id; also ValueError): a tag no store can keep as it is
    ├── AggregateNotFoundError (stream id, aggregate type; also LookupError)
    │   └── VersionNotFoundError (stream id, version asked for, stream's version)
    ├── ConcurrencyError (stream id, expected, actual)
    │   ├── ConditionFailedError (query, after, position): a conditional append's query
    │   │   matched an event stored after what the decision read
    │   └── AppendDeadlockError (stream id): appends in units of work waited for each other
    ├── StreamClosedError (stream id, version): the stream was tombstoned
    ├── InvalidTruncationError (stream id, version, snapshot version; also ValueError)
    ├── IdempotencyConflictError (event id, stream id)
    ├── EventEncodingError (event type, field; also ValueError): a value that cannot be
    │   stored and read back exactly, such as NaN or an int in a str field
    ├── DuplicateEventIdError (event id, stream id; also ValueError): one id twice in an append
    ├── StreamTypeMismatchError (stream id, expected type, actual type)
    ├── EventDecodingError (event type, stream id, version, position)
    │   ├── UnknownEventTypeError
    │   ├── MissingUpcasterError (from version, to version)
    │   └── CorruptEventError
    ├── StoreError: the backend failed
    │   ├── StoreUnavailableError: the backend cannot be reached
    │   └── InvalidConnectionStringError (also ValueError): a DSN that does not parse
    ├── PersonalDataError: personal data cannot be sealed or unsealed
    │   ├── InvalidSubjectError (subject; also ValueError): an empty or too long subject id
    │   └── SubjectForgottenError (subject, event type): a save of a forgotten person's data
    ├── SubscriptionError (subscription, event type, stream id, position)
    ├── UnmappedEventTypesError (subscription, event types): stored types nothing reads
    └── LeaseLostError (subscription): another instance took over
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AggregateNotFoundError",
    "AppendDeadlockError",
    "ConcurrencyError",
    "ConditionFailedError",
    "CorruptEventError",
    "DefinitionError",
    "DuplicateEventIdError",
    "DuplicateEventTypeError",
    "EsframeworkError",
    "EventDecodingError",
    "EventEncodingError",
    "IdempotencyConflictError",
    "InvalidConnectionStringError",
    "InvalidEventIdError",
    "InvalidPositionError",
    "InvalidStreamIdError",
    "InvalidSubjectError",
    "InvalidSubscriptionError",
    "InvalidTagError",
    "InvalidTimeError",
    "InvalidTruncationError",
    "InvalidTypeNameError",
    "InvalidVersionError",
    "LeaseLostError",
    "MissingHandlerError",
    "MissingUpcasterError",
    "PartitionCountError",
    "PersonalDataError",
    "ProjectionVersionError",
    "StoreError",
    "StoreUnavailableError",
    "StreamClosedError",
    "StreamTypeMismatchError",
    "SubjectForgottenError",
    "SubscriptionError",
    "UnknownEventTypeError",
    "UnmappedEventTypesError",
    "UnsupportedFieldTypeError",
    "VersionNotFoundError",
]


class EsframeworkError(Exception):
    """The base of every error esframework raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors are built from keyword facts, not from their message: pickle those.
        return _rebuild, (type(self), self.__dict__)


def _rebuild(cls: type[EsframeworkError], state: dict[str, Any]) -> EsframeworkError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, str(error))
    return error


class DefinitionError(EsframeworkError):
    """An event or aggregate class is defined in a way esframework cannot use."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class InvalidSubscriptionError(DefinitionError, ValueError):
    """A subscription is defined with what no worker can run: a name no checkpoint table
    holds or another subscription's, a count below 1, or an interval that is no finite
    number of seconds. Raised when the subscription (or a runner of several) is made."""


class DuplicateEventTypeError(DefinitionError):
    """Two different classes claim the same event type name and schema version."""

    def __init__(self, name: str, version: int, existing: str, new: str) -> None:
        self.name = name
        self.version = version
        self.existing = existing
        self.new = new
        super().__init__(
            f"event type {name!r} version {version} is already registered to {existing}; "
            f"cannot register {new} under the same name and version"
        )


class MissingHandlerError(DefinitionError):
    """An aggregate was given an event it has no `@applies` handler for."""

    def __init__(self, aggregate_type: str, event_type: str) -> None:
        self.aggregate_type = aggregate_type
        self.event_type = event_type
        super().__init__(
            f"aggregate {aggregate_type} has no @applies({event_type}) handler; "
            "every event an aggregate emits or loads needs one"
        )


class UnsupportedFieldTypeError(DefinitionError):
    """A field's type cannot be stored and read back exactly (an unsupported or ambiguous type).

    Raised by `@event` and `@aggregate` when the class is defined, not on the first load.
    """

    def __init__(self, class_name: str, field: str, reason: str) -> None:
        self.class_name = class_name
        self.field = field
        self.reason = reason
        super().__init__(f"field {field!r} of {class_name} cannot be stored: {reason}")


class InvalidStreamIdError(EsframeworkError, ValueError):
    """A stream id is empty or longer than the stores accept."""

    def __init__(self, stream_id: str, reason: str) -> None:
        self.stream_id = stream_id
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"invalid stream id {self.stream_id[:80]!r}: {self.reason}"


class InvalidTypeNameError(EsframeworkError, ValueError):
    """A stream type or event type name that no store can keep as it is: not a string,
    empty, too long, or holding a NUL character or a lone surrogate. Nothing was written.

    Attributes:
        name: The name given, as `repr` shows it (its first 80 characters).
        reason: Why no store can keep it.
    """

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"invalid type name {self.name}: {self.reason}"


class InvalidVersionError(EsframeworkError, ValueError):
    """A stream version was asked for, or expected, that no stream can have.

    Raised by `Repository.load(id, at_version=n)` for `n` below 1 (stream versions start
    at 1), and by appends for an `expected_version` that is not `ExpectedVersion.ANY`,
    `ExpectedVersion.NO_STREAM` or a whole number from 0 to ``2**63 - 1`` (a negative one, a
    string, a bool); nothing was read or written.

    Attributes:
        stream_id: The stream the version was asked of (or appended to).
        version: The version given, as it was given (an `int` for `at_version`).
        expected: Whether it was an append's `expected_version`.
    """

    def __init__(self, stream_id: str, version: object, *, expected: bool = False) -> None:
        self.stream_id = stream_id
        self.version = version
        self.expected = expected
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.expected:
            return (
                f"invalid expected_version {repr(self.version)[:80]} for stream "
                f"{self.stream_id[:80]!r}: give ExpectedVersion.ANY, ExpectedVersion.NO_STREAM "
                "or a whole number from 0 (no stream yet) to 2**63 - 1; nothing was written"
            )
        return (
            f"invalid version {self.version} for stream {self.stream_id[:80]!r}: "
            "stream versions start at 1"
        )


class InvalidTimeError(EsframeworkError, ValueError):
    """A time to read as of has no time zone, so which instant it means is unknown.

    Nothing was read. Give an aware datetime, such as ``datetime(2026, 3, 1, tzinfo=UTC)``.
    """

    def __init__(self, as_of: object) -> None:
        self.as_of = as_of
        super().__init__(str(self))

    def __str__(self) -> str:
        return (
            f"cannot read as of {self.as_of}: the time has no time zone (give an aware "
            "datetime, such as one with tzinfo=UTC)"
        )


class InvalidPositionError(EsframeworkError, ValueError):
    """A global position was given that no event can have, or a read's limit out of range:
    both are whole numbers from 0 to ``2**63 - 1``.

    Nothing was read or written. Positions start at 1; 0 means "before the first event".
    Raised for `AppendCondition.after`, and for the `after` and `limit` of `read_all` and
    `read_query`.

    Attributes:
        what: What the value was given as, such as ``"AppendCondition.after"`` or
            ``"read_query limit"``.
        position: The value given, as `repr` shows it.
    """

    def __init__(self, what: str, position: str) -> None:
        self.what = what
        self.position = position
        super().__init__(str(self))

    def __str__(self) -> str:
        kind = "limit" if self.what.endswith("limit") else "position"
        return (
            f"invalid {kind} {self.position[:80]} for {self.what}: {kind}s are whole numbers "
            "from 0 to 2**63 - 1; nothing was read or written"
        )


class InvalidEventIdError(EsframeworkError, ValueError):
    """An event id was given that is not a `uuid.UUID`; nothing was read or written.

    Raised for the ids of `AppendCondition.seen`.

    Attributes:
        what: What the value was given as, such as ``"AppendCondition.seen"``.
        event_id: The value given, as `repr` shows it.
    """

    def __init__(self, what: str, event_id: str) -> None:
        self.what = what
        self.event_id = event_id
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"invalid event id {self.event_id[:80]} in {self.what}: event ids are UUIDs"


class AggregateNotFoundError(EsframeworkError, LookupError):
    """No events are stored for the stream asked for.

    Attributes:
        stream_id: The stream asked for.
        aggregate_type: The stream type of the repository that asked, such as ``"Account"``.
        version: The version asked for with `at_version`; None when the current state was.
    """

    def __init__(self, stream_id: str, aggregate_type: str, version: int | None = None) -> None:
        self.stream_id = stream_id
        self.aggregate_type = aggregate_type
        self.version = version
        super().__init__(str(self))

    def __str__(self) -> str:
        message = f"{self.aggregate_type} {self.stream_id!r} not found: the stream has no events"
        if self.version is not None:
            message += f" (asked for version {self.version})"
        return message


class VersionNotFoundError(AggregateNotFoundError):
    """The stream exists but has not reached the version asked for.

    A `LookupError` and an `AggregateNotFoundError` too, so code that treats both alike
    catches it; catch this class to tell a version beyond the stream's head apart.

    Attributes:
        stream_id: The stream asked for.
        aggregate_type: The stream type of the repository that asked.
        version: The version asked for with `at_version`.
        head: The stream's version when it was read (its last event's version), below
            `version`.
    """

    def __init__(self, stream_id: str, aggregate_type: str, version: int, head: int) -> None:
        self.head = head
        super().__init__(stream_id, aggregate_type, version)

    def __str__(self) -> str:
        return (
            f"{self.aggregate_type} {self.stream_id!r} has no version {self.version}: "
            f"its stream is at version {self.head}"
        )


class ConcurrencyError(EsframeworkError):
    """A save expected the stream at one version and found it at another; nothing was written.

    Load the aggregate again, re-run the command on the fresh state and save again.
    """

    def __init__(self, stream_id: str, expected: int | None, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.expected is None:
            expected = "any version (and lost every retry)"
        elif self.expected == 0:
            expected = "a new stream"
        else:
            expected = f"version {self.expected}"
        return (
            f"concurrency conflict on stream {self.stream_id!r}: expected {expected}, "
            f"found version {self.actual}; nothing was written"
        )


class ConditionFailedError(ConcurrencyError):
    """A conditional append's query matched an event stored after `after`; nothing was written.

    Another writer appended an event the decision depends on since the decision read the
    store: read again, decide again on the fresh events and append again. A subclass of
    `ConcurrencyError`, so retry loops that catch that catch this too.

    Attributes:
        query: The condition's query (`AppendCondition.fail_if_events_match`).
        after: The condition's `after` (None: no matching event may exist at all).
        position: The global position of the first conflicting event found. On PostgreSQL
            it is 0 when the conflicting event has committed but is not positioned yet, or is
            still being appended (its position is assigned just after its commit).
        stream_id: The stream the refused append was for.
    """

    def __init__(self, query: object, after: int | None, position: int, stream_id: str) -> None:
        self.query = query
        self.after = after
        self.position = position
        self.stream_id = stream_id
        # The ConcurrencyError facts, for handlers written for stream conflicts.
        self.expected = after
        self.actual = position
        Exception.__init__(self, str(self))

    def __str__(self) -> str:
        since = "at all" if self.after is None else f"after position {self.after}"
        found = (
            f"at position {self.position}"
            if self.position
            else "not positioned yet (committed or being appended concurrently)"
        )
        return (
            f"append condition failed on stream {self.stream_id!r}: an event matching "
            f"{self.query} was stored {since}, the first {found}; nothing was written"
        )


class AppendDeadlockError(ConcurrencyError):
    """Appends waited for each other's tag locks in a cycle; this one was undone.

    On PostgreSQL, appends lock the tags and types of their events (shared) and conditional
    appends those of their queries (exclusively), each append in one sorted order, so single
    appends never deadlock. Units of work holding several appends' locks can: PostgreSQL
    then cancels one of them, and the unit fails with this error, having written nothing.
    Retry the unit.

    Attributes:
        stream_id: The stream the undone append was for.
    """

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self.expected = None
        self.actual = 0
        Exception.__init__(self, str(self))

    def __str__(self) -> str:
        return (
            f"append to stream {self.stream_id!r} deadlocked with another transaction's "
            "appends (units of work waiting for each other's tags or event types); nothing "
            "was written: retry"
        )


class InvalidTagError(EsframeworkError, ValueError):
    """A tag cannot be stored as it is (it is empty, too long, or not a string).

    Attributes:
        tag: The tag (its repr if it is not a string).
        stream_id: The stream the event carrying it was for; None for a tag in a query.
        reason: Why it cannot be stored.
    """

    def __init__(self, tag: str, stream_id: str | None, reason: str) -> None:
        self.tag = tag
        self.stream_id = stream_id
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        where = "in a query" if self.stream_id is None else f"on stream {self.stream_id!r}"
        return f"invalid tag {self.tag[:80]!r} {where}: {self.reason}"


class StreamClosedError(EsframeworkError):
    """The stream was closed for good (tombstoned): nothing can be appended or loaded after it.

    Raised by appends to a closed stream (nothing was written; retrying cannot succeed) and
    by loads that meet the stream's tombstone. Its state before the tombstone still loads
    with `at_version=error.version - 1`, reading archived events if need be.

    Attributes:
        stream_id: The closed stream.
        version: The version of its tombstone, the stream's last.
    """

    def __init__(self, stream_id: str, version: int) -> None:
        self.stream_id = stream_id
        self.version = version
        super().__init__(str(self))

    def __str__(self) -> str:
        return (
            f"stream {self.stream_id!r} is closed: its tombstone is version {self.version}, "
            "and nothing can be appended or loaded after it"
        )


class InvalidTruncationError(EsframeworkError, ValueError):
    """A stream cannot be truncated before the version asked for; nothing was written.

    Truncating before a version says loads no longer need the events before it, which holds
    only at or below the stream's latest snapshot: loads start there.

    Raised too for a version that is not an `int` (a float, a bool, a string).

    Attributes:
        stream_id: The stream asked to truncate.
        version: The version asked for (events before it would be truncated), as given.
        snapshot_version: The version of the stream's latest snapshot; None if it has none.
    """

    def __init__(self, stream_id: str, version: int, snapshot_version: int | None) -> None:
        self.stream_id = stream_id
        self.version = version
        self.snapshot_version = snapshot_version
        super().__init__(str(self))

    def __str__(self) -> str:
        if type(self.version) is not int:
            return (
                f"cannot truncate stream {self.stream_id[:80]!r} before version "
                f"{repr(self.version)[:80]}: a version is a whole number (an int)"
            )
        where = f"cannot truncate stream {self.stream_id[:80]!r} before version {self.version}"
        if self.version < 1:
            return f"{where}: stream versions start at 1"
        if self.snapshot_version is None:
            return f"{where}: it has no snapshot, so loads still need every event"
        return (
            f"{where}: its latest snapshot is at version {self.snapshot_version}, and loads "
            "need the events after it (take a newer snapshot first)"
        )


class IdempotencyConflictError(EsframeworkError):
    """An event id is already stored with different content; nothing was written."""

    def __init__(self, event_id: str, stream_id: str) -> None:
        self.event_id = event_id
        self.stream_id = stream_id
        super().__init__(str(self))

    def __str__(self) -> str:
        return (
            f"event id {self.event_id} is already stored with different content "
            f"(appending to stream {self.stream_id!r}); nothing was written"
        )


class DuplicateEventIdError(EsframeworkError, ValueError):
    """One append holds two events with the same event id; nothing was written.

    Every store refuses such an append before writing, whatever is stored already: an event
    id names one event, so a batch cannot hold it twice.
    """

    def __init__(self, event_id: str, stream_id: str) -> None:
        self.event_id = event_id
        self.stream_id = stream_id
        super().__init__(str(self))

    def __str__(self) -> str:
        return (
            f"event id {self.event_id} appears more than once in one append to stream "
            f"{self.stream_id!r}; nothing was written"
        )


class StreamTypeMismatchError(EsframeworkError):
    """A stream holds events of another stream (aggregate) type than the one asked for.

    Raised when a repository loads a stream, or a snapshot, of another aggregate type, and
    when an append gives another `stream_type` than the stream's stored events have; nothing
    was written.
    """

    def __init__(self, stream_id: str, expected: str, actual: str) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(str(self))

    def __str__(self) -> str:
        return (
            f"stream {self.stream_id!r} is of stream type {self.actual!r}, not "
            f"{self.expected!r}; nothing was written or loaded"
        )


class EventEncodingError(EsframeworkError, ValueError):
    """An event holds a value that cannot be stored and read back exactly; nothing was written.

    Attributes:
        event_type: The event type name (or, for a snapshot, the aggregate class).
        reason: What is wrong with the value.
        field: Where the value is, such as ``"lines[2].amount"``; None for the whole event.
    """

    def __init__(self, event_type: str, reason: str, *, field: str | None = None) -> None:
        self.event_type = event_type
        self.reason = reason
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = "" if self.field is None else f" (field {self.field!r})"
        return f"cannot encode event {self.event_type}{where}: {self.reason}"


class EventDecodingError(EsframeworkError):
    """A stored event cannot be turned back into its event class."""

    def __init__(
        self,
        reason: str,
        *,
        event_type: str,
        stream_id: str,
        version: int,
        position: int | None,
    ) -> None:
        self.reason = reason
        self.event_type = event_type
        self.stream_id = stream_id
        self.version = version
        self.position = position
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"stream {self.stream_id!r} version {self.version}"
        if self.position is not None:
            where += f" (global position {self.position})"
        return f"cannot decode event {self.event_type!r} at {where}: {self.reason}"


class UnknownEventTypeError(EventDecodingError):
    """A stored event's type is registered to no event class and no upcaster."""


class MissingUpcasterError(EventDecodingError):
    """A stored event is at an old schema version and no upcaster takes it further."""


class CorruptEventError(EventDecodingError):
    """A stored payload is not valid JSON or does not fit its event class."""


class StoreError(EsframeworkError):
    """The storage backend failed; see `__cause__` for the backend's own error."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class StoreUnavailableError(StoreError):
    """The storage backend cannot be reached (connection lost, pool exhausted)."""


class InvalidConnectionStringError(StoreError, ValueError):
    """A PostgreSQL connection string or URL that does not parse; nothing was connected.

    The message gives libpq's reason, never the string itself, which may hold a password.
    """


class PersonalDataError(EsframeworkError):
    """Personal data cannot be sealed or unsealed (see "Personal data and retention").

    Raised as itself when the `cryptography` package (the `personal` extra) is missing, and
    when an event or state with personal fields is encoded without its subjects' keys.
    """

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


_SUBJECT_IDS = "subject ids are 1 to 200 characters"


class InvalidSubjectError(PersonalDataError, ValueError):
    """A data subject's id is not a string of 1 to 200 characters that every store can
    keep (no NUL character, no lone surrogate); nothing was written.

    Attributes:
        subject: The id given, as `repr` shows it.
        reason: What is wrong with it.
    """

    def __init__(self, subject: str, reason: str = _SUBJECT_IDS) -> None:
        self.subject = subject
        self.reason = reason
        PersonalDataError.__init__(self, str(self))

    def __str__(self) -> str:
        return f"invalid data subject {self.subject}: {self.reason}"


class SubjectForgottenError(PersonalDataError):
    """An event (or snapshot) holds personal data of a subject that was forgotten.

    Forgetting is for good: nothing of the subject's is stored again, so the save wrote
    nothing. Give the person a new subject id if they come back.

    Attributes:
        subject: The forgotten subject.
        event_type: The event type (or the aggregate class, for a snapshot) refused.
    """

    def __init__(self, subject: str, event_type: str) -> None:
        self.subject = subject
        self.event_type = event_type
        PersonalDataError.__init__(self, str(self))

    def __str__(self) -> str:
        return (
            f"cannot store {self.event_type}: it holds personal data of subject "
            f"{self.subject!r}, which was forgotten"
        )


class SubscriptionError(EsframeworkError):
    """A subscription's handler kept failing on an event; the subscription stopped before it.

    The checkpoint stays before the event, so the subscription resumes with it once the cause
    is fixed. See `__cause__` for the handler's last error.
    """

    def __init__(
        self, subscription: str, *, event_type: str, stream_id: str, position: int, attempts: int
    ) -> None:
        self.subscription = subscription
        self.event_type = event_type
        self.stream_id = stream_id
        self.position = position
        self.attempts = attempts
        super().__init__(str(self))

    def __str__(self) -> str:
        return (
            f"subscription {self.subscription!r} stopped: its handler failed {self.attempts} "
            f"times on event {self.event_type!r} of stream {self.stream_id!r} at global "
            f"position {self.position}; the checkpoint stays before it"
        )


class UnmappedEventTypesError(EsframeworkError):
    """A subscription filtered by event class found stored event types that no registered
    event class or upcaster maps to.

    Such events are never delivered: the filter asks the store for the classes' names only.
    If an event class was renamed, they are its old events, and without an upcaster from the
    old name the subscription would pass over all of them. Register an upcaster with
    `rename_to`, import the module that defines the class, or, if these events belong to
    another application, list their names in the subscription's `ignored_event_types`.
    """

    def __init__(self, subscription: str, event_types: tuple[str, ...]) -> None:
        self.subscription = subscription
        self.event_types = event_types
        super().__init__(str(self))

    def __str__(self) -> str:
        return (
            f"subscription {self.subscription!r} stopped before passing over events of "
            f"types {list(self.event_types)}: the store holds them, but no registered event "
            "class or upcaster maps to them (a renamed class needs an upcaster with "
            "rename_to; another application's events go in ignored_event_types)"
        )


class LeaseLostError(EsframeworkError):
    """This instance no longer holds a subscription's lease: another one may be active."""

    def __init__(
        self,
        subscription: str,
        reason: str = "another instance moved its checkpoint, or its lease connection dropped",
    ) -> None:
        self.subscription = subscription
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"subscription {self.subscription!r} has no lease: {self.reason}"


class PartitionCountError(EsframeworkError):
    """A subscription's checkpoints were made with another partition count than configured.

    Each partition's checkpoint covers only its share of the streams, so a worker of another
    count would skip events or apply them twice. Changing the count is explicit: stop every
    worker of the subscription and rebuild it with the new count (`rebuild_partitions`).
    A count of 1 is the subscription unpartitioned.
    """

    def __init__(self, subscription: str, *, found: int, configured: int) -> None:
        self.subscription = subscription
        self.found = found
        self.configured = configured
        super().__init__(str(self))

    def __str__(self) -> str:
        return (
            f"subscription {self.subscription!r} runs as {self.found} partition(s), but this "
            f"worker is configured with {self.configured}: stop every worker of it and rebuild "
            f"it with the new count (rebuild_partitions) to change it"
        )


class ProjectionVersionError(EsframeworkError):
    """A blue/green step asked for a projection version it cannot act on.

    Rebuilding the version that serves readers would empty it under them, and retiring it
    would leave them nothing to read; a projection without a recorded version has not been
    installed.
    """

    def __init__(self, projection: str, version: str | None, reason: str) -> None:
        self.projection = projection
        self.version = version
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"projection {self.projection!r} version {self.version!r}: {self.reason}"
