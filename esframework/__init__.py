"""esframework: typed event-sourced domain models, on SQLite and PostgreSQL.

Define events with `@event`, aggregates with `@aggregate` and `@applies`, change them with
commands that `emit` events, and keep them with a `Repository` over an event store.
"""

from esframework import errors
from esframework._aggregates import (
    PendingEvent,
    SnapshotPolicy,
    aggregate,
    aggregate_id,
    aggregate_version,
    applies,
    emit,
    new,
    pending_events,
)
from esframework._blue_green import PROJECTION_VERSIONS_TABLE, BlueGreen, replaying
from esframework._decisions import AsyncDecisions, Decisions, decision_model
from esframework._envelope import Envelope, Metadata
from esframework._events import EventType, event, event_type_of
from esframework._memory import InMemoryEventStore
from esframework._partition import Partition
from esframework._partitions import partitioned, rebuild_partitions
from esframework._partitions_async import partitioned as async_partitioned
from esframework._partitions_async import rebuild_partitions as async_rebuild_partitions
from esframework._personal._fields import personal
from esframework._personal._forgetting import FORGOTTEN_STREAM_TYPE as PERSONAL_DATA_STREAM_TYPE
from esframework._personal._forgotten import PersonalDataForgotten
from esframework._personal._keys import KeyStore
from esframework._personal._keys_async import AsyncKeyStore
from esframework._portable_sql import execute_sql, execute_sql_async
from esframework._queries import AppendCondition, Query, QueryItem, QueryResult
from esframework._records import (
    AppendResult,
    EventPayload,
    ExpectedVersion,
    NewEvent,
    ParkedEvent,
    SaveResult,
    SnapshotRecord,
    StoredEvent,
)
from esframework._repository import Repository
from esframework._repository_async import AsyncRepository
from esframework._runner import Runner
from esframework._runner_async import AsyncRunner
from esframework._serialization import Serializer
from esframework._sqlite import SQLiteEventStore
from esframework._store import EventStore
from esframework._store_async import AsyncEventStore
from esframework._stream_closed import StreamClosed
from esframework._subscriptions import (
    Handler,
    Progress,
    Projection,
    Subscription,
    SubscriptionStore,
    SubscriptionWorker,
)
from esframework._subscriptions_async import (
    AsyncHandler,
    AsyncProjection,
    AsyncSubscription,
    AsyncSubscriptionStore,
    AsyncSubscriptionWorker,
)
from esframework._tags import tag
from esframework._threaded import AsyncInMemoryEventStore, AsyncSQLiteEventStore
from esframework._upcasting import Upcaster, Upcasters, upcaster
from esframework.errors import (
    AggregateNotFoundError,
    ConcurrencyError,
    ConditionFailedError,
    EsframeworkError,
    StreamClosedError,
    SubjectForgottenError,
    SubscriptionError,
)

__all__ = [
    "PERSONAL_DATA_STREAM_TYPE",
    "PROJECTION_VERSIONS_TABLE",
    "AggregateNotFoundError",
    "AppendCondition",
    "AppendResult",
    "AsyncDecisions",
    "AsyncEventStore",
    "AsyncHandler",
    "AsyncInMemoryEventStore",
    "AsyncKeyStore",
    "AsyncProjection",
    "AsyncRepository",
    "AsyncRunner",
    "AsyncSQLiteEventStore",
    "AsyncSubscription",
    "AsyncSubscriptionStore",
    "AsyncSubscriptionWorker",
    "BlueGreen",
    "ConcurrencyError",
    "ConditionFailedError",
    "Decisions",
    "Envelope",
    "EsframeworkError",
    "EventPayload",
    "EventStore",
    "EventType",
    "ExpectedVersion",
    "Handler",
    "InMemoryEventStore",
    "KeyStore",
    "Metadata",
    "NewEvent",
    "ParkedEvent",
    "Partition",
    "PendingEvent",
    "PersonalDataForgotten",
    "Progress",
    "Projection",
    "Query",
    "QueryItem",
    "QueryResult",
    "Repository",
    "Runner",
    "SQLiteEventStore",
    "SaveResult",
    "Serializer",
    "SnapshotPolicy",
    "SnapshotRecord",
    "StoredEvent",
    "StreamClosed",
    "StreamClosedError",
    "SubjectForgottenError",
    "Subscription",
    "SubscriptionError",
    "SubscriptionStore",
    "SubscriptionWorker",
    "Upcaster",
    "Upcasters",
    "aggregate",
    "aggregate_id",
    "aggregate_version",
    "applies",
    "async_partitioned",
    "async_rebuild_partitions",
    "decision_model",
    "emit",
    "errors",
    "event",
    "event_type_of",
    "execute_sql",
    "execute_sql_async",
    "new",
    "partitioned",
    "pending_events",
    "personal",
    "rebuild_partitions",
    "replaying",
    "tag",
    "upcaster",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith("esframework._"):
        _obj.__module__ = "esframework"
del _name, _obj
